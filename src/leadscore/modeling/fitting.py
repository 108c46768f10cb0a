"""The fitting steps of a training run: encode, fit without leaks, calibrate and set the cutoff.

``train_model`` runs them once on the split (the evaluation of the recipe); ``finalize`` runs the
same recipe again on every labelled lead for the model that ships.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd

from leadscore.errors import UserError
from leadscore.features import FeatureEncoder
from leadscore.features.values import dates_ms
from leadscore.modeling import leakage
from leadscore.modeling.assemble import band_edges, draft_bundle
from leadscore.modeling.boosters import Fitted, fit_crossfit, fit_holdout
from leadscore.modeling.calibrate import choose_calibrator
from leadscore.modeling.card import field_shares
from leadscore.modeling.cutoff import promise_interval, resolve_threshold
from leadscore.modeling.dataset import Split, TrainingData, candidate_fields, weekly_volume
from leadscore.modeling.options import CROSSFIT_MAX_ROWS, Capacity, TrainOptions
from leadscore.scoring.calibrator import Calibrator
from leadscore.spec import DatasetSpec

log = logging.getLogger(__name__)


@dataclass
class Encoded:
    """Every candidate field encoded with an encoder fitted on the fit rows only."""

    encoder: FeatureEncoder
    X: np.ndarray
    excluded: dict[str, str]
    scored_ms: np.ndarray | None = None  # each lead's scoring time (epoch ms; NaN unknown)
    point_in_time: frozenset[str] = frozenset()  # features computed as of the scoring time (declared)


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
    encoder = fit_encoder(data.frame.iloc[split.fit], fields, spec, kinds, groups)
    scored = dates_ms(data.frame[spec.time]) if spec.time and spec.time in data.frame.columns else None
    return Encoded(encoder, encoder.transform(data.frame), excluded, scored, frozenset(spec.declared))


def fit_encoder(
    frame: pd.DataFrame, fields: list[str], spec: DatasetSpec, kinds: dict[str, str], groups: dict[str, str]
) -> FeatureEncoder:
    """An encoder of ``fields`` fitted on ``frame``, with the spec's placeholders, aliases and ranges."""
    return FeatureEncoder.fit(
        frame,
        fields,
        kinds=kinds,
        groups=groups,
        placeholders=spec.placeholders,
        aliases=spec.aliases,
        ranges=spec.ranges,
        time_col=spec.time,
    )


def refit_encoder(encoder: FeatureEncoder, frame: pd.DataFrame, spec: DatasetSpec) -> FeatureEncoder:
    """The same fields with the same kinds and groups, fitted again on ``frame`` (every labelled lead:
    categories first seen in the test rows are then known to the shipped model)."""
    return fit_encoder(
        frame,
        encoder.field_names,
        spec,
        {f.name: f.kind for f in encoder.fields},
        {f.name: f.group for f in encoder.fields},
    )


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
    if encoded.scored_ms is not None:
        fit = split.fit
        leakage.growth_check(
            findings,
            X[fit],
            y[fit],
            encoded.scored_ms[fit],
            enc.feature_fields,
            categorical | set(enc.share_indices),  # neither a code nor a share is a count
            encoded.point_in_time,
        )
    missing = enc.missing_masks(X[split.fit])
    leakage.family_check(findings, missing)
    suspects = [f.column for f in findings if f.suspect]
    # a down-sampled table is never cross-fitted: its out-of-fold scores would mix the fit rows'
    # weighted non-SQLs with the uniform validation leads that calibrate it
    crossfit = split.kind == "stratified" and len(split.train) <= CROSSFIT_MAX_ROWS and data.weight is None
    capacity: Capacity | None = None  # the shape is chosen on the first try, then kept
    for _attempt in range(3):
        sub = _subset(enc, [c for c in suspects if c not in keep])
        Xs = _columns(X, enc, sub)
        if crossfit:
            fitted = fit_crossfit(Xs, y, split.train, sub, options, capacity)
        else:
            fitted = fit_holdout(Xs, y, split.fit, split.valid, sub, options, capacity, data.weight)
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
    weekly = weekly_volume(data.frame, spec.time, weight=data.weight)
    y_calib = data.y[fitted.calib_rows]
    threshold, notes = resolve_threshold(options.contract, p_valid, weekly, y=y_calib, seed=options.seed)
    interval = promise_interval(p_valid, y_calib, threshold, seed=options.seed)
    return Cut(calibrator, brier, edges, threshold, weekly, notes, interval)


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
