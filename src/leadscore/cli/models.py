"""``leadscore train``, ``score`` and ``promote``: models made, used and moved to champion."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from leadscore.cli._accounts import (
    AccountsModelOpt,
    AsOfOpt,
    LevelOpt,
    score_accounts,
    with_accounts,
)
from leadscore.cli._accounts import levels as level_list
from leadscore.cli._util import (
    BucketsOpt,
    EngineOpt,
    ExcludeOpt,
    IdOpt,
    JsonOpt,
    LabelOpt,
    MasterOpt,
    ModelOpt,
    ObservedUntilOpt,
    PositiveOpt,
    SampleOpt,
    SpecOpt,
    TimeOpt,
    check_engine,
    cli_time,
    echo_json,
    info,
    resolve_spec,
    user_errors,
)
from leadscore.errors import UserError
from leadscore.spec import observed, rename

if TYPE_CHECKING:
    from leadscore.modeling.train import TrainResult

app = typer.Typer()
DatasetOpt = Annotated[
    str, typer.Option("--dataset", help="Dataset name: the registered model is leadscore-<dataset>.")
]


ScoreDataArg = Annotated[
    str,
    typer.Argument(
        help="CSV or Parquet export, or a folder of declared tables (with --engine spark also a Parquet "
        "folder, a glob or a cluster URI)."
    ),
]
ScoreOutOpt = Annotated[
    str,
    typer.Option(
        "--out",
        help="Output file (.csv or .parquet), written atomically; a Parquet folder with --engine spark.",
    ),
]
LogScoresOpt = Annotated[
    bool,
    typer.Option(
        "--log",
        help="Log every score to the store's score log (LEADSCORE_DATABASE_URL) and add each lead's "
        "previous score and trend to the output.",
    ),
]
CapacityOpt = Annotated[
    str | None,
    typer.Option(
        "--capacity", help="Force a model shape: group-pure-d3 (fastest grades), shallow-d3 or deeper-d6."
    ),
]
NameOpt = Annotated[
    str | None,
    typer.Option(
        "--name", help="Dataset name (default: the spec's, or the file's): the model is leadscore-<name>."
    ),
]
FeedbackOpt = Annotated[
    str | None,
    typer.Option(
        "--feedback",
        help="The store (database URL or SQLite file) whose sales decisions become the labels.",
    ),
]
RefitSeedsOpt = Annotated[
    int | None,
    typer.Option(
        "--refit-seeds",
        min=1,
        max=20,
        help="A cross-fitted (small) export's shipped booster averages this many fits with different "
        "seeds (default 3; 1: one fit, a third of the trees in every lead's reasons).",
    ),
]
FinalizeOpt = Annotated[
    bool,
    typer.Option(
        "--finalize/--no-finalize",
        help="Ship the evaluated recipe refitted on every labelled lead (default), or the model that "
        "was evaluated, which never learned from the test leads.",
    ),
]


@app.command("train")
@user_errors
def train_cmd(
    data: Annotated[Path, typer.Argument(help="CSV or Parquet export, or a generator folder.")],
    spec: SpecOpt = None,
    label: LabelOpt = None,
    positive: PositiveOpt = None,
    id_col: IdOpt = None,
    time_col: TimeOpt = None,
    exclude: ExcludeOpt = None,
    observed_until: ObservedUntilOpt = None,
    cutoff: Annotated[
        str, typer.Option("--cutoff", help="Cutoff contract: YAML path or a shipped name (configs/cutoffs/).")
    ] = "default",
    keep: Annotated[
        list[str] | None,
        typer.Option("--keep", help="Keep a column the leakage guard would exclude (repeatable)."),
    ] = None,
    promote: Annotated[bool, typer.Option("--promote", help="Make this model the champion.")] = False,
    capacity: CapacityOpt = None,
    seed: Annotated[int, typer.Option("--seed")] = 42,
    name: NameOpt = None,
    feedback: FeedbackOpt = None,
    finalize: FinalizeOpt = True,
    refit_seeds: RefitSeedsOpt = None,
    level: LevelOpt = None,
    sample: SampleOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Train a calibrated P(SQL) model with baselines, leakage guard and the agreed cutoff; log it to MLflow.
    With an accounts block (and its label) in the spec, the account model too."""
    from leadscore.jobs.accounts import train_accounts_and_log
    from leadscore.jobs.workflow import train_and_log

    ds = observed(resolve_spec(data, spec, label, positive, id_col, time_col, exclude), observed_until)
    if name is not None:
        ds = rename(ds, name)
    levels = level_list(level, ds)
    payload: dict[str, Any] = {}
    if "lead" in levels:
        result, payload = train_and_log(
            data,
            ds,
            cutoff=cutoff,
            keep=keep,
            promote=promote,
            capacity=capacity,
            seed=seed,
            feedback=feedback,
            finalize=finalize,
            sample=sample,
            refit_seeds=refit_seeds,
        )
        if not json_out:
            _print_trained(result, payload)
    if "account" in levels:
        accounts, account_payload = train_accounts_and_log(
            data,
            ds,
            cutoff=cutoff,
            promote=promote,
            capacity=capacity,
            seed=seed,
            finalize=finalize,
            refit_seeds=refit_seeds,
        )
        payload = {**payload, "accounts": account_payload} if payload else account_payload
        if not json_out:
            info("\naccount model:")
            _print_trained(accounts, account_payload)
    if json_out:
        echo_json(payload)


def _print_trained(result: TrainResult, payload: dict[str, Any]) -> None:
    """``train``'s report for people: the held-out figures, the shipped model, the cutoff, segments."""
    from leadscore.modeling.finalize import learned_line

    cut = result.cutoff
    m = result.metrics
    accounts = result.bundle.spec.account_of is not None  # its rows are account moments
    rows, flagged, outcome = (
        ("account moments", "qualified", "opportunity") if accounts else ("leads", "MQL", "SQL")
    )
    info(f"\nmodel {result.bundle.version} on {result.n_test:,} held-out {rows}:")
    info(
        f"  ROC AUC {m['roc_auc']:.3f}  PR AUC {m['pr_auc']:.3f}  Brier {m['brier']:.4f}  ECE {m['ece']:.4f}"
    )
    for name, b in result.baselines.items():
        info(f"  {name:<20} ROC AUC {b['roc_auc']:.3f}  PR AUC {b['pr_auc']:.3f}  Brier {b['brier']:.4f}")
    points_rate = cut.points_model_sql_rate_at_same_volume
    info(f"  shipped model: {learned_line(payload['learned_from'], rows, outcome)}")
    info(
        f"  cutoff p >= {cut.threshold or 0.0:.3f} ({cut.policy}): {cut.expected_mql_share or 0.0:.1%} {flagged}, "
        f"{flagged}->{outcome} {cut.expected_sql_rate or 0.0:.1%}, recall {cut.expected_recall or 0.0:.1%}"
        + (f"; points model at the same volume: {points_rate:.1%}" if points_rate is not None else "")
    )
    if cut.measured_on:
        info(f"    (measured on {cut.measured_on})")
    for row in payload.get("segments") or []:
        own = f"{row['roc_auc_segment']:.3f}" if row["roc_auc_segment"] is not None else "-"
        glob = f"{row['roc_auc_global']:.3f}" if row["roc_auc_global"] is not None else "-"
        info(
            f"  segment {row['segment']:<16} {row['model']:<7} ROC AUC global {glob} own {own}; "
            f"p >= {row['threshold']:.3f}: {row['mql_share'] or 0.0:.1%} MQL, MQL->SQL {row['mql_sql_rate'] or 0.0:.1%}"
            + ("" if row["model"] == "segment" else f" ({row['why']})")
        )
    info(
        f"  MLflow run {payload['run_id']} ({payload['model_uri']}, aliases: {', '.join(payload['aliases'])})"
    )
    info(f"  exported to {payload['model_path']}")


@app.command()
@user_errors
def score(
    data: ScoreDataArg,
    model: ModelOpt,
    out: ScoreOutOpt,
    explain: Annotated[int, typer.Option("--explain", min=0, max=20, help="Top K reasons per lead.")] = 0,
    chunk_rows: Annotated[int, typer.Option("--chunk-rows", min=100, help="Rows per chunk.")] = 50_000,
    log_scores: LogScoresOpt = False,
    engine: EngineOpt = "pandas",
    master: MasterOpt = None,
    buckets: BucketsOpt = None,
    as_of: AsOfOpt = None,
    accounts_model: AccountsModelOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Score an export: id, p_sql, mql, grade, top reasons and the fit and engagement parts. In
    chunks in this process, or inside Spark with --engine spark (DATA a Parquet file, folder or glob,
    or a folder of declared tables; OUT a Parquet folder). An account model scores every account as
    of --as-of."""
    from leadscore.scoring.batch import score_file
    from leadscore.tracking.loading import load_bundle

    check_engine(engine, master)
    if engine == "spark" and log_scores:
        raise UserError("--log: not with --engine spark (the score log is written by the pandas path)")
    bundle = load_bundle(model)
    if bundle.spec.account_of is not None:
        score_accounts(bundle, data, out, as_of, explain, (engine, master, buckets), log_scores, json_out)
        return
    extend = with_accounts(accounts_model, data, bundle, as_of)
    if as_of is not None and extend is None:
        raise UserError(
            "--as-of: for an account model, or with --accounts-model (a lead is scored at its own time)"
        )
    if engine == "spark":
        from leadscore.spark.scoring import score_spark
        from leadscore.spark.session import spark_session

        summary = score_spark(
            spark_session(master), str(data), bundle, str(out), explain=explain, buckets=buckets
        )
        if json_out:
            echo_json(summary)
        else:
            info(
                f"scored {summary['rows']:,} leads ({summary['mql_share']:.1%} MQL) -> {summary['out']} (spark)"
            )
        return
    from leadscore.config import get_settings
    from leadscore.store.db import open_store

    store = open_store() if log_scores else None
    summary = score_file(
        Path(data),
        bundle,
        Path(out),
        explain=explain,
        chunk_rows=chunk_rows,
        progress=not json_out,
        log_to=store,
        trend_threshold=get_settings().trend_threshold,
        extend=extend,
        buckets=buckets,
    )
    if store is not None:
        summary["logged_to"] = store.shown
    if json_out:
        echo_json(summary)
    else:
        info(f"scored {summary['rows']:,} leads ({summary['mql_share']:.1%} MQL) -> {summary['out']}")


@app.command("promote")
@user_errors
def promote_cmd(
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
    from leadscore.tracking import promotion

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
        for row in result.get("segments") or []:
            if row["judged"]:
                a, b = row["champion"], row["challenger"]
                verdict = "worse" if row["worse"] else "ok"
                info(
                    f"  segment {row['segment']:<16} ROC AUC {a['roc_auc']:.4f} -> {b['roc_auc']:.4f}  "
                    f"Brier {a['brier']:.4f} -> {b['brier']:.4f} on {row['leads']:,} leads: {verdict}"
                )
            else:
                info(f"  segment {row['segment']:<16} {row['note']}")
        if result["promoted"]:
            info(f"promoted version {result['challenger']} to champion ({result['because']})")
        else:
            why = "; ".join(result.get("worse", [])) or result.get("note", "")
            info(f"not promoted: {why}")
    if not result["promoted"] and result.get("worse"):
        raise typer.Exit(1)


WritebackStoreOpt = Annotated[
    str | None,
    typer.Option(
        "--store", help="--changed-only: the store (database URL or SQLite file); default the setting."
    ),
]
SinceOpt = Annotated[
    str | None,
    typer.Option(
        "--since",
        help="Instead of SCORES: the answers the store's score log holds from this date (each lead's "
        "last), with their own times and model versions.",
    ),
]
CardLinksOpt = Annotated[
    bool,
    typer.Option(
        "--card-links",
        help="Also each lead's signed link to its card in leadscore (for the CRM's lead page frame).",
    ),
]
BaseUrlOpt = Annotated[
    str,
    typer.Option(
        "--base-url", help="--card-links: where the service is reached (default LEADSCORE_PUBLIC_URL)."
    ),
]


@app.command()
@user_errors
def writeback(
    to: Annotated[str, typer.Option("--to", help="The CRM: salesforce or hubspot.")],
    out: Annotated[Path, typer.Option("--out", help="The CRM's import file to write (CSV).")],
    scores: Annotated[
        Path | None,
        typer.Argument(help="A score file written by leadscore score (CSV or Parquet); or use --since."),
    ] = None,
    spec: SpecOpt = None,
    model: Annotated[
        str | None, typer.Option("--model", help="The model that scored: its version is written too.")
    ] = None,
    scored_at: Annotated[
        str | None,
        typer.Option(
            "--scored-at", help="When the scores were made (default: the score file's modification time)."
        ),
    ] = None,
    changed_only: Annotated[
        bool,
        typer.Option(
            "--changed-only",
            help="Only leads whose MQL flag or grade changed, or whose P(SQL) moved by more than --step, "
            "since the last write-back to this CRM (remembered in the store).",
        ),
    ] = False,
    step: Annotated[
        float, typer.Option("--step", min=0.0, max=1.0, help="--changed-only: the P(SQL) move that counts.")
    ] = 0.02,
    store: WritebackStoreOpt = None,
    since: SinceOpt = None,
    card_links: CardLinksOpt = False,
    base_url: BaseUrlOpt = "",
    json_out: JsonOpt = False,
) -> None:
    """The scores as the CRM's bulk import file: Salesforce Bulk API 2.0 CSV or a HubSpot contacts import."""
    from leadscore.config import get_settings
    from leadscore.scoring.writeback import write_values
    from leadscore.spec import load_spec
    from leadscore.store.db import open_store
    from leadscore.web.site import card_links as signed_links

    if (scores is None) == (since is None):
        raise UserError("give SCORES (a score file) or --since (the store's score log), not both")
    db = open_store(store) if (changed_only or since is not None) else None
    values = _writeback_values(scores, since, db, model, scored_at)
    written = write_values(
        values,
        to,
        out,
        load_spec(spec) if spec else None,
        changed_only=db if changed_only else None,
        step=step,
        card_links=signed_links(get_settings(), base_url) if card_links else None,
    )
    if json_out:
        echo_json(
            {
                "out": str(written.out),
                "rows": written.rows,
                "fields": written.fields,
                "warnings": written.warnings,
            }
        )
        return
    for line in written.warnings:
        info(f"warning: {line}")
    info(f"wrote {written.rows:,} leads for {to} to {written.out} ({', '.join(written.fields)})")


def _writeback_values(
    scores: Path | None, since: str | None, db: Any, model: str | None, scored_at: str | None
) -> Any:
    """What ``writeback`` writes: a score file's rows, or the store's logged answers since a date."""
    from datetime import UTC, datetime

    from leadscore.data.sources import read_table
    from leadscore.scoring.writeback import logged_values, score_values
    from leadscore.store.scores import served_scores
    from leadscore.tracking.loading import load_bundle

    if since is not None:
        start = cli_time("--since", since)
        return logged_values(served_scores(db, start.replace(tzinfo=None)))
    assert scores is not None
    when = (
        datetime.fromtimestamp(scores.stat().st_mtime, UTC)
        if scored_at is None
        else cli_time("--scored-at", scored_at)
    )
    version = load_bundle(model).model_version if model else None
    return score_values(read_table(scores), when, version)
