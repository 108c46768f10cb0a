"""The account model's training run: the accounts at their moments, trained by the lead pipeline
(capacity search, calibration, baselines, leakage guard, the contract's account policy, finalize),
logged to MLflow, registered as ``leadscore-<dataset>-accounts`` and exported beside the lead model."""

from __future__ import annotations

import logging
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

from leadscore.data.account_table import account_model_spec, account_table
from leadscore.data.matching import matched_line
from leadscore.data.sources import write_frame
from leadscore.jobs.workflow import log_trained, train_options
from leadscore.modeling.train import TrainResult, train_model
from leadscore.spec import DatasetSpec
from leadscore.tracking.lineage import check_spec_lineage

log = logging.getLogger(__name__)


def train_accounts_and_log(
    folder: str | Path,
    spec: DatasetSpec,
    *,
    cutoff: str | Path = "default",
    promote: bool = False,
    capacity: str | None = None,
    seed: int = 42,
    finalize: bool = True,
    refit_seeds: int | None = None,
) -> tuple[TrainResult, dict[str, Any]]:
    """Train the account model of ``folder``, log and register it; the result and ``train``'s summary."""
    options, contract_path = train_options(
        cutoff, capacity=capacity, seed=seed, finalize=finalize, refit_seeds=refit_seeds
    )
    options = replace(options, contract=options.contract.for_accounts(), time_head=False)
    table = account_table(folder, spec)
    model_spec = account_model_spec(spec, table.export_ms)
    check_spec_lineage(model_spec)
    c = table.counts
    log.info(
        "training the account model on %s: %d accounts at %d moments (%d rows) ...",
        folder,
        c["accounts"],
        c["moments"],
        len(table.frame),
    )
    with tempfile.TemporaryDirectory() as tmp:
        rows = write_frame(table.frame, Path(tmp) / "account_moments.parquet")
        result = train_model(rows, model_spec, options)
    matched = table.tables.matches.counts
    result.notes[:0] = [
        f"{c['accounts']:,} accounts with activity at {c['moments']} moments: {len(table.frame):,} account "
        f"moments; left out {c.get('in_pipeline', 0):,} already in the pipeline (an opportunity in the "
        "label window before the moment)",
        f"leads to accounts: {matched_line(matched)}",
    ]
    payload = log_trained(result, folder, model_spec, options, contract_path, promote=promote)
    payload["level"] = "account"
    payload["account_moments"] = {**c, "rows": len(table.frame)}
    return result, payload
