"""The shipped model: the recipe evaluated on the held-out test leads, refitted on every labelled lead.

The evaluation keeps a fifth of the leads out (the card's and ``train --json``'s test figures); the
model that ships must not give them away, least of all with a time split, where they are the most
recent leads. With the shape, the fields and the leak exclusions the evaluation chose:

- up to ``CROSSFIT_MAX_ROWS`` labelled leads, five fold models give every lead an out-of-fold score:
  the calibrator, the grade bands, the cutoff and its promise come from those scores, and the shipped
  booster learns from every lead with as many trees as the folds needed (a little more for the
  larger data), as ``CalibratedClassifierCV(ensemble=False)`` does;
- above, where five more fits would cost too much and a fifth more rows changes little, one booster
  learns from every lead (trees scaled to the data) and is calibrated by matching its scores'
  quantiles to the evaluated model's calibrated scores of the leads that model never trained on;
  the threshold and its promise are the evaluated model's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from leadscore.features import FeatureEncoder
from leadscore.modeling.assemble import band_edges, draft_bundle
from leadscore.modeling.baselines import points_scores
from leadscore.modeling.boosters import Fitted, fit_crossfit, fit_rounds, lgb_params
from leadscore.modeling.calibrate import quantile_matched
from leadscore.modeling.cutoff import cutoff_facts
from leadscore.modeling.dataset import Split, TrainingData, row_groups
from leadscore.modeling.evaluate import Evaluation, binary_metrics
from leadscore.modeling.fitting import Cut, Guarded, calibrate_and_cut, refit_encoder
from leadscore.modeling.options import CROSSFIT_MAX_ROWS, TrainOptions
from leadscore.scoring.bundle import ModelBundle
from leadscore.scoring.meta import CutoffFacts
from leadscore.spec import DatasetSpec


@dataclass
class Final:
    """The shipped model's parts: encoder, booster, calibration and cutoff, and what it learned from."""

    guarded: Guarded  # the encoder refitted on every lead, every lead encoded, the booster
    cut: Cut
    cutoff: CutoffFacts  # the shipped threshold's promise, and where it was measured
    learned_from: dict[str, Any]


def finalize(
    evaluated: ModelBundle,
    guarded: Guarded,
    cut: Cut,
    ev: Evaluation,
    data: TrainingData,
    split: Split,
    spec: DatasetSpec,
    options: TrainOptions,
) -> Final:
    """The evaluated recipe (``guarded``'s fields and shape) fitted on every labelled lead."""
    encoder = refit_encoder(guarded.encoder, data.frame, spec)
    if encoder.to_dict() == guarded.encoder.to_dict():  # no category or median moved: the same matrix
        encoder, X = guarded.encoder, guarded.X
    else:
        X = encoder.transform(data.frame)
    rows = np.arange(len(data.y))
    if len(rows) <= CROSSFIT_MAX_ROWS and data.weight is None:  # a sample is refitted whole, weighted
        groups = row_groups(data.frame, spec)  # a lead's (an account's) moments in one fold
        fitted = fit_crossfit(X, data.y, rows, encoder, options, guarded.fitted.capacity, groups)
        final = Guarded(encoder, X, fitted, guarded.findings, guarded.suspects, True)
        shipped = calibrate_and_cut(final, data, spec, options)
        p_oof = shipped.calibrator.apply(fitted.calib_raw)
        where = f"out-of-fold scores of {len(rows):,} labelled leads"
        facts = cutoff_facts(
            options.contract,
            data.y,
            p_oof,
            points_scores(spec, data.frame),
            shipped.threshold,
            shipped.weekly,
            options.seed,
            measured_on=where,
        )
        oof = binary_metrics(data.y, p_oof)
        return Final(final, shipped, facts, _learned(data, fitted, "crossfit", where, shipped, oof))
    return _refit(evaluated, guarded, cut, ev, data, split, X, encoder, options)


def _refit(
    evaluated: ModelBundle,
    guarded: Guarded,
    cut: Cut,
    ev: Evaluation,
    data: TrainingData,
    split: Split,
    X: np.ndarray,
    encoder: FeatureEncoder,
    options: TrainOptions,
) -> Final:
    """One booster on every lead; its calibration matched to the evaluated model's held-out scores."""
    first = guarded.fitted
    learned = len(first.calib_rows) if guarded.crossfit else len(split.fit)
    # one fit's trees: an averaged (cross-fitted) booster holds several fits' trees
    rounds = first.rounds or first.booster.best_iteration or first.booster.current_iteration()
    rounds = max(10, int(round(rounds * math.sqrt(len(data.y) / max(learned, 1)))))
    params = lgb_params(len(data.y), options, encoder, first.capacity)
    booster = fit_rounds(X, data.y, None, encoder, params, rounds, data.weight)
    # the leads the evaluated booster never trained on (a cross-fitted one learned from valid too)
    unseen = split.test if guarded.crossfit else np.sort(np.concatenate([split.valid, split.test]))
    raw = np.asarray(booster.predict(X[unseen], raw_score=True, num_threads=options.num_threads))
    target = _evaluated_p(evaluated, guarded, ev, split, unseen)
    calibrator = quantile_matched(raw, target)
    fitted = Fitted(booster, first.capacity, params, {}, unseen, raw)
    draft = draft_bundle(encoder, fitted, options, calibrator=calibrator)
    edges = band_edges(draft, X[unseen])
    shipped = Cut(calibrator, cut.brier, edges, cut.threshold, cut.weekly, cut.notes, cut.interval)
    final = Guarded(encoder, X, fitted, guarded.findings, guarded.suspects, guarded.crossfit)
    where = (
        f"{len(split.test):,} held-out test leads, scored by the same recipe trained without them "
        "(the shipped model's scores are matched to its distribution)"
    )
    facts = ev.cutoff.model_copy(update={"measured_on": where})
    return Final(final, shipped, facts, _learned(data, fitted, "refit", where, shipped, None))


def _evaluated_p(
    evaluated: ModelBundle, guarded: Guarded, ev: Evaluation, split: Split, unseen: np.ndarray
) -> np.ndarray:
    """The evaluated model's P(SQL) of the ``unseen`` leads, as already scored: the test leads by the
    evaluation, the validation leads from the holdout fit's own scores of them (the same booster
    and calibrator); any other lead scored here."""
    p = np.full(len(guarded.X), np.nan)
    p[split.test] = ev.p
    if not guarded.crossfit:  # a cross-fitted model's scores of its training rows are out-of-fold
        p[guarded.fitted.calib_rows] = evaluated.probability(guarded.fitted.calib_raw)
    target = p[unseen]
    missing = np.isnan(target)
    if missing.any():
        target[missing] = evaluated.probability(evaluated.raw_score(guarded.X[unseen[missing]]))
    return target


def _learned(
    data: TrainingData,
    fitted: Fitted,
    method: str,
    where: str,
    cut: Cut,
    oof: dict[str, float] | None,
) -> dict[str, Any]:
    """What the card, ``GET /v1/model`` and ``train --json`` say about the shipped model's data."""
    out: dict[str, Any] = {
        "finalized": True,
        "rows": len(data.y),
        "positives": data.n_pos,
        "method": method,
        "trees": fitted.booster.num_trees(),
        "calibration": cut.calibrator.kind,
        "calibrated_on": len(fitted.calib_rows),  # leads whose out-of-sample scores set the calibration
        "cutoff_measured_on": where,
    }
    if fitted.rounds is not None:  # a cross-fitted booster: the seeds' fits averaged into it
        out["seeds"] = fitted.seeds
    if oof is not None:
        out["out_of_fold"] = {k: oof[k] for k in ("roc_auc", "pr_auc", "brier", "ece") if k in oof}
    return out


def held_out_only(n_rows: int, n_positives: int, trees: int, why: str) -> dict[str, Any]:
    """``learned_from`` of a model that was not finalized: the training rows of the split only."""
    return {"finalized": False, "rows": n_rows, "positives": n_positives, "trees": trees, "why": why}


def learned_line(learned: dict[str, Any] | None, noun: str = "leads", positive: str = "SQL") -> str:
    """What the shipped model learned from, in one line (``train``'s output, the card): ``noun`` and
    ``positive`` name its rows and its label (an account model's account moments, opportunity)."""
    if not learned:
        return "learned from the training rows of the split"
    seeds = int(learned.get("seeds", 1))
    averaged = f" ({seeds} fits with different seeds averaged)" if seeds > 1 else ""
    rows = (
        f"{learned['rows']:,} labelled {noun} ({learned['positives']:,} {positive}), "
        f"{learned['trees']} trees{averaged}"
    )
    if not learned.get("finalized"):
        return f"learned from {rows}: the evaluated model itself ({learned.get('why')})"
    how = {
        "crossfit": "calibrated and cut off on five-fold out-of-fold scores",
        "refit": "calibrated to the evaluated model's held-out scores",
    }.get(learned["method"], learned["method"])
    segments = learned.get("segments") or {}
    own = "; ".join(
        f"{name}'s own model from its {s['rows']:,} leads" for name, s in sorted(segments.items())
    )
    return f"learned from every one of {rows}; {how}" + (f"; {own}" if own else "")
