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
from leadscore.errors import UserError
from leadscore.features import FeatureEncoder
from leadscore.modeling import leakage
from leadscore.modeling.assemble import band_edges, draft_bundle, group_pure, make_bundle
from leadscore.modeling.baselines import fit_logistic, plain_lightgbm, points_baseline
from leadscore.modeling.boosters import Fitted, auc_interval, cv_aucs, fit_crossfit, fit_holdout
from leadscore.modeling.calibrate import choose_calibrator
from leadscore.modeling.card import card_facts, field_shares
from leadscore.modeling.cutoff import cutoff_facts, promise_interval, resolve_threshold
from leadscore.modeling.dataset import (
    Split,
    TrainingData,
    candidate_fields,
    read_training_data,
    split_indices,
    weekly_volume,
)
from leadscore.modeling.evaluate import Evaluation, baseline_warnings, binary_metrics
from leadscore.modeling.options import CROSSFIT_MAX_ROWS, Capacity, TrainOptions
from leadscore.modeling.segment_models import (
    GlobalRun,
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
class Encoded:
    """Every candidate field encoded with an encoder fitted on the fit rows only."""

    encoder: FeatureEncoder
    X: np.ndarray
    excluded: dict[str, str]


@dataclass
class Guarded:
    """A booster fitted without the columns the leakage guard caught, on the fields that remain."""

    encoder: FeatureEncoder
    X: np.ndarray
    fitted: Fitted
    findings: list[leakage.LeakageFinding]
    suspects: list[str]
    crossfit: bool


@dataclass
class Cut:
    """The calibrator, the grade bands and the threshold the contract gives on held-out leads."""

    calibrator: Calibrator
    brier: dict[str, float]
    edges: tuple[list[float], list[float]]
    threshold: float
    weekly: float | None
    notes: list[str]
    interval: dict[str, list[float]]  # 90% bootstrap intervals of MQL share and MQL->SQL rate


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
    data = read_training_data(path, spec, options.feedback, options.feedback_source)
    segmentation = check_segments(spec, options.contract, data.frame)
    split = split_indices(data.frame, data.y, spec, options.seed)
    encoded = encode(data, spec, split)
    guarded = fit_without_leaks(encoded, data, split, options)
    cut = calibrate_and_cut(guarded, data, spec, options)
    bundle = assemble(spec, guarded, cut, options)
    evaluation = evaluate(bundle, guarded, data, split, spec, options, cut.weekly)
    segmented = segment(segmentation, bundle, guarded, data, split, spec, options, evaluation, cut.weekly)
    timed = time_head(bundle, encoded.encoder, data, split, spec, options)
    return describe(bundle, data, split, encoded, guarded, cut, evaluation, options, segmented, timed)


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

    def make(
        fitted: Fitted, calibrator: Calibrator, threshold: float, edges: tuple[list[float], list[float]]
    ) -> ModelBundle:
        return make_bundle(
            spec,
            guarded.encoder,
            fitted.booster,
            options,
            calibrator=calibrator,
            threshold=threshold,
            edges=edges,
            group_pure=group_pure(fitted),
        )

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
            make=make,
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


def encode(data: TrainingData, spec: DatasetSpec, split: Split) -> Encoded:
    """The candidate fields, encoded as the service will encode them (fitted on the fit rows)."""
    fields, excluded = candidate_fields(data.frame, spec)
    # The global model learns from the segment columns too (unless the spec excludes them).
    segment_cols = spec.segments.by if spec.segments is not None else []
    for col in segment_cols:
        if col not in fields and col not in excluded and col in data.frame.columns:
            fields.append(col)
    if not fields:
        raise UserError("no usable columns to learn from (all excluded, constant or identifiers)")
    kinds = {
        **dict.fromkeys(segment_cols, "categorical"),
        **dict.fromkeys(spec.categorical, "categorical"),
        **dict.fromkeys(spec.dates, "date"),
    }
    groups = {**dict.fromkeys(spec.fit, "fit"), **dict.fromkeys(spec.engagement, "engagement")}
    encoder = FeatureEncoder.fit(
        data.frame.iloc[split.fit],
        fields,
        kinds=kinds,
        groups=groups,
        placeholders=spec.placeholders,
        aliases=spec.aliases,
        ranges=spec.ranges,
        time_col=spec.time,
    )
    return Encoded(encoder, encoder.transform(data.frame), excluded)


def fit_without_leaks(encoded: Encoded, data: TrainingData, split: Split, options: TrainOptions) -> Guarded:
    """Fit the booster; drop columns that alone give the answer away, or that the model leans on.

    Small exports without a time column are cross-fitted: out-of-fold scores choose the model
    shape, calibrate and set the cutoff, and the final booster learns from every training row.
    """
    enc, X, y = encoded.encoder, encoded.X, data.y
    categorical = set(enc.categorical_indices)
    findings = leakage.single_column_scan(
        X[split.fit], y[split.fit], enc.field_names, enc.feature_fields, categorical, seed=options.seed
    )
    keep = set(options.keep)
    unknown_keep = keep - set(enc.field_names) - set(encoded.excluded)
    if unknown_keep:
        raise UserError(f"--keep: no such column: {', '.join(sorted(unknown_keep))}")
    missing = enc.missing_masks(X[split.fit])
    leakage.family_check(findings, missing)
    suspects = [f.column for f in findings if f.suspect]
    crossfit = split.kind == "stratified" and len(split.train) <= CROSSFIT_MAX_ROWS
    capacity: Capacity | None = None  # the shape is chosen on the first try, then kept
    for _attempt in range(3):
        sub = _subset(enc, [c for c in suspects if c not in keep])
        Xs = _columns(X, enc, sub)
        if crossfit:
            fitted = fit_crossfit(Xs, y, split.train, sub, options, capacity)
        else:
            fitted = fit_holdout(Xs, y, split.fit, split.valid, sub, options, capacity)
        capacity = fitted.capacity
        draft = draft_bundle(sub, fitted, options)
        relevant = [f for f in findings if f.column in sub.field_names]
        newly = leakage.lean_check(relevant, field_shares(draft, Xs[fitted.calib_rows]))
        newly += leakage.family_check(findings, missing) if newly else []
        suspects += [f.column for f in newly]
        if not [f.column for f in newly if f.column not in keep]:
            break
    _record_suspects(suspects, findings, keep, encoded.excluded, data.notes)
    return Guarded(sub, Xs, fitted, findings, suspects, crossfit)


def calibrate_and_cut(guarded: Guarded, data: TrainingData, spec: DatasetSpec, options: TrainOptions) -> Cut:
    """Calibrate on leads the booster never trained on, set the grade bands, resolve the contract."""
    fitted = guarded.fitted
    calibrator, brier = choose_calibrator(fitted.calib_raw, data.y[fitted.calib_rows], seed=options.seed)
    draft = draft_bundle(guarded.encoder, fitted, options, calibrator=calibrator)
    p_valid = draft.probability(fitted.calib_raw)
    edges = band_edges(draft, guarded.X[fitted.calib_rows])
    weekly = weekly_volume(data.frame, spec.time)
    y_calib = data.y[fitted.calib_rows]
    threshold, notes = resolve_threshold(options.contract, p_valid, weekly, y=y_calib, seed=options.seed)
    data.notes.extend(notes)
    interval = promise_interval(p_valid, y_calib, threshold, seed=options.seed)
    return Cut(calibrator, brier, edges, threshold, weekly, notes, interval)


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
    logit = fit_logistic(
        guarded.X[split.fit], data.y[split.fit], guarded.encoder.categorical_indices, options.seed
    )
    baselines = {"logistic_regression": binary_metrics(y_test, logit.predict_proba(X_test)[:, 1])}
    plain = plain_lightgbm(
        guarded.X[split.train],
        data.y[split.train],
        X_test,
        guarded.encoder.categorical_indices,
        options.seed,
        options.num_threads,
    )
    baselines["plain_lightgbm"] = binary_metrics(y_test, plain)
    points_test = points_baseline(spec, data.frame, data.y, split.fit, split.test, baselines)
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
    cut: Cut,
    ev: Evaluation,
    options: TrainOptions,
    segmented: SegmentedOutcome | None = None,
    timed: TimedModel | None = None,
) -> TrainResult:
    """Store the evidence in the bundle (for the card and ``GET /v1/model``) and gather the run's facts."""
    n_train = len(split.train) if guarded.crossfit else len(split.fit)
    ev.cutoff.notes = cut.notes
    ev.cutoff.confidence = options.contract.confidence
    ev.cutoff.expected_mql_share_interval = cut.interval["mql_share"]
    ev.cutoff.expected_sql_rate_interval = cut.interval["sql_rate"]
    meta = bundle.meta
    meta.metrics = {**ev.metrics, "n_train": n_train, "n_valid": len(split.valid), "n_test": len(split.test)}
    meta.baselines = {name: dict(m) for name, m in ev.baselines.items()}
    meta.cutoff = ev.cutoff
    meta.leakage_suspects = guarded.suspects
    meta.excluded_columns = encoded.excluded
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
        cutoff=ev.cutoff,
        leakage_findings=guarded.findings,
        leakage_suspects=guarded.suspects,
        excluded_columns=encoded.excluded,
        validation=data.report,
        params={
            **_run_params(guarded, cut, options, split.kind, bundle.spec),
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
    guarded: Guarded, cut: Cut, options: TrainOptions, split_kind: str, spec: DatasetSpec
) -> dict[str, Any]:
    fitted = guarded.fitted
    return {
        **{f"lgb_{k}": v for k, v in fitted.params.items()},
        "trees": fitted.booster.num_trees(),
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
        "n_fields": len(guarded.encoder.fields),
        "seed": options.seed,
    }


def _record_suspects(
    suspects: list[str],
    findings: list[leakage.LeakageFinding],
    keep: set[str],
    excluded: dict[str, str],
    notes: list[str],
) -> None:
    """Suspected leaks are excluded with the evidence, or noted when the user kept them."""
    for col in suspects:
        finding = next(f for f in findings if f.column == col)
        if col in keep:
            notes.append(f"kept '{col}' although it looks like a leak: {finding.why}")
        else:
            excluded[col] = f"suspected leak: {finding.why}"
            log.warning("excluded '%s' as a suspected leak: %s", col, finding.why)


def _subset(encoder: FeatureEncoder, drop: list[str]) -> FeatureEncoder:
    return FeatureEncoder(
        fields=[f for f in encoder.fields if f.name not in set(drop)],
        placeholders=encoder.placeholders,
        aliases=encoder.aliases,
        time_col=encoder.time_col,
        day_first=encoder.day_first,
    )


def _columns(X: np.ndarray, full: FeatureEncoder, sub: FeatureEncoder) -> np.ndarray:
    pos = {name: j for j, name in enumerate(full.feature_names)}
    return X[:, [pos[name] for name in sub.feature_names]]


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
