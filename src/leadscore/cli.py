"""The ``leadscore`` command line: each command a thin wrapper over a module."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from leadscore import _cli_ops
from leadscore._cli_reports import report_app
from leadscore._cli_util import JsonOpt, echo_json, info, user_errors
from leadscore.config import DatasetSpec, UserError, load_spec, spec_from_flags

app = typer.Typer(
    name="leadscore",
    help="Predict which B2B leads become SQLs, explain why, and apply the agreed MQL cutoff.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

SpecOpt = Annotated[
    str | None, typer.Option("--spec", help="Dataset spec: a YAML path or a name in configs/datasets/.")
]
LabelOpt = Annotated[str | None, typer.Option("--label", help="Label column (when there is no spec).")]
PositiveOpt = Annotated[
    list[str] | None, typer.Option("--positive", help="Label value that means SQL (repeatable).")
]
IdOpt = Annotated[str | None, typer.Option("--id", help="Id column.")]
TimeOpt = Annotated[str | None, typer.Option("--time", help="Timestamp column (time-based split).")]
ExcludeOpt = Annotated[list[str] | None, typer.Option("--exclude", help="Column to leave out (repeatable).")]


def resolve_spec(
    data: Path,
    spec: str | None,
    label: str | None,
    positive: list[str] | None,
    id_col: str | None,
    time_col: str | None,
    exclude: list[str] | None = None,
) -> DatasetSpec:
    """The dataset spec from ``--spec``, or one described by flags alone."""
    if spec and label:
        raise UserError("give either --spec or --label, not both")
    if spec:
        loaded = load_spec(spec)
        for col in exclude or []:
            loaded.exclude.setdefault(col, "excluded on the command line")
        return loaded
    if not label:
        raise UserError("name the label column with --label COL, or give a dataset spec with --spec")
    name = data.stem if data.is_file() else data.name
    return spec_from_flags(name or "data", label, positive, id_col, time_col, exclude)


@app.command()
@user_errors
def generate(
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
    json_out: JsonOpt = False,
) -> None:
    """Generate realistic synthetic B2B leads with events, stage history and ground truth."""
    from leadscore.data.synthetic import GeneratorConfig, write_dataset
    from leadscore.data.synthetic import generate as draw

    if fmt not in {"parquet", "csv"}:
        raise UserError(f"--format: unknown format '{fmt}' (use parquet or csv)")
    tables = draw(GeneratorConfig(leads=leads, seed=seed, fault_rate=fault_rate, drift=drift))
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
    }
    if json_out:
        echo_json(summary)
    else:
        info(
            f"wrote {summary['leads']:,} leads, {summary['events']:,} events and "
            f"{summary['stage_rows']:,} stage rows to {out} (SQL rate {summary['sql_rate']:.1%})"
        )


@app.command()
@user_errors
def validate(
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
    from leadscore.data.sources import read_table
    from leadscore.data.validate import validate_frame

    ds = resolve_spec(file, spec, label, positive, id_col, time_col)
    if email:
        ds.email = email
    frame = read_table(file)
    report = validate_frame(frame, ds, source=str(file))
    if json_out:
        echo_json(report.to_dict())
    else:
        for line in report.lines():
            typer.echo(line)
        verdict = "usable" if report.usable else "NOT usable"
        typer.echo(
            f"{file}: {report.rows:,} rows, {report.positives:,} SQL / {report.negatives:,} non-SQL: {verdict}"
        )
    raise typer.Exit(code=report.exit_code)


@app.command()
@user_errors
def points(
    data: Annotated[Path, typer.Argument(help="CSV or Parquet export, or a generator folder.")],
    rules: Annotated[
        str, typer.Option("--rules", help="Points model: YAML path or name in configs/rules/.")
    ] = "b2b-default",
    out: Annotated[
        Path | None, typer.Option("--out", help="Write points per lead here (.csv or .parquet).")
    ] = None,
    id_col: IdOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Score leads with the written points model (the baseline and cold-start fallback)."""
    from leadscore.data.sources import read_table, write_frame
    from leadscore.rules import load_rules

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


@app.command()
@user_errors
def train(
    data: Annotated[Path, typer.Argument(help="CSV or Parquet export, or a generator folder.")],
    spec: SpecOpt = None,
    label: LabelOpt = None,
    positive: PositiveOpt = None,
    id_col: IdOpt = None,
    time_col: TimeOpt = None,
    exclude: ExcludeOpt = None,
    cutoff: Annotated[
        str, typer.Option("--cutoff", help="Cutoff contract: YAML path or name in configs/cutoffs/.")
    ] = "default",
    keep: Annotated[
        list[str] | None,
        typer.Option("--keep", help="Keep a column the leakage guard would exclude (repeatable)."),
    ] = None,
    promote: Annotated[bool, typer.Option("--promote", help="Make this model the champion.")] = False,
    capacity: Annotated[
        str | None,
        typer.Option(
            "--capacity", help="Force a model shape: group-pure-d3 (fastest grades), shallow-d3 or deeper-d6."
        ),
    ] = None,
    seed: Annotated[int, typer.Option("--seed")] = 42,
    feedback: Annotated[
        Path | None,
        typer.Option("--feedback", help="Feedback store: sales' accept/reject decisions become the labels."),
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """Train a calibrated P(SQL) model with baselines, leakage guard and the agreed cutoff; log it to MLflow."""
    from leadscore.workflow import train_and_log

    ds = resolve_spec(data, spec, label, positive, id_col, time_col, exclude)
    result, payload = train_and_log(
        data, ds, cutoff=cutoff, keep=keep, promote=promote, capacity=capacity, seed=seed, feedback=feedback
    )
    cut = result.cutoff
    if json_out:
        echo_json(payload)
        return
    m = result.metrics
    info(f"\nmodel {result.bundle.version} on {result.n_test:,} held-out leads:")
    info(
        f"  ROC AUC {m['roc_auc']:.3f}  PR AUC {m['pr_auc']:.3f}  Brier {m['brier']:.4f}  ECE {m['ece']:.4f}"
    )
    for name, b in result.baselines.items():
        info(f"  {name:<20} ROC AUC {b['roc_auc']:.3f}  PR AUC {b['pr_auc']:.3f}  Brier {b['brier']:.4f}")
    points_rate = cut["points_model_sql_rate_at_same_volume"]
    info(
        f"  cutoff p >= {cut['threshold']:.3f} ({cut['policy']}): {cut['expected_mql_share']:.1%} MQL, "
        f"MQL->SQL {cut['expected_sql_rate']:.1%}, recall {cut['expected_recall']:.1%}"
        + (f"; points model at the same volume: {points_rate:.1%}" if points_rate is not None else "")
    )
    info(
        f"  MLflow run {payload['run_id']} ({payload['model_uri']}, aliases: {', '.join(payload['aliases'])})"
    )
    info(f"  exported to {payload['model_path']}")


@app.command()
@user_errors
def score(
    data: Annotated[Path, typer.Argument(help="CSV or Parquet export to score.")],
    model: Annotated[
        str,
        typer.Option(
            "--model", help="Model folder (models/<dataset>) or MLflow URI (models:/leadscore-x@champion)."
        ),
    ],
    out: Annotated[Path, typer.Option("--out", help="Output file (.csv or .parquet), written atomically.")],
    explain: Annotated[int, typer.Option("--explain", min=0, max=20, help="Top K reasons per lead.")] = 0,
    chunk_rows: Annotated[int, typer.Option("--chunk-rows", min=100, help="Rows per chunk.")] = 50_000,
    json_out: JsonOpt = False,
) -> None:
    """Score a CSV or Parquet export in chunks: id, p_sql, mql, grade and top reasons."""
    from leadscore.scoring import score_file

    summary = score_file(data, model, out, explain=explain, chunk_rows=chunk_rows, progress=not json_out)
    if json_out:
        echo_json(summary)
    else:
        info(f"scored {summary['rows']:,} leads ({summary['mql_share']:.1%} MQL) -> {summary['out']}")


@app.command()
@user_errors
def serve(
    model: Annotated[
        str | None,
        typer.Option(
            "--model", help="Model folder or MLflow URI (default: LEADSCORE_MODEL or models/synthetic)."
        ),
    ] = None,
    host: Annotated[str, typer.Option("--host")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=1, max=65535)] = 8000,
    workers: Annotated[int, typer.Option("--workers", min=1, help="Worker processes (one per core).")] = 1,
    insecure_dev: Annotated[
        bool, typer.Option("--insecure-dev", help="Serve without API keys (local development only).")
    ] = False,
) -> None:
    """Serve the scoring API for the CRM (FastAPI + uvicorn)."""
    import os

    import uvicorn

    from leadscore.config import get_settings
    from leadscore.service.app import create_app

    settings = get_settings()
    app_obj = create_app(model, insecure=insecure_dev or settings.insecure_dev)  # fails fast, one line
    if insecure_dev:
        info("warning: --insecure-dev: the API accepts requests without a key; never expose this server")
    source = model or settings.model
    info(f"serving {source} on http://{host}:{port} (docs at /docs)")
    common = {
        "host": host,
        "port": port,
        "access_log": False,
        "timeout_graceful_shutdown": 10,
        "log_level": "warning",
    }
    if workers == 1:
        uvicorn.run(app_obj, **common)  # type: ignore[arg-type]
        return
    os.environ["LEADSCORE_MODEL"] = source
    os.environ["LEADSCORE_WORKERS"] = str(workers)
    if insecure_dev:
        os.environ["LEADSCORE_INSECURE_DEV"] = "true"
    uvicorn.run("leadscore.service.app:create_app_from_env", factory=True, workers=workers, **common)  # type: ignore[arg-type]


@app.command("hash-key")
def hash_key_cmd(key: Annotated[str, typer.Argument(help="An API key to store in a key file.")]) -> None:
    """Print the SHA-256 line to put in LEADSCORE_API_KEY_FILE for a key."""
    from leadscore.service.auth import hash_key

    typer.echo(f"sha256:{hash_key(key)}")


@app.command()
@user_errors
def demo(
    out: Annotated[Path, typer.Option("--out", help="Folder for the demo data and outputs.")] = Path(
        "data/demo"
    ),
    leads: Annotated[int, typer.Option("--leads", min=1000, help="Synthetic leads to generate.")] = 30_000,
    seed: Annotated[int, typer.Option("--seed")] = 42,
    port: Annotated[int, typer.Option("--port", help="Port for the service at the end.")] = 8000,
) -> None:
    """Run the whole path on synthetic data and say where to look."""
    from leadscore.demo import run_demo

    run_demo(out=out, leads=leads, seed=seed, port=port)


app.add_typer(report_app, name="report")
app.command("promote")(_cli_ops.promote)
app.command("monitor")(_cli_ops.monitor)
app.add_typer(_cli_ops.feedback_app, name="feedback")


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
