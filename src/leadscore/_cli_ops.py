"""Keeping the model right: ``promote`` (champion/challenger, rollback), ``monitor`` and ``feedback``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from leadscore._cli_util import JsonOpt, echo_json, info, user_errors
from leadscore.config import UserError

DatasetOpt = Annotated[
    str, typer.Option("--dataset", help="Dataset name: the registered model is leadscore-<dataset>.")
]


@user_errors
def promote(
    challenger: Annotated[
        str | None,
        typer.Option("--challenger", help="Version to promote: a number, an alias or models:/name/N."),
    ] = None,
    data: Annotated[
        Path | None, typer.Option("--data", help="Recent labelled leads both models are compared on.")
    ] = None,
    dataset: DatasetOpt = "synthetic",
    force: Annotated[
        str | None, typer.Option("--force", help="Promote even if worse; the reason is recorded.")
    ] = None,
    rollback: Annotated[bool, typer.Option("--rollback", help="Restore the previous champion.")] = False,
    reason: Annotated[str | None, typer.Option("--reason", help="Why (recorded with a rollback).")] = None,
    by: Annotated[str | None, typer.Option("--by", help="Who decides (default: the OS user).")] = None,
    tol_auc: Annotated[float, typer.Option("--tolerance-auc", min=0.0, help="Allowed ROC AUC loss.")] = 0.005,
    tol_brier: Annotated[
        float, typer.Option("--tolerance-brier", min=0.0, help="Allowed Brier rise.")
    ] = 0.002,
    tol_rate: Annotated[
        float, typer.Option("--tolerance-sql-rate", min=0.0, help="Allowed MQL->SQL rate loss.")
    ] = 0.02,
    json_out: JsonOpt = False,
) -> None:
    """Move the champion alias to a challenger that is not worse on recent leads, or roll back."""
    from leadscore import promotion

    if rollback:
        if challenger or force:
            raise UserError("--rollback takes no --challenger or --force")
        result = promotion.rollback(dataset, reason=reason, by=by)
        if json_out:
            echo_json(result)
        else:
            info(
                f"rolled back {result['registered_model']}: champion {result['champion_before']} -> "
                f"{result['champion_after']} ({result['because']}); exported to {result['model_path']}"
            )
        return
    if not challenger:
        raise UserError("--challenger: name the version to promote (or use --rollback)")
    tol = promotion.Tolerance(roc_auc=tol_auc, brier=tol_brier, mql_sql_rate=tol_rate)
    result = promotion.promote(dataset, challenger, data, tolerance=tol, force=force, by=by)
    if json_out:
        echo_json(result)
    else:
        for side, key in (("champion", "champion"), ("challenger", "challenger_metrics")):
            m = result.get(key)
            if m:
                info(
                    f"  {side:<10} ROC AUC {m['roc_auc']:.4f}  Brier {m['brier']:.4f}  "
                    f"MQL->SQL {m['mql_sql_rate']:.1%} on {m['leads']:,} recent leads"
                )
        if result["promoted"]:
            info(f"promoted version {result['challenger']} to champion ({result['because']})")
        else:
            why = "; ".join(result.get("worse", [])) or result.get("note", "")
            info(f"not promoted: {why}")
    if not result["promoted"] and result.get("worse"):
        raise typer.Exit(1)


@user_errors
def monitor(
    model: Annotated[
        str, typer.Option("--model", help="Model folder or MLflow URI (the one in production).")
    ],
    reference: Annotated[
        Path, typer.Option("--reference", help="The training data (file or generator folder).")
    ],
    current: Annotated[Path, typer.Option("--current", help="Recent leads (outcomes used where known).")],
    out: Annotated[
        Path | None,
        typer.Option("--out", help="HTML report (default: monitor.html beside the current data)."),
    ] = None,
    feedback_store: Annotated[
        Path | None, typer.Option("--feedback", help="Feedback store (default: LEADSCORE_FEEDBACK_STORE).")
    ] = None,
    source: Annotated[
        str | None, typer.Option("--source", help="Lead source column (default: the dataset spec's).")
    ] = None,
    log: Annotated[bool, typer.Option("--log/--no-log", help="Log the run to MLflow.")] = True,
    json_out: JsonOpt = False,
) -> None:
    """Drift, calibration and the contract on recent leads: verdict ok, watch or retrain (exit code 3)."""
    from leadscore.feedback import existing_store
    from leadscore.workflow import monitor_and_report

    store = existing_store(feedback_store) if feedback_store is not None else _store(None)
    target = out or ((current if current.is_dir() else current.parent) / "monitor.html")
    result = monitor_and_report(model, reference, current, target, feedback=store, source=source, log=log)
    if json_out:
        echo_json(result)
    else:
        info(f"verdict: {result['verdict']}")
        for reason in result["reasons"]:
            info(f"  {reason}")
        info(f"report -> {target}")
    if result["verdict"] == "retrain":
        raise typer.Exit(3)


feedback_app = typer.Typer(
    help="Sales feedback: import accept/reject decisions, and the service-level report.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
StoreOpt = Annotated[
    Path | None, typer.Option("--store", help="Feedback store (default: LEADSCORE_FEEDBACK_STORE).")
]


def _store(store: Path | None) -> Path:
    from leadscore.config import get_settings

    return Path(store or get_settings().feedback_store)


@feedback_app.command("import")
@user_errors
def feedback_import(
    file: Annotated[
        Path, typer.Argument(help="CRM export: lead_id, decision, reason, decided_at [, mql_at, rep].")
    ],
    store: StoreOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Add accept/reject decisions to the store; importing the same file again changes nothing."""
    from leadscore.data.sources import resolve_leads_path
    from leadscore.feedback import import_feedback

    path = file
    if file.is_dir():  # a generator folder: its feedback table
        from leadscore.data.sources import find_table

        found = find_table(file, "feedback")
        if found is None:
            raise UserError(f"{file}: folder has no feedback.parquet or feedback.csv")
        path = found
    else:
        path = resolve_leads_path(file)
    summary = import_feedback(path, _store(store))
    if json_out:
        echo_json(summary)
    else:
        info(
            f"{summary['new']:,} new decisions, {summary['already_known']:,} already known; "
            f"{summary['total']:,} in {summary['store']}"
        )


@feedback_app.command("sla")
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
    from leadscore.config import load_spec
    from leadscore.data.sources import read_table, resolve_leads_path
    from leadscore.feedback import existing_store, load_store, sla_report

    path = existing_store(_store(store))
    leads = read_table(resolve_leads_path(data)) if data else None
    report = sla_report(load_store(path), leads, load_spec(spec))
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
