"""Train a calibrated P(SQL) model on any CRM export, with baselines and an honest test.

``train`` reads as its steps: read the data, split it, encode it, fit without leaks, calibrate and
cut off, assemble the bundle, evaluate on the test rows against the baselines, and describe the run.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from leadscore.data.validate import ValidationReport
from leadscore.features import FeatureEncoder
from leadscore.modeling import leakage
from leadscore.modeling.assemble import group_pure, make_bundle
from leadscore.modeling.baselines import fit_logistic, plain_lightgbm, points_baseline
from leadscore.modeling.boosters import Fitted, auc_interval, cv_aucs
from leadscore.modeling.card import card_facts
from leadscore.modeling.cutoff import cutoff_facts
from leadscore.modeling.dataset import Split, TrainingData, split_indices
from leadscore.modeling.evaluate import Evaluation, baseline_warnings, binary_metrics
from leadscore.modeling.finalize import Final, finalize, held_out_only
from leadscore.modeling.fitting import Cut, Encoded, Guarded, calibrate_and_cut, encode, fit_without_leaks
from leadscore.modeling.options import TrainOptions
from leadscore.modeling.sampling import read_sampled, sampled
from leadscore.modeling.segment_final import every_lead, finalize_segments
from leadscore.modeling.segment_models import (
    GlobalRun,
    MakeBundle,
    Segmentation,
    SegmentedOutcome,
    check_segments,
    train_segments,
)
from leadscore.modeling.time_to_sql import TimedModel, time_head
from leadscore.scoring.bundle import ModelBundle
from leadscore.scoring.bundle_files import TIME_BOOSTER
from leadscore.scoring.calibrator import Calibrator
from leadscore.scoring.meta import CutoffFacts
from leadscore.spec import DatasetSpec

log = logging.getLogger(__name__)

REASON_MS = "_reason_ms"
SMALL_DATA = 300  # fewer examples than this in a class: report cross-validated intervals


@dataclass
class TrainResult:
    """Everything a training run produced, for logging, printing and exporting."""

    bundle: ModelBundle
    metrics: dict[str, float]
    baselines: dict[str, dict[str, float]]
    cutoff: CutoffFacts
    leakage_findings: list[leakage.LeakageFinding]
    leakage_suspects: list[str]
    excluded_columns: dict[str, str]
    validation: ValidationReport
    params: dict[str, Any]
    data_hash: str
    n_train: int
    n_valid: int
    n_test: int
    test_frame: pd.DataFrame
    test_y: np.ndarray
    test_p: np.ndarray
    test_points: np.ndarray | None
    test_X: np.ndarray
    notes: list[str] = field(default_factory=list)
    uncertainty: dict[str, Any] | None = None
    label_windows: dict[str, Any] = field(default_factory=dict)  # the export day, leads left out open


def train_model(path: str | Path, spec: DatasetSpec, options: TrainOptions) -> TrainResult:
    """The whole training run, without side effects beyond reading ``path``."""
    data = read_sampled(path, spec, options)
    data, split = sampled(
        data, split_indices(data.frame, data.y, spec, options.seed), options.sample, options.seed
    )
    segmentation = check_segments(spec, options.contract, data.frame)  # the rows trained on
    encoded = encode(data, spec, split)
    guarded = fit_without_leaks(encoded, data, split, options)
    cut = calibrate_and_cut(guarded, data, spec, options)
    bundle = assemble(spec, guarded, cut, options)
    evaluation = evaluate(bundle, guarded, data, split, spec, options, cut.weekly)
    segmented = segment(segmentation, bundle, guarded, data, split, spec, options, evaluation, cut.weekly)
    final = ship(bundle, guarded, cut, evaluation, data, split, spec, options)
    data.notes.extend(final.cut.notes)
    shipped = bundle if final.guarded is guarded else assemble(spec, final.guarded, final.cut, options)
    if segmented is not None and segmentation is not None and final.guarded is not guarded:
        segmented = refit_segments(segmented, segmentation, shipped, final, data, spec, options, evaluation)

    def p_sql_evaluated(frame: pd.DataFrame) -> np.ndarray:
        """The test leads' P(SQL) by the evaluated model, which never saw them."""
        return bundle.probability(bundle.raw_score(guarded.encoder.transform(frame)))

    timed = (
        time_head(final.guarded.encoder, p_sql_evaluated, data, split, spec, options)
        if options.time_head
        else None
    )
    evaluation.X = final.guarded.X[split.test]  # the test leads as the shipped model reads them
    return describe(shipped, data, split, encoded, guarded, final, evaluation, options, segmented, timed)


def ship(
    evaluated: ModelBundle,
    guarded: Guarded,
    cut: Cut,
    ev: Evaluation,
    data: TrainingData,
    split: Split,
    spec: DatasetSpec,
    options: TrainOptions,
) -> Final:
    """The model that ships: the evaluated recipe refitted on every labelled lead (``finalize``), or
    the evaluated model itself with ``--no-finalize``."""
    if options.finalize:
        return finalize(evaluated, guarded, cut, ev, data, split, spec, options)
    rows = split.train if guarded.crossfit else split.fit
    learned = held_out_only(
        len(rows), int(data.y[rows].sum()), evaluated.booster.num_trees(), "--no-finalize"
    )
    if guarded.crossfit:
        learned["seeds"] = guarded.fitted.seeds  # fits averaged into the evaluated booster
    return Final(guarded, cut, ev.cutoff, learned)


def refit_segments(
    evaluated: SegmentedOutcome,
    segmentation: Segmentation,
    shipped: ModelBundle,
    final: Final,
    data: TrainingData,
    spec: DatasetSpec,
    options: TrainOptions,
    ev: Evaluation,
) -> SegmentedOutcome:
    """The evaluated segments' champions refitted on every lead of each, with the finalized global
    model's encoder; the promise stays the routed models' on the test leads (``segment``'s)."""
    crossfit = final.learned_from.get("method") == "crossfit"
    run = GlobalRun(
        segmentation=segmentation,
        bundle=shipped,
        fitted=final.guarded.fitted,
        X=final.guarded.X,
        data=data,
        split=every_lead(data.y, crossfit, options.seed),
        spec=spec,
        options=options,
        crossfit=crossfit,
        p_test=np.array([]),
        points_test=None,
        weekly=final.cut.weekly,
        make=_maker(spec, final.guarded.encoder, options),
    )
    outcome, learned = finalize_segments(evaluated, run)
    final.learned_from["segments"] = learned
    ev.cutoff.threshold = shipped.threshold
    final.cutoff = ev.cutoff.model_copy(
        update={
            "measured_on": f"{len(ev.y):,} held-out test leads, each scored by its segment's evaluated model"
        }
    )
    return outcome


def _maker(spec: DatasetSpec, encoder: FeatureEncoder, options: TrainOptions) -> MakeBundle:
    """Segment bundles: the run's encoder, a segment's booster, calibrator, threshold and grades."""

    def make(
        fitted: Fitted, calibrator: Calibrator, threshold: float, edges: tuple[list[float], list[float]]
    ) -> ModelBundle:
        return make_bundle(
            spec,
            encoder,
            fitted.booster,
            options,
            calibrator=calibrator,
            threshold=threshold,
            edges=edges,
            group_pure=group_pure(fitted),
        )

    return make


def segment(
    segmentation: Segmentation | None,
    bundle: ModelBundle,
    guarded: Guarded,
    data: TrainingData,
    split: Split,
    spec: DatasetSpec,
    options: TrainOptions,
    ev: Evaluation,
    weekly: float | None,
) -> SegmentedOutcome | None:
    """With ``segments`` in the spec: a model and a cutoff per segment where the data says so, and the
    test figures of the routed bundle (the global model's are kept as ``global_model_*``)."""
    if segmentation is None:
        return None
    outcome = train_segments(
        GlobalRun(
            segmentation=segmentation,
            bundle=bundle,
            fitted=guarded.fitted,
            X=guarded.X,
            data=data,
            split=split,
            spec=spec,
            options=options,
            crossfit=guarded.crossfit,
            p_test=ev.p,
            points_test=ev.points,
            weekly=weekly,
            make=_maker(spec, guarded.encoder, options),
        )
    )
    data.notes.extend(outcome.notes)
    ev.metrics = {
        **binary_metrics(ev.y, outcome.p_test),
        **{f"global_model_{k}": v for k, v in ev.metrics.items()},
    }
    ev.cutoff = cutoff_facts(
        options.contract, ev.y, outcome.p_test, ev.points, outcome.threshold_test, weekly, options.seed
    )
    ev.cutoff.threshold = bundle.threshold  # the global model's; each segment has its own
    ev.p = outcome.p_test
    return outcome


def assemble(spec: DatasetSpec, guarded: Guarded, cut: Cut, options: TrainOptions) -> ModelBundle:
    """The bundle the service will load: encoder, booster, calibrator, threshold and bands."""
    return make_bundle(
        spec,
        guarded.encoder,
        guarded.fitted.booster,
        options,
        calibrator=cut.calibrator,
        threshold=cut.threshold,
        edges=cut.edges,
        group_pure=group_pure(guarded.fitted),
    )


def evaluate(
    bundle: ModelBundle,
    guarded: Guarded,
    data: TrainingData,
    split: Split,
    spec: DatasetSpec,
    options: TrainOptions,
    weekly: float | None,
) -> Evaluation:
    """The model, logistic regression and the points model on the same test rows."""
    X_test, y_test = guarded.X[split.test], data.y[split.test]
    p_test = bundle.probability(bundle.raw_score(X_test))
    fit_weight = data.weight_of(split.fit)
    cols, categorical = guarded.encoder.without_shares()  # the baselines get the fields, not the shares
    logit = fit_logistic(
        guarded.X[np.ix_(split.fit, np.asarray(cols))],
        data.y[split.fit],
        categorical,
        options.seed,
        fit_weight,
    )
    baselines = {"logistic_regression": binary_metrics(y_test, logit.predict_proba(X_test[:, cols])[:, 1])}
    plain = plain_lightgbm(
        guarded.X[np.ix_(split.train, np.asarray(cols))],
        data.y[split.train],
        X_test[:, cols],
        categorical,
        options.seed,
        options.num_threads,
        data.weight_of(split.train),
    )
    baselines["plain_lightgbm"] = binary_metrics(y_test, plain)
    points_test = points_baseline(spec, data.frame, data.y, split.fit, split.test, baselines, data.weight)
    cutoff = cutoff_facts(
        options.contract, y_test, p_test, points_test, bundle.threshold, weekly, options.seed
    )
    uncertainty = _uncertainty(guarded, data, options)
    return Evaluation(
        binary_metrics(y_test, p_test), baselines, cutoff, y_test, p_test, points_test, X_test, uncertainty
    )


def describe(
    bundle: ModelBundle,
    data: TrainingData,
    split: Split,
    encoded: Encoded,
    guarded: Guarded,
    final: Final,
    ev: Evaluation,
    options: TrainOptions,
    segmented: SegmentedOutcome | None = None,
    timed: TimedModel | None = None,
) -> TrainResult:
    """Store the evidence in the bundle (for the card and ``GET /v1/model``) and gather the run's facts:
    the held-out evaluation of the recipe, and the shipped model's cutoff and what it learned from."""
    n_train = len(split.train) if guarded.crossfit else len(split.fit)
    cutoff = final.cutoff
    cutoff.notes = final.cut.notes
    cutoff.confidence = options.contract.confidence
    cutoff.expected_mql_share_interval = final.cut.interval["mql_share"]
    cutoff.expected_sql_rate_interval = final.cut.interval["sql_rate"]
    meta = bundle.meta
    meta.metrics = {**ev.metrics, "n_train": n_train, "n_valid": len(split.valid), "n_test": len(split.test)}
    meta.baselines = {name: dict(m) for name, m in ev.baselines.items()}
    meta.cutoff = cutoff
    meta.leakage_suspects = guarded.suspects
    meta.excluded_columns = encoded.excluded
    meta.learned_from = final.learned_from
    if segmented is not None:
        meta.segments = segmented.routing
        bundle = ModelBundle(meta, bundle.booster_text, segmented.boosters)
    if timed is not None:  # the time head's booster beside the others, its evidence in the metadata
        meta.time_head = timed.facts
        bundle = ModelBundle(
            meta, bundle.booster_text, {**bundle.segment_boosters, TIME_BOOSTER: timed.booster_text}
        )
    data.notes.extend(baseline_warnings(ev.metrics, ev.baselines))
    meta.card = card_facts(bundle, data, split.kind, guarded.crossfit, guarded.findings, ev)
    meta.version = _version(bundle)
    return TrainResult(
        bundle=bundle,
        metrics=ev.metrics,
        baselines=ev.baselines,
        cutoff=cutoff,
        leakage_findings=guarded.findings,
        leakage_suspects=guarded.suspects,
        excluded_columns=encoded.excluded,
        validation=data.report,
        params={
            **_run_params(guarded, final, options, split.kind, bundle.spec),
            **(segmented.params if segmented is not None else {}),
        },
        data_hash=data.data_hash,
        n_train=n_train,
        n_valid=0 if guarded.crossfit else len(guarded.fitted.calib_rows),
        n_test=len(split.test),
        test_frame=data.frame.iloc[split.test].reset_index(drop=True),
        test_y=ev.y,
        test_p=ev.p,
        test_points=ev.points,
        test_X=ev.X,
        notes=data.notes,
        uncertainty=ev.uncertainty,
        label_windows=data.windows,
    )


def _uncertainty(guarded: Guarded, data: TrainingData, options: TrainOptions) -> dict[str, Any] | None:
    """With few examples of a class, a cross-validated ROC AUC interval (and a note to read figures as rough)."""
    n_pos, n_neg = data.n_pos, data.n_neg
    if min(n_pos, n_neg) >= SMALL_DATA:
        return None
    fitted = guarded.fitted
    if fitted.fold_aucs:
        interval = auc_interval(fitted.fold_aucs)
    else:
        rounds = fitted.booster.best_iteration or fitted.booster.current_iteration()
        aucs = cv_aucs(guarded.X, data.y, guarded.encoder, fitted.params, rounds, options.seed)
        interval = auc_interval(aucs)
    data.notes.append(
        f"small data ({n_pos} SQL / {n_neg} non-SQL): cross-validated ROC AUC {interval['roc_auc_mean']:.3f} "
        f"(95% interval {interval['roc_auc_low']:.3f}-{interval['roc_auc_high']:.3f}); treat the figures as rough"
    )
    return interval


def _run_params(
    guarded: Guarded, final: Final, options: TrainOptions, split_kind: str, spec: DatasetSpec
) -> dict[str, Any]:
    fitted = guarded.fitted
    cut = final.cut
    return {
        **{f"lgb_{k}": v for k, v in final.guarded.fitted.params.items()},
        "finalized": bool(final.learned_from.get("finalized")),
        "shipped_rows": final.learned_from["rows"],
        "trees": final.guarded.fitted.booster.num_trees(),
        "refit_seeds": int(final.learned_from.get("seeds", 1)),  # fits averaged into the shipped booster
        "fit_method": "crossfit" if guarded.crossfit else "holdout",
        "split": split_kind,
        "capacity": fitted.capacity.name,
        # the trade-off behind the shape: held-out AUC and exact-reason cost per lead of each candidate
        **{
            f"capacity_auc_{k}": v
            for k, v in fitted.scores.items()
            if not k.endswith(REASON_MS) and not k.startswith("searched_")
        },
        **{f"capacity_{k}": v for k, v in fitted.scores.items() if k.startswith("searched_")},
        **{
            f"capacity_reason_ms_{k.removesuffix(REASON_MS)}": v
            for k, v in fitted.scores.items()
            if k.endswith(REASON_MS)
        },
        "calibration": cut.calibrator.kind,
        "calibration_brier_isotonic": cut.brier["isotonic"],
        "calibration_brier_sigmoid": cut.brier["sigmoid"],
        "dataset": spec.name,
        "spec_digest": spec.digest(),
        "contract_version": options.contract.version,
        "n_fields": len(final.guarded.encoder.fields),
        "seed": options.seed,
    }


def _version(bundle: ModelBundle) -> str:
    digest = hashlib.sha256(bundle.booster_text.encode())
    digest.update(repr(sorted(bundle.meta.calibrator.items())).encode())
    digest.update(repr(bundle.threshold).encode())
    for name in sorted(bundle.segment_boosters):
        digest.update(bundle.segment_boosters[name].encode())
    if bundle.meta.segments is not None:
        digest.update(
            bundle.meta.segments.model_dump_json(
                exclude={"models": {"__all__": {"metrics", "reliability", "cutoff"}}}
            ).encode()
        )
    return f"{bundle.name}-{digest.hexdigest()[:10]}"
