"""Keeping the model right: ``leadscore monitor``, ``leadscore feedback import|sla`` and
``leadscore store migrate-feedback|purge|upgrade``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from leadscore.cli._util import JsonOpt, SpecOpt, cli_time, echo_json, info, user_errors
from leadscore.errors import UserError

app = typer.Typer()


@app.command("monitor")
@user_errors
def monitor_cmd(
    model: Annotated[
        str, typer.Option("--model", help="Model folder or MLflow URI (the one in production).")
    ],
    reference: Annotated[
        Path, typer.Option("--reference", help="The training data (file or generator folder).")
    ],
    current: Annotated[
        Path | None,
        typer.Option(
            "--current",
            help="Recent leads (outcomes used where known); with --served, later outcomes joined by id.",
        ),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option("--out", help="HTML report (default: monitor.html beside the current data)."),
    ] = None,
    feedback_store: Annotated[
        str | None,
        typer.Option(
            "--feedback",
            help="Store with sales decisions: URL or SQLite file (default: LEADSCORE_DATABASE_URL).",
        ),
    ] = None,
    source: Annotated[
        str | None, typer.Option("--source", help="Lead source column (default: the dataset spec's).")
    ] = None,
    served: Annotated[
        str | None,
        typer.Option(
            "--served",
            help="Monitor what the service really served since this date, from the store's score log.",
        ),
    ] = None,
    log: Annotated[bool, typer.Option("--log/--no-log", help="Log the run to MLflow.")] = True,
    json_out: JsonOpt = False,
) -> None:
    """Drift, calibration and the contract on recent leads: verdict ok, watch or retrain (exit code 3)."""
    from leadscore.jobs.workflow import monitor_and_report
    from leadscore.monitoring.feedback import existing_store

    store = existing_store(feedback_store) if feedback_store is not None else None
    since = cli_time("--served", served) if served is not None else None
    if current is None and since is None:
        raise UserError(
            "give --current FILE (recent leads) or --served SINCE (the scores the service logged)"
        )
    here = (
        Path("monitor.html")
        if current is None
        else (current if current.is_dir() else current.parent) / "monitor.html"
    )
    target = out or here
    result = monitor_and_report(
        model, reference, current, target, feedback=store, source=source, log_run=log, served_since=since
    )
    if json_out:
        echo_json(result)
    else:
        if "served" in result:
            sent = result["served"]
            info(
                f"served: {sent['answers']:,} answers to {sent['leads']:,} leads since {sent['since']}, "
                f"{sent['mql_share_sent']:.1%} sent as MQL, {sent['leads_with_outcome']:,} with an outcome"
            )
        info(f"verdict: {result['verdict']}")
        for reason in result["reasons"]:
            info(f"  {reason}")
        info(f"report -> {target}")
    if result["verdict"] == "retrain":
        raise typer.Exit(3)


feedback_group = typer.Typer(
    help="Sales feedback: import accept/reject decisions, and the service-level report.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
StoreOpt = Annotated[
    str | None,
    typer.Option(
        "--store", help="The store: a database URL or a SQLite file (default: LEADSCORE_DATABASE_URL)."
    ),
]


@feedback_group.command("import")
@user_errors
def feedback_import(
    file: Annotated[
        Path, typer.Argument(help="CRM export: lead_id, decision, reason, decided_at [, mql_at, rep].")
    ],
    store: StoreOpt = None,
    spec: SpecOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Add accept/reject decisions to the store; importing the same file again changes nothing
    (``--spec``: its ``reject_reasons`` are taken beside the standard ones)."""
    from leadscore.data.sources import resolve_leads_path
    from leadscore.monitoring.feedback import import_feedback

    path = file
    if file.is_dir():  # a generator folder: its feedback table
        from leadscore.data.sources import find_table

        found = find_table(file, "feedback")
        if found is None:
            raise UserError(f"{file}: folder has no feedback.parquet or feedback.csv")
        path = found
    else:
        path = resolve_leads_path(file)
    own: list[str] = []
    if spec:
        from leadscore.spec import load_spec

        own = load_spec(spec).reject_reasons
    summary = import_feedback(path, store, own)
    if json_out:
        echo_json(summary)
    else:
        info(
            f"{summary['new']:,} new decisions, {summary['already_known']:,} already known; "
            f"{summary['total']:,} in {summary['store']}"
        )


@feedback_group.command("sla")
@user_errors
def feedback_sla(
    store: StoreOpt = None,
    data: Annotated[
        Path | None, typer.Option("--data", help="Leads, to tell demo/pricing requests (1 hour) from others.")
    ] = None,
    spec: Annotated[
        str, typer.Option("--spec", help="Dataset spec (which fields mean a fast lane).")
    ] = "synthetic",
    json_out: JsonOpt = False,
) -> None:
    """Time from MQL to accept or reject, against 1 hour for demo or pricing requests and 24 hours otherwise."""
    from leadscore.data.sources import read_table, resolve_leads_path
    from leadscore.monitoring.feedback import existing_store, load_store, sla_report, with_logged_mql_times
    from leadscore.spec import load_spec
    from leadscore.store.db import open_store
    from leadscore.store.scores import first_mql_answers

    url = existing_store(store)
    ds = load_spec(spec)
    # Decisions without an mql_at take the time the service first sent the lead as an MQL.
    decisions, logged_leads = with_logged_mql_times(load_store(url), first_mql_answers(open_store(url)), ds)
    leads = read_table(resolve_leads_path(data)) if data else logged_leads
    report = sla_report(decisions, leads, ds)
    if json_out:
        echo_json(report)
        return
    info(f"{report['share_within_target']:.1%} of {report['decisions']:,} MQLs answered within target")
    for lane in report["lanes"]:
        if lane["decisions"]:
            info(
                f"  {lane['lane']:<24} target {lane['target_hours']:g} h: {lane['share_within_target']:.1%} within, "
                f"median {lane['median_hours']:.1f} h, p90 {lane['p90_hours']:.1f} h ({lane['decisions']:,} MQLs)"
            )


app.add_typer(feedback_group, name="feedback")

store_group = typer.Typer(
    help="The store (sales decisions, the score log): migrate, retention and deletion requests.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


@store_group.command("migrate-feedback")
@user_errors
def store_migrate_feedback(
    file: Annotated[Path, typer.Argument(help="The Parquet feedback store of earlier versions.")],
    store: StoreOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Import the old Parquet feedback store into the database once (running it again adds nothing)."""
    from leadscore.data.sources import resolve_leads_path
    from leadscore.monitoring.feedback import migrate_feedback

    summary = migrate_feedback(resolve_leads_path(file), store)
    if json_out:
        echo_json(summary)
    else:
        info(
            f"{summary['new']:,} decisions moved from {file} ({summary['already_known']:,} already there); "
            f"{summary['total']:,} in {summary['store']}. The Parquet file is no longer read."
        )


@store_group.command("purge")
@user_errors
def store_purge(
    before: Annotated[
        str | None, typer.Option("--before", help="Delete logged scores older than this date (retention).")
    ] = None,
    lead: Annotated[
        str | None,
        typer.Option(
            "--lead", help="Delete every row of this lead: its scores and decisions (a deletion request)."
        ),
    ] = None,
    store: StoreOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Retention and deletion requests: old score-log rows, or everything about one lead."""
    from leadscore.store.db import open_store
    from leadscore.store.scores import purge

    if before is None and lead is None:
        raise UserError("give --before DATE (retention) or --lead ID (a deletion request)")
    cutoff = None
    if before is not None:
        cutoff = cli_time("--before", before)
    opened = open_store(store)
    counts = purge(opened, before=cutoff, lead=lead)
    result = {"store": opened.shown, "before": before, "lead": lead, "deleted": counts}
    if json_out:
        echo_json(result)
    else:
        info(
            f"deleted {counts['scores']:,} logged scores, {counts['latest_scores']:,} latest scores and "
            f"{counts['decisions']:,} decisions from {opened.shown}"
        )


@store_group.command("upgrade")
@user_errors
def store_upgrade(store: StoreOpt = None) -> None:
    """Create the store or bring its schema to this version (every command does this when it opens it)."""
    from leadscore.store.db import migrate, open_store

    opened = open_store(store)
    info(f"{opened.shown}: schema at revision {migrate(opened)}")


@store_group.command("info")
@user_errors
def store_info(store: StoreOpt = None, json_out: JsonOpt = False) -> None:
    """Where the store is, its schema revision, and what it holds."""
    from leadscore.store.db import migrate, open_store
    from leadscore.store.scores import store_counts

    opened = open_store(store)
    result = {"store": opened.shown, "revision": migrate(opened), **store_counts(opened)}
    if json_out:
        echo_json(result)
    else:
        info(
            f"{result['store']} (schema {result['revision']}): {result['decisions']:,} decisions, "
            f"{result['scores']:,} logged scores of {result['leads_scored']:,} leads"
            + (f" from {result['first_score']} to {result['last_score']}" if result["scores"] else "")
        )


app.add_typer(store_group, name="store")
