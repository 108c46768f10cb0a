"""The segments of a finalized run: each segment's champion refitted on every labelled lead of it.

Segment training (``segment_models``) fits each segment's own model on the split and chooses, on the
segment's test leads, between it and the global model; those choices and their test figures are the
evaluation, and stay. The bundle that ships is then made of the finalized global model (``finalize``)
and, for every segment whose own model won, the same recipe fitted on all of that segment's leads:
cross-fitted (calibration, grades and cutoff from its out-of-fold scores) when the run's finalized
global model was, else fitted on a fresh 80/20 split of them (calibrated on the fifth). A segment
left to the global model takes the finalized model's threshold, or its own policy's on the finalized
model's out-of-sample scores of its leads. Every segment model reads the finalized encoder's columns.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
from sklearn.model_selection import train_test_split

from leadscore.modeling.baselines import points_scores
from leadscore.modeling.dataset import Split
from leadscore.modeling.segment_models import (
    GlobalRun,
    SegmentCutoff,
    SegmentedOutcome,
    SegmentRows,
    global_cutoff,
    own_cutoff,
    own_model,
    segment_facts,
    segment_rows,
)
from leadscore.scoring.bundle import SEGMENT_BOOSTER
from leadscore.scoring.meta import CutoffFacts


def every_lead(y: np.ndarray, crossfit: bool, seed: int) -> Split:
    """A split with no test leads: every labelled lead trains (cross-fitted, or fit and calibrate)."""
    rows = np.arange(len(y))
    if crossfit:
        return Split(rows, np.array([], dtype=int), np.array([], dtype=int), "all")
    fit, valid = train_test_split(rows, test_size=0.2, stratify=y, random_state=seed)
    return Split(np.sort(fit), np.sort(valid), np.array([], dtype=int), "all")


def finalize_segments(evaluated: SegmentedOutcome, run: GlobalRun) -> tuple[SegmentedOutcome, dict[str, Any]]:
    """The evaluated segments' choices, each champion refitted as ``run`` says (the finalized global
    model, its encoder's matrix and an all-leads split); and what each segment's model learned from."""
    routing = evaluated.routing.model_copy(deep=True)
    boosters: dict[str, str] = {}
    learned: dict[str, Any] = {}
    points = points_scores(run.spec, run.data.frame)
    for number, key in enumerate(sorted(run.segmentation.names)):
        model = routing.models[key]
        rows = segment_rows(run, number, key)
        own, why = own_model(run, rows) if model.model == "segment" else (None, None)
        if own is not None:
            cutoff = own_cutoff(run, rows, own)
            assert cutoff.booster_text is not None
            boosters[SEGMENT_BOOSTER.format(number)] = cutoff.booster_text
            model.booster = SEGMENT_BOOSTER.format(number)
            model.calibrator = own.calibrator.to_dict()
            model.grade_edges = {"fit": own.edges[0], "engagement": own.edges[1]}
            learned[model.name] = _learned(own.fitted.booster.num_trees(), rows.in_seg, run)
        else:
            if why is not None:  # too few leads of one class on the new split: the global model takes it
                model.model, model.why = "global", f"{model.why}; refitted on every lead: {why}"
            cutoff = global_cutoff(run, rows)
            model.booster, model.calibrator, model.grade_edges = None, None, None
        model.threshold, model.group_pure = cutoff.threshold, cutoff.group_pure
        model.cutoff = _promise(run, rows, cutoff, points)
    outcome = replace(evaluated, routing=routing, boosters=boosters)
    return outcome, learned


def _promise(
    run: GlobalRun,
    rows: SegmentRows,
    cutoff: SegmentCutoff,
    points: np.ndarray | None,
) -> CutoffFacts:
    """The shipped threshold's promise on the leads that set it (out-of-fold scores, or the
    calibration fifth); the global model's segments on the finalized model's out-of-sample scores."""
    calib = cutoff.calib_rows
    assert calib is not None
    measured = (cutoff.y_calib, cutoff.p_calib, points[calib] if points is not None else None)
    how = "out-of-fold scores" if run.crossfit else "scores"
    return segment_facts(run, rows, cutoff, measured, f"{how} of {len(calib):,} of its labelled leads")


def _learned(trees: int, in_seg: np.ndarray, run: GlobalRun) -> dict[str, Any]:
    y = run.data.y[in_seg]
    return {
        "rows": int(in_seg.sum()),
        "positives": int(y.sum()),
        "trees": trees,
        "method": "crossfit" if run.crossfit else "holdout",
    }
