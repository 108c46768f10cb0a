"""Keeping the model right: ``promote`` (champion/challenger, rollback), ``monitor`` and ``feedback``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from leadscore._cli_util import echo_json, info, user_errors
from leadscore.config import UserError

JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout.")]
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
