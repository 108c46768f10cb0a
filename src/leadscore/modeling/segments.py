"""One model per segment where the data says so, each segment with its own cutoff.

After the global model is trained (with the segment column as a feature), every segment with enough
labelled leads (``segments.min_sql`` SQL and as many non-SQL, ``segments.min_leads`` leads) gets a
model of its own: the global model's fields, its own shape among the fixed candidates, fitted,
calibrated and graded on that segment's rows alone. The one with the better ROC AUC on the segment's test rows is its champion
(ties: the global model, which has seen more data). Each segment's threshold comes from its own
policy in the cutoff contract, else from the default policy on its own leads (a capacity shared in
proportion to the segment's lead volume); a segment left to the global model without a policy of
its own keeps the global threshold. The bundle routes each lead by its segment value.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sklearn.metrics import roc_auc_score

from leadscore.config import DatasetSpec
from leadscore.errors import UserError
from leadscore.features.values import most_common_spelling
from leadscore.modeling.assemble import NO_EDGES, band_edges
from leadscore.modeling.boosters import Fitted, fit_crossfit, fit_holdout
from leadscore.modeling.calibrate import choose_calibrator
from leadscore.modeling.cutoff import MIN_MQL, cutoff_facts, promise_interval, resolve_threshold
from leadscore.modeling.dataset import Split, TrainingData, weekly_volume
from leadscore.modeling.evaluate import binary_metrics, reliability_table
from leadscore.modeling.options import TrainOptions
from leadscore.scoring.bundle import SEGMENT_BOOSTER, ModelBundle
from leadscore.scoring.calibrator import Calibrator
from leadscore.scoring.contract import CutoffContract
from leadscore.scoring.meta import SegmentModel, SegmentRouting
from leadscore.scoring.segments import SegmentReader, slug

log = logging.getLogger(__name__)

RELIABILITY_BINS = 10  # a segment has fewer test leads than the whole: coarser reliability bins

# (encoder-and-booster, calibrator, threshold, grade edges) -> a bundle to score the segment's rows
MakeBundle = Callable[[Fitted, Calibrator, float, tuple[list[float], list[float]]], ModelBundle]


@dataclass
class SegmentedOutcome:
    """The routing, the segment boosters, and the routed scores on the test rows."""

    routing: SegmentRouting
    boosters: dict[str, str]
    p_test: np.ndarray
    threshold_test: np.ndarray  # each test lead's threshold (its segment's)
    notes: list[str] = field(default_factory=list)
    params: dict[str, Any] = field(default_factory=dict)  # per-segment choices, for MLflow


@dataclass
class Segmentation:
    """Each training lead's segment key, each key's name as people write it, and the contract's own
    policies by key (read once, before any fitting)."""

    keys: np.ndarray
    names: dict[str, str]
    own_policy: dict[str, str]


def segment_reader(spec: DatasetSpec) -> SegmentReader:
    assert spec.segments is not None
    return SegmentReader(spec.segments.by, spec.placeholders, spec.aliases)


def check_segments(spec: DatasetSpec, contract: CutoffContract, frame: Any) -> Segmentation | None:
    """Before any training: the spec's segment columns are in the data and the contract's segments
    are segments of the data (one line naming what is wrong); the leads' segments, or None without
    ``segments`` in the spec."""
    if spec.segments is None:
        _contract_keys(contract, spec, {})
        return None
    missing = [c for c in spec.segments.by if c not in set(frame.columns)]
    if missing:
        raise UserError(f"segments.by: no such column in the data: {', '.join(missing)}")
    # A lead is routed by what is known when it is scored: never by the outcome, an identifier, the
    # scoring time, or a column the spec keeps out (a post-contact column would leak the answer).
    roles = {spec.label.column: "the label", spec.id: "the id column", spec.time: "the time column"}
    for col in spec.segments.by:
        if col in roles:
            raise UserError(
                f"segments.by: '{col}' is {roles[col]}; segment by a column known when a lead is scored"
            )
        if col in spec.exclude:
            raise UserError(f"segments.by: '{col}' is excluded by the spec ({spec.exclude[col]})")
    reader = segment_reader(spec)
    keys = reader.keys(frame)
    names = most_common_spelling(keys, reader.shown_values(frame))
    return Segmentation(keys, names, _contract_keys(contract, spec, names))


def _contract_keys(contract: CutoffContract, spec: DatasetSpec, known: dict[str, str]) -> dict[str, str]:
    """The contract's segment names mapped to the data's segment keys (a name the data lacks: error)."""
    if not contract.segments:
        return {}
    if spec.segments is None:
        raise UserError(
            f"cutoff contract {contract.version}: gives policies per segment but the spec has no 'segments'"
        )
    reader = segment_reader(spec)
    out: dict[str, str] = {}
    for name in contract.segments:
        parts = [p.strip() for p in name.split("/")]
        if len(parts) != len(reader.by):
            parts = [name]
        key = reader.key(dict(zip(reader.by, parts, strict=False)))
        if key not in known:
            have = ", ".join(sorted(known.values())) or "none"
            raise UserError(
                f"cutoff contract: segments.{name}: no such segment in the data (segments: {have})"
            )
        out[key] = name
    return out


def train_segments(
    segmentation: Segmentation,
    global_bundle: ModelBundle,
    fitted: Fitted,
    X: np.ndarray,
    data: TrainingData,
    split: Split,
    spec: DatasetSpec,
    options: TrainOptions,
    crossfit: bool,
    p_test: np.ndarray,
    points_test: np.ndarray | None,
    weekly: float | None,
    make: MakeBundle,
) -> SegmentedOutcome:
    """Fit, compare and cut off every segment; ``p_test`` is the global model on ``split.test``."""
    rule = spec.segments
    assert rule is not None
    keys, names, own_policy = segmentation.keys, segmentation.names, segmentation.own_policy
    y = data.y
    p_calib_global = global_bundle.probability(fitted.calib_raw)
    routed_p = p_test.copy()
    routed_t = np.full(len(p_test), global_bundle.threshold)
    test_keys = keys[split.test]
    boosters: dict[str, str] = {}
    models: dict[str, SegmentModel] = {}
    notes: list[str] = []
    params: dict[str, Any] = {}
    n_all = len(data.frame)
    for number, key in enumerate(sorted(names)):
        name = names[key]
        in_seg = keys == key
        t_mask = test_keys == key
        y_t, p_global_t = y[split.test][t_mask], p_test[t_mask]
        n_sql = int(y[in_seg].sum())
        n_non = int(in_seg.sum()) - n_sql
        metrics: dict[str, Any] = {
            "n_leads": int(in_seg.sum()),
            "n_sql": n_sql,
            "n_non_sql": n_non,
            "n_test": int(t_mask.sum()),
            "sql_test": int(y_t.sum()),
            "roc_auc_global": _auc(y_t, p_global_t),
            "roc_auc_segment": None,
        }
        small = _too_small(rule.min_sql, rule.min_leads, n_sql, n_non)
        seg_fitted: Fitted | None = None
        if small is None:
            seg_fitted, small = _fit_segment(X, y, split, in_seg, global_bundle, options, crossfit)
        contract = options.contract.for_segment(own_policy[key]) if key in own_policy else options.contract
        weekly_seg = _weekly(data, in_seg, spec, weekly, n_all)
        model = "global"
        why = small or ""
        group_pure: bool | None = None
        if seg_fitted is not None:
            calibrator, _ = choose_calibrator(
                seg_fitted.calib_raw, y[seg_fitted.calib_rows], seed=options.seed
            )
            draft = make(seg_fitted, calibrator, 0.5, NO_EDGES)
            edges = band_edges(draft, X[seg_fitted.calib_rows])
            p_seg_t = draft.probability(draft.raw_score(X[split.test][t_mask]))
            metrics["roc_auc_segment"] = _auc(y_t, p_seg_t)
            auc_g, auc_s = metrics["roc_auc_global"], metrics["roc_auc_segment"]
            if auc_g is None or auc_s is None:
                why = "its test leads are all of one class: kept the global model"
            elif auc_s > auc_g:
                model = "segment"
                why = f"own model better on its test leads (ROC AUC {auc_s:.3f} vs global {auc_g:.3f})"
            else:
                why = f"global model as good or better on its test leads (ROC AUC {auc_g:.3f} vs own {auc_s:.3f})"
        if model == "segment":
            assert seg_fitted is not None
            p_calib = draft.probability(seg_fitted.calib_raw)
            y_calib = y[seg_fitted.calib_rows]
            own = (
                contract
                if key in own_policy
                else _shared(options.contract, weekly_seg, weekly, in_seg, n_all)
            )
            threshold, cut_notes = resolve_threshold(own, p_calib, weekly_seg, y=y_calib, seed=options.seed)
            seg_bundle = make(seg_fitted, calibrator, threshold, edges)
            boosters[SEGMENT_BOOSTER.format(number)] = seg_bundle.booster_text
            group_pure = seg_bundle.group_pure
            p_t = p_seg_t
        else:
            calib_in = in_seg[fitted.calib_rows]
            p_calib, y_calib = p_calib_global[calib_in], y[fitted.calib_rows][calib_in]
            if key in own_policy:
                threshold, cut_notes = resolve_threshold(
                    contract, p_calib, weekly_seg, y=y_calib, seed=options.seed
                )
            else:
                threshold, cut_notes = global_bundle.threshold, []
            p_t = p_global_t
        facts = cutoff_facts(
            contract,
            y_t,
            p_t,
            points_test[t_mask] if points_test is not None else None,
            threshold,
            weekly_seg,
            options.seed,
        )
        if not len(y_t):  # every lead of the segment fell in training: its promise cannot be measured
            cut_notes = [*cut_notes, "no test leads: its cutoff's promise is not measured"]
        facts.notes = [f"{name}: {n}" for n in cut_notes]
        if len(p_calib) >= MIN_MQL:  # fewer calibration leads: no interval worth showing
            interval = promise_interval(p_calib, y_calib, threshold, seed=options.seed)
            facts.expected_mql_share_interval = interval["mql_share"]
            facts.expected_sql_rate_interval = interval["sql_rate"]
        facts.confidence = contract.confidence
        notes.extend(facts.notes)
        metrics.update({f"test_{k}": v for k, v in binary_metrics(y_t, p_t).items()} if len(y_t) else {})
        routed_p[t_mask] = p_t
        routed_t[t_mask] = threshold
        models[key] = SegmentModel(
            name=name,
            model=model,
            why=why,
            booster=SEGMENT_BOOSTER.format(number) if model == "segment" else None,
            calibrator=calibrator.to_dict() if model == "segment" else None,
            threshold=threshold,
            grade_edges={"fit": edges[0], "engagement": edges[1]} if model == "segment" else None,
            group_pure=group_pure,
            cutoff=facts,
            metrics=metrics,
            reliability=reliability_table(y_t, p_t, RELIABILITY_BINS) if len(y_t) else [],
        )
        params[f"segment_{slug(name)}_model"] = model
        log.debug("segment %s: %s (%s), threshold %.4f", name, model, why, threshold)
    if not names:
        notes.append(
            f"segments by {', '.join(rule.by)}: no lead has a value; every lead uses the global model"
        )
    routing = SegmentRouting(
        by=list(rule.by),
        placeholders=list(spec.placeholders),
        aliases={c: dict(m) for c, m in spec.aliases.items() if c in rule.by},
        models=models,
    )
    return SegmentedOutcome(routing, boosters, routed_p, routed_t, notes, params)


def _too_small(min_sql: int, min_leads: int, n_sql: int, n_non: int) -> str | None:
    if n_sql < min_sql or n_non < min_sql:
        return f"too small for a model of its own ({n_sql} SQL / {n_non} non-SQL; needs {min_sql} of each)"
    if n_sql + n_non < min_leads:
        return f"too small for a model of its own ({n_sql + n_non} leads; needs {min_leads})"
    return None


def _fit_segment(
    X: np.ndarray,
    y: np.ndarray,
    split: Split,
    in_seg: np.ndarray,
    global_bundle: ModelBundle,
    options: TrainOptions,
    crossfit: bool,
) -> tuple[Fitted | None, str | None]:
    """The segment's own booster: the global model's fields, its own shape, the segment's rows only."""
    enc = global_bundle.encoder
    # The segment's own shape, among the fixed candidates (a search on a segment's few leads would
    # mostly fit noise; the global model's searched shape was tuned for many more rows).
    options = dataclasses.replace(options, search_trials=0)
    if crossfit:
        rows = split.train[in_seg[split.train]]
        if min(np.bincount(y[rows].astype(int), minlength=2)) < 5:
            return None, "too few SQL or non-SQL training leads to cross-fit: kept the global model"
        return fit_crossfit(X, y, rows, enc, options, None), None
    fit_rows, valid_rows = split.fit[in_seg[split.fit]], split.valid[in_seg[split.valid]]
    if (
        min(np.bincount(y[valid_rows].astype(int), minlength=2)) < 1
        or min(np.bincount(y[fit_rows].astype(int), minlength=2)) < 1
    ):
        return None, "its fit or validation leads are all of one class: kept the global model"
    return fit_holdout(X, y, fit_rows, valid_rows, enc, options, None), None


def _weekly(
    data: TrainingData, in_seg: np.ndarray, spec: DatasetSpec, weekly: float | None, n_all: int
) -> float | None:
    """The segment's leads per week (its share of the whole when the span is too short to tell)."""
    own = weekly_volume(data.frame.loc[in_seg], spec.time)
    if own is None and weekly:
        return weekly * in_seg.sum() / max(n_all, 1)
    return own


def _shared(
    contract: CutoffContract, weekly_seg: float | None, weekly: float | None, in_seg: np.ndarray, n_all: int
) -> CutoffContract:
    """The default policy for one segment: a weekly MQL capacity is shared by lead volume."""
    if contract.policy != "mql_capacity" or contract.mql_capacity is None:
        return contract
    share = (weekly_seg / weekly) if (weekly_seg and weekly) else in_seg.sum() / max(n_all, 1)
    update: dict[str, Any] = {"mql_capacity": contract.mql_capacity * share}
    if contract.weekly_leads:
        update["weekly_leads"] = contract.weekly_leads * share
    return contract.model_copy(update=update)


def _auc(y: np.ndarray, p: np.ndarray) -> float | None:
    return float(roc_auc_score(y, p)) if len(np.unique(y)) == 2 else None
