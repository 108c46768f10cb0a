"""``leadscore backtest``: would the model have worked, month by month?"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from leadscore.cli._util import JsonOpt, SpecOpt, echo_json, info, resolve_spec, user_errors

app = typer.Typer()


@app.command("backtest")
@user_errors
def backtest_cmd(
    data: Annotated[
        Path, typer.Argument(help="A CRM export (a folder of tables or a flat file) with its history.")
    ],
    spec: SpecOpt = None,
    every: Annotated[str, typer.Option("--every", help="How often a model is retrained: month.")] = "month",
    start: Annotated[
        str | None,
        typer.Option("--from", help="First month (e.g. 2025-01-01); default: once a window has closed."),
    ] = None,
    stop: Annotated[str | None, typer.Option("--to", help="Last month; default: the export's last.")] = None,
    cutoff: Annotated[
        str, typer.Option("--cutoff", help="Cutoff contract: YAML path or a shipped name.")
    ] = "default",
    seed: Annotated[int, typer.Option("--seed")] = 42,
    out: Annotated[Path | None, typer.Option("--out", help="Write the month table as an HTML page.")] = None,
    json_out: JsonOpt = False,
) -> None:
    """Train with only what was known at each month's start, score that month's leads, and judge them
    once their windows close, next to the points model on the same leads; logged to MLflow."""
    from leadscore.jobs.workflow import backtest_and_log

    ds = resolve_spec(data, spec, None, None, None, None, None)
    result = backtest_and_log(
        data, ds, cutoff=cutoff, seed=seed, every=every, start=start, stop=stop, out=out
    )
    if json_out:
        echo_json(result)
        return
    info(
        f"backtest of '{ds.name}' ({result['matured_leads']:,} matured leads, export taken {result['observed_until']}):"
    )
    info(
        f"  {'month':<8} {'leads':>6} {'AUC':>6} {'points':>6} {'ECE':>7} {'MQL':>5} {'share':>6} {'MQL->SQL':>8} {'promised':>8} {'points@vol':>10}"
    )
    for row in result["months"]:
        info(_line(row))
    info(f"logged to MLflow run {result['mlflow_run_id']}" + (f"; page: {result['report']}" if out else ""))


def _line(row: dict[str, Any]) -> str:
    if not row.get("trained"):
        return f"  {row['month']:<8} not trained: {row['why']}"

    def pct(key: str) -> str:
        value = row.get(key)
        return f"{value:.1%}" if value is not None else "-"

    def num(key: str, digits: int = 3) -> str:
        value = row.get(key)
        return f"{value:.{digits}f}" if value is not None else "-"

    return (
        f"  {row['month']:<8} {row['matured_leads']:>6,} {num('roc_auc'):>6} {num('points_roc_auc'):>6} "
        f"{num('ece', 4):>7} {row.get('mql', 0):>5} {pct('mql_share'):>6} {pct('mql_sql_rate'):>8} "
        f"{pct('promised_mql_sql_rate'):>8} {pct('points_sql_rate_at_same_volume'):>10}"
    )
