"""``leadscore generate``, ``validate`` and ``points``: data in, checked, and the written points model."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from leadscore.cli._util import (
    BucketsOpt,
    EngineOpt,
    IdOpt,
    JsonOpt,
    LabelOpt,
    MasterOpt,
    PositiveOpt,
    SpecOpt,
    TimeOpt,
    check_engine,
    echo_json,
    info,
    resolve_spec,
    user_errors,
)
from leadscore.errors import UserError

if TYPE_CHECKING:
    import pandas as pd

    from leadscore.spec import DatasetSpec

app = typer.Typer()

SegmentEffectOpt = Annotated[
    bool,
    typer.Option(
        "--segment-effect",
        help="APAC's buyers answer to other signals and its SMB team sells to small firms (a segment "
        "model should win there: see 'segments' in a dataset spec).",
    ),
]
ObservedOpt = Annotated[
    str | None,
    typer.Option(
        "--observed-until",
        help="The day the export is taken (e.g. 2026-11-30): nothing after it is written, so recent "
        "leads' label windows are open. Default: a week after the last lead's scoring time; "
        "'uncut' writes every lead's whole future.",
    ),
]
AccountsOpt = Annotated[
    bool,
    typer.Option(
        "--accounts",
        help="Accounts in buying cycles: an opportunities table, each account-moment's truth "
        "(account_moments) and company names and addresses written several ways (spec synthetic-accounts).",
    ),
]


@app.command("generate")
@user_errors
def generate_cmd(
    leads: Annotated[int, typer.Option("--leads", min=1, help="Number of leads.")] = 10_000,
    seed: Annotated[int, typer.Option("--seed", help="Random seed (same seed, same bytes).")] = 42,
    out: Annotated[Path, typer.Option("--out", help="Output folder.")] = Path("data/synthetic"),
    fmt: Annotated[str, typer.Option("--format", help="parquet or csv.")] = "parquet",
    fault_rate: Annotated[
        float,
        typer.Option("--fault-rate", min=0.0, max=0.5, help="Share of leads hit by each kind of data fault."),
    ] = 0.02,
    drift: Annotated[
        bool, typer.Option("--drift", help="Draw the shifted later period (new channel, changed behaviour).")
    ] = False,
    segment_effect: SegmentEffectOpt = False,
    observed_until: ObservedOpt = None,
    accounts: AccountsOpt = False,
    json_out: JsonOpt = False,
) -> None:
    """Generate realistic synthetic B2B leads with events, stage history and ground truth."""
    from leadscore.data.maturity import parse_observed_until
    from leadscore.data.synthetic import GeneratorConfig, write_dataset
    from leadscore.data.synthetic import generate as draw

    if fmt not in {"parquet", "csv"}:
        raise UserError(f"--format: unknown format '{fmt}' (use parquet or csv)")
    config = GeneratorConfig(
        leads=leads,
        seed=seed,
        fault_rate=fault_rate,
        drift=drift,
        segment_effect=segment_effect,
        observed_until=observed_until,
        accounts=accounts,
    )
    if observed_until is not None and observed_until.strip().casefold() != "uncut":
        parse_observed_until(observed_until, "--observed-until")  # one line naming the flag
    tables = draw(config)
    paths = write_dataset(tables, out, fmt)
    leads_table = tables["leads"]
    labels = leads_table.column("sql_within_90d").to_numpy()
    summary = {
        "out": str(out),
        "files": [str(p) for p in paths],
        "leads": leads_table.num_rows,
        "events": tables["events"].num_rows,
        "stage_rows": tables["stage_history"].num_rows,
        "sql_rate": round(float(labels.mean()), 4),
        "drift": drift,
        "segment_effect": segment_effect,
        "observed_until": _export_day(tables),
        **({"opportunities": tables["opportunities"].num_rows} if accounts else {}),
    }
    if json_out:
        echo_json(summary)
    else:
        info(
            f"wrote {summary['leads']:,} leads, {summary['events']:,} events and "
            f"{summary['stage_rows']:,} stage rows to {out} (SQL rate {summary['sql_rate']:.1%})"
        )


def _export_day(tables: dict[str, Any]) -> str | None:
    """The day the generated export was taken: the latest time it holds (None when empty)."""
    times = [
        tables[name].column(column).to_numpy().max()
        for name, column in (("events", "occurred_at"), ("stage_history", "entered_at"))
        if tables[name].num_rows
    ]
    return str(max(times).astype("datetime64[D]")) if times else None


@app.command("validate")
@user_errors
def validate_cmd(
    file: Annotated[Path, typer.Argument(help="CSV or Parquet export, or a generator folder.")],
    spec: SpecOpt = None,
    label: LabelOpt = None,
    positive: PositiveOpt = None,
    id_col: IdOpt = None,
    time_col: TimeOpt = None,
    email: Annotated[str | None, typer.Option("--email", help="Email column (duplicate contacts).")] = None,
    json_out: JsonOpt = False,
) -> None:
    """Check an export: duplicates, placeholders, dates, impossible values, label, class sizes."""
    from leadscore.data.checking import validate_export

    ds = resolve_spec(file, spec, label, positive, id_col, time_col)
    if email:
        ds.email = email
    report = validate_export(file, ds)
    if json_out:
        echo_json(report.to_dict())
    else:
        for line in report.lines():
            typer.echo(line)
        for line in table_lines(report.tables):
            typer.echo(line)
        if report.matching is not None:
            from leadscore.data.matching import matched_line

            typer.echo(f"accounts: leads {matched_line(report.matching)}")
        if report.read_as:
            typer.echo(f"{file}: read as {report.read_as}")
        verdict = "usable" if report.usable else "NOT usable"
        typer.echo(
            f"{file}: {report.rows:,} rows, {report.positives:,} SQL / {report.negatives:,} non-SQL: {verdict}"
        )
    raise typer.Exit(code=report.exit_code)


@app.command()
@user_errors
def features(
    folder: Annotated[
        str, typer.Argument(help="A data folder of a CRM's own tables (leads, activity, stages).")
    ],
    spec: Annotated[str, typer.Option("--spec", help="Dataset spec declaring the tables and features.")],
    out: Annotated[
        str,
        typer.Option(
            "--out",
            help="Training table: a .parquet or .csv file (pandas), or a Parquet folder (both engines).",
        ),
    ],
    engine: EngineOpt = "pandas",
    master: MasterOpt = None,
    buckets: BucketsOpt = None,
    labels: Annotated[
        bool, typer.Option("--labels/--no-labels", help="Add the label from the status history.")
    ] = True,
    level: Annotated[
        str,
        typer.Option(
            "--level",
            help="lead: the leads' table; account: the accounts at their training moments with their "
            "label (the spec's 'accounts' block).",
        ),
    ] = "lead",
    json_out: JsonOpt = False,
) -> None:
    """The training table of a folder: its leads with the spec's declared point-in-time roll-ups and
    the label from the status history (or, with --level account, its accounts at their moments),
    computed in this process or with Spark (the same rows)."""
    import time

    from leadscore.spec import load_spec

    check_engine(engine, master)
    ds = load_spec(spec)
    if level not in ("lead", "account"):
        raise UserError(f"--level: unknown level '{level}' (lead or account)")
    if level == "account":
        started = time.perf_counter()
        rows = account_features(Path(folder), ds, out, engine, master, buckets)
        _said(out, rows, engine, round(time.perf_counter() - started, 2), json_out, "account moments")
        return
    if not (ds.definitions or ds.label.stages):
        raise UserError(f"spec '{ds.name}': declares no activity features or stage labels to compute")
    started = time.perf_counter()
    if engine == "spark":
        from leadscore.spark.features import declared_frame
        from leadscore.spark.session import read_table as spark_read
        from leadscore.spark.session import spark_session, write_parquet

        session = spark_session(master)
        write_parquet(declared_frame(session, folder, ds, labels=labels, buckets=buckets), out)
        rows = spark_read(session, out).count()
    else:
        rows = _pandas_features(Path(folder), ds, Path(out), labels, buckets)
    _said(out, rows, engine, round(time.perf_counter() - started, 2), json_out, "leads")


def _said(out: str, rows: int, engine: str, seconds: float, json_out: bool, what: str) -> None:
    summary = {"out": out, "rows": rows, "engine": engine, "seconds": seconds}
    if json_out:
        echo_json(summary)
    else:
        info(f"wrote the training table of {rows:,} {what} to {out} ({engine}, {seconds} s)")


def account_features(
    folder: Path, ds: DatasetSpec, out: str, engine: str, master: str | None, buckets: int | None
) -> int:
    """``features --level account``: the accounts at their training moments, with their label."""
    if engine == "spark":
        from leadscore.spark.accounts import account_frame
        from leadscore.spark.session import read_table as spark_read
        from leadscore.spark.session import spark_session, write_parquet

        session = spark_session(master)
        write_parquet(account_frame(session, str(folder), ds, buckets=buckets), out)
        return int(spark_read(session, out).count())
    from leadscore.data.account_table import account_table

    return _written(account_table(folder, ds).frame, Path(out))


def _pandas_features(folder: Path, ds: DatasetSpec, out: Path, labels: bool, buckets: int | None) -> int:
    from leadscore.data.buckets import bucket_work, bucketed_leads, write_tables
    from leadscore.data.folders import is_declared_folder, read_leads

    if not is_declared_folder(folder, ds):
        raise UserError(f"{folder}: not a folder of tables (the spec's '{ds.table('leads')}' table)")
    if buckets is None:
        return _written(read_leads(folder, ds, labels=labels), out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with bucket_work(out) as work:  # split by lead, one bucket in memory at a time
        (work / "out").mkdir()
        return write_tables(bucketed_leads(folder, ds, buckets, work, labels=labels), out, work / "out")


def _written(frame: pd.DataFrame, out: Path) -> int:
    """``frame`` written atomically to a .csv or .parquet file, or as a Parquet folder's one part."""
    from leadscore.data.sources import atomic_path

    suffix = out.suffix.lower()
    target = out if suffix in {".parquet", ".csv"} else out / "part-00000.parquet"
    with atomic_path(target) as tmp:
        if suffix == ".csv":
            frame.to_csv(tmp, index=False)
        else:
            frame.to_parquet(tmp, index=False)
    return len(frame)


@app.command()
@user_errors
def points(
    data: Annotated[Path, typer.Argument(help="CSV or Parquet export, or a generator folder.")],
    rules: Annotated[
        str, typer.Option("--rules", help="Points model: YAML path or a shipped name (configs/rules/).")
    ] = "b2b-default",
    out: Annotated[
        Path | None, typer.Option("--out", help="Write points per lead here (.csv or .parquet).")
    ] = None,
    id_col: IdOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Score leads with the written points model (the baseline and cold-start fallback)."""
    from leadscore.data.sources import read_table, write_frame
    from leadscore.scoring.points import load_rules

    model = load_rules(rules)
    frame = read_table(data)
    missing = [c for c in model.columns if c not in frame.columns]
    if missing:
        info(f"warning: columns not in the data, scored as not met: {', '.join(missing)}")
    scored = model.score(frame)
    if id_col:
        if id_col not in frame.columns:
            raise UserError(f"--id: column '{id_col}' not in {data}")
        scored.insert(0, id_col, frame[id_col].to_numpy())
    summary = {"rules": model.name, "leads": len(frame), "mql_share": round(float(scored["mql"].mean()), 4)}
    if out:
        write_frame(scored, out)
        summary["out"] = str(out)
    if json_out:
        echo_json(summary)
    else:
        info(f"{summary['leads']:,} leads scored with '{model.name}': {summary['mql_share']:.1%} are MQL")


def table_lines(tables: dict[str, dict[str, Any]]) -> list[str]:
    """A data folder's tables in a few lines: rows, leads covered, rows per lead, stage paths."""
    lines = []
    for kind, f in tables.items():
        per = f["per_lead"]
        line = (
            f"table '{f['file']}' ({kind}): {f['rows']:,} rows; {f['leads_with_rows']:,} of {f['leads']:,} "
            f"leads have some (per lead: median {per['median']:g}, p90 {per['p90']:g}, max {per['max']:,})"
        )
        if "after_scoring" in f:
            line += f"; {f['read_for_features']:,} read for features, {f['after_scoring']:,} dated after their lead's scoring time (not read)"
        lines.append(line)
        for p in f.get("paths", []):
            lines.append(
                f"  stage path {p['path']}: {p['leads']:,} leads, {p['sql']:,} SQL of {p['labelled']:,} labelled"
            )
    return lines
