"""The account side of ``train`` and ``score``: which levels to train, ``--as-of``, scoring an
account model, and a lead model's scores with their accounts (``--accounts-model``)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from leadscore.cli._util import echo_json, info
from leadscore.errors import UserError, not_a_date
from leadscore.spec import DatasetSpec

if TYPE_CHECKING:
    from leadscore.scoring.bundle import ModelBundle


def score_accounts(
    bundle: ModelBundle,
    data: str,
    out: str,
    as_of: str | None,
    explain: int,
    engine: tuple[str, str | None, int | None],
    log_scores: bool,
    json_out: bool,
) -> None:
    """``score`` with an account model: every account of the folder as of one moment (``engine``:
    the engine, Spark's master and buckets)."""
    from leadscore.scoring.accounts import score_accounts_file

    name, master, buckets = engine
    if name == "spark":
        from leadscore.spark.accounts import score_accounts_spark
        from leadscore.spark.session import spark_session

        session = spark_session(master)
        summary = score_accounts_spark(
            session, str(data), bundle, str(out), as_of_moment(as_of), explain=explain, buckets=buckets
        )
    else:
        if buckets is not None:
            raise UserError("--buckets: an account model's accounts are split by --engine spark, not here")
        summary = score_accounts_file(bundle, data, out, as_of_moment(as_of), explain)
    if log_scores:  # after the output is in place, in one transaction (as a lead model's batch run)
        summary["logged"] = log_account_file(str(out))
    if json_out:
        echo_json(summary)
    else:
        info(
            f"scored {summary['rows']:,} accounts as of {summary['as_of']} ({summary['qualified']:,} "
            f"qualified) -> {summary['out']}"
        )


def log_account_file(out: str) -> int:
    """The account answers of a score file or Spark folder into the store (each account's last:
    what the account queue page reads); how many."""
    import pandas as pd

    from leadscore.data.sources import read_table
    from leadscore.store.account_answers import account_row, write_account_answers
    from leadscore.store.db import open_store
    from leadscore.store.scores import now_utc

    frame = pd.read_parquet(out) if Path(out).is_dir() else read_table(out)
    now = now_utc()
    rows = [account_row(r, "batch", now) for r in frame.to_dict("records")]
    return write_account_answers(open_store(), rows)


def as_of_moment(as_of: str | None) -> float:
    """``--as-of`` as epoch ms (a day: its start, 00:00 UTC; a time with a zone: in UTC); now without."""
    import time

    from leadscore.features.values import moment_ms

    if as_of is None:
        return time.time() * 1000
    try:
        return moment_ms(as_of)
    except ValueError:
        raise not_a_date("--as-of", as_of) from None


def with_accounts(
    accounts_model: str | None, data: str, bundle: ModelBundle, as_of: str | None
) -> Callable[[Any], Any] | None:
    """``--accounts-model``: the function adding each lead's account and its P(opportunity)."""
    if accounts_model is None:
        return None
    from leadscore.scoring.accounts import lead_accounts
    from leadscore.tracking.loading import load_bundle

    accounts = load_bundle(accounts_model)
    if accounts.spec.account_of is None:
        raise UserError(f"--accounts-model: {accounts_model} is a lead model, not an account model")
    if not bundle.id_column:
        raise UserError("--accounts-model: the lead model's spec names no id column to match leads by")
    return lead_accounts(accounts, data, bundle.id_column, as_of_moment(as_of))


def levels(level: str | None, spec: DatasetSpec) -> tuple[str, ...]:
    """Which models to train: the lead model, the account model, or both."""
    has_accounts = spec.accounts is not None and spec.accounts.label is not None
    if level is None:
        return ("lead", "account") if has_accounts else ("lead",)
    if level not in LEVELS:
        raise UserError(f"--level: unknown level '{level}' (use {', '.join(LEVELS)})")
    if level != "lead" and not has_accounts:
        raise UserError(f"--level {level}: spec '{spec.name}' has no 'accounts' block with a 'label'")
    return ("lead", "account") if level == "both" else (level,)


LEVELS = ("lead", "account", "both")


LevelOpt = Annotated[
    str | None,
    typer.Option(
        "--level",
        help="lead, account or both (default: both when the spec has an accounts block with a label, else lead).",
    ),
]


AsOfOpt = Annotated[
    str | None,
    typer.Option(
        "--as-of", help="An account model: score every account as of this day or time (default: now)."
    ),
]


AccountsModelOpt = Annotated[
    str | None,
    typer.Option(
        "--accounts-model",
        help="An account model: add each lead's account_id and its account's p_opportunity (as of --as-of).",
    ),
]
