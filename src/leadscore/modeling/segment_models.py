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
from leadscore.scoring.meta import CutoffFacts, SegmentModel, SegmentRouting
from leadscore.scoring.segment_keys import SegmentReader, slug
from leadscore.spec import DatasetSpec

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


@dataclass(frozen=True)
class GlobalRun:
    """What segment training reads of the global run: its model, data, split and test scores."""

    segmentation: Segmentation
    bundle: ModelBundle  # the global model
    fitted: Fitted
    X: np.ndarray
    data: TrainingData
    split: Split
    spec: DatasetSpec
    options: TrainOptions
    crossfit: bool
    p_test: np.ndarray  # the global model on ``split.test``
    points_test: np.ndarray | None  # the points model on ``split.test``
    weekly: float | None  # leads per week, all segments
    make: MakeBundle


@dataclass(frozen=True)
class SegmentRows:
    """One segment's rows: all of them, its test rows, and how its test leads are scored globally."""

    number: int
    key: str
    name: str
    in_seg: np.ndarray  # over all leads
    t_mask: np.ndarray  # over the test leads
    y_test: np.ndarray
    p_global_test: np.ndarray
    contract: CutoffContract  # its own policy, else the contract's
    weekly: float | None


@dataclass(frozen=True)
class OwnModel:
    """A segment's own model, fitted, calibrated and graded on its rows."""

    fitted: Fitted
    calibrator: Calibrator
    draft: ModelBundle  # at a placeholder threshold: scores, not MQL flags
    edges: tuple[list[float], list[float]]
    p_test: np.ndarray


@dataclass(frozen=True)
class SegmentCutoff:
    """The model that scores a segment, its threshold, and what the threshold was chosen on."""

    model: str  # "segment" or "global"
    threshold: float
    notes: list[str]
    p_calib: np.ndarray
    y_calib: np.ndarray
    p_test: np.ndarray
    booster_text: str | None = None
    group_pure: bool | None = None
    calib_rows: np.ndarray | None = None  # the leads of ``p_calib``, over all leads


def train_segments(run: GlobalRun) -> SegmentedOutcome:
    """Fit, compare and cut off every segment."""
    rule = run.spec.segments
    assert rule is not None
    names = run.segmentation.names
    routed_p = run.p_test.copy()
    routed_t = np.full(len(run.p_test), run.bundle.threshold)
    out = SegmentedOutcome(SegmentRouting(by=list(rule.by)), {}, routed_p, routed_t)
    models: dict[str, SegmentModel] = {}
    for number, key in enumerate(sorted(names)):
        rows = segment_rows(run, number, key)
        model, cutoff = _train_segment(run, rows)
        models[key] = model
        if cutoff.booster_text is not None:
            out.boosters[SEGMENT_BOOSTER.format(number)] = cutoff.booster_text
        out.notes.extend(model.cutoff.notes if model.cutoff is not None else [])
        routed_p[rows.t_mask] = cutoff.p_test
        routed_t[rows.t_mask] = cutoff.threshold
        out.params[f"segment_{slug(rows.name)}_model"] = model.model
        log.debug("segment %s: %s (%s), threshold %.4f", rows.name, model.model, model.why, cutoff.threshold)
    if not names:
        out.notes.append(
            f"segments by {', '.join(rule.by)}: no lead has a value; every lead uses the global model"
        )
    out.routing = SegmentRouting(
        by=list(rule.by),
        placeholders=list(run.spec.placeholders),
        aliases={c: dict(m) for c, m in run.spec.aliases.items() if c in rule.by},
        models=models,
    )
    return out


def segment_rows(run: GlobalRun, number: int, key: str) -> SegmentRows:
    keys, own_policy = run.segmentation.keys, run.segmentation.own_policy
    in_seg = keys == key
    t_mask = keys[run.split.test] == key
    contract = (
        run.options.contract.for_segment(own_policy[key]) if key in own_policy else run.options.contract
    )
    return SegmentRows(
        number=number,
        key=key,
        name=run.segmentation.names[key],
        in_seg=in_seg,
        t_mask=t_mask,
        y_test=run.data.y[run.split.test][t_mask],
        p_global_test=run.p_test[t_mask],
        contract=contract,
        weekly=_weekly(run.data, in_seg, run.spec, run.weekly),
    )


def _train_segment(run: GlobalRun, rows: SegmentRows) -> tuple[SegmentModel, SegmentCutoff]:
    """One segment: its own model if it has enough leads, the better of that and the global model,
    the chosen model's cutoff, and what the cutoff promises on the segment's test leads."""
    rule = run.spec.segments
    assert rule is not None
    y = run.data.y
    n_sql = int(y[rows.in_seg].sum())
    n_non = int(rows.in_seg.sum()) - n_sql
    metrics: dict[str, Any] = {
        "n_leads": int(rows.in_seg.sum()),
        "n_sql": n_sql,
        "n_non_sql": n_non,
        "n_test": int(rows.t_mask.sum()),
        "sql_test": int(rows.y_test.sum()),
        "roc_auc_global": _auc(rows.y_test, rows.p_global_test),
        "roc_auc_segment": None,
    }
    why = _too_small(rule.min_sql, rule.min_leads, n_sql, n_non)
    own: OwnModel | None = None
    if why is None:
        own, why = own_model(run, rows)
    model = "global"
    if own is not None:
        metrics["roc_auc_segment"] = _auc(rows.y_test, own.p_test)
        model, why = _champion(metrics["roc_auc_global"], metrics["roc_auc_segment"])
    cutoff = (
        own_cutoff(run, rows, own) if model == "segment" and own is not None else global_cutoff(run, rows)
    )
    facts = _facts(run, rows, cutoff)
    y_t, p_t = rows.y_test, cutoff.p_test
    metrics.update({f"test_{k}": v for k, v in binary_metrics(y_t, p_t).items()} if len(y_t) else {})
    mine = model == "segment" and own is not None
    return SegmentModel(
        name=rows.name,
        model=model,
        why=why or "",
        booster=SEGMENT_BOOSTER.format(rows.number) if mine else None,
        calibrator=own.calibrator.to_dict() if mine and own is not None else None,
        threshold=cutoff.threshold,
        grade_edges={"fit": own.edges[0], "engagement": own.edges[1]} if mine and own is not None else None,
        group_pure=cutoff.group_pure,
        cutoff=facts,
        metrics=metrics,
        reliability=reliability_table(y_t, p_t, RELIABILITY_BINS) if len(y_t) else [],
    ), cutoff


def own_model(run: GlobalRun, rows: SegmentRows) -> tuple[OwnModel | None, str | None]:
    """The segment's own booster, calibrated and graded on its calibration rows (None: why not)."""
    fitted, why = _fit_segment(
        run.X, run.data.y, run.split, rows.in_seg, run.bundle, run.options, run.crossfit
    )
    if fitted is None:
        return None, why
    calibrator, _ = choose_calibrator(fitted.calib_raw, run.data.y[fitted.calib_rows], seed=run.options.seed)
    draft = run.make(fitted, calibrator, 0.5, NO_EDGES)
    edges = band_edges(draft, run.X[fitted.calib_rows])
    p_test = draft.probability(draft.raw_score(run.X[run.split.test][rows.t_mask]))
    return OwnModel(fitted, calibrator, draft, edges, p_test), None


def _champion(auc_global: float | None, auc_segment: float | None) -> tuple[str, str]:
    """Which model scores the segment ("segment" or "global") and why."""
    if auc_global is None or auc_segment is None:
        return "global", "its test leads are all of one class: kept the global model"
    if auc_segment > auc_global:
        return (
            "segment",
            f"own model better on its test leads (ROC AUC {auc_segment:.3f} vs global {auc_global:.3f})",
        )
    return (
        "global",
        f"global model as good or better on its test leads (ROC AUC {auc_global:.3f} vs own {auc_segment:.3f})",
    )


def own_cutoff(run: GlobalRun, rows: SegmentRows, own: OwnModel) -> SegmentCutoff:
    """The segment's own model's threshold: its own policy, else the default one on its leads."""
    options = run.options
    p_calib = own.draft.probability(own.fitted.calib_raw)
    y_calib = run.data.y[own.fitted.calib_rows]
    contract = (
        rows.contract
        if rows.key in run.segmentation.own_policy
        else _shared(options.contract, rows.weekly, run.weekly, lead_share(run.data, rows.in_seg))
    )
    threshold, notes = resolve_threshold(contract, p_calib, rows.weekly, y=y_calib, seed=options.seed)
    bundle = run.make(own.fitted, own.calibrator, threshold, own.edges)
    return SegmentCutoff(
        "segment",
        threshold,
        notes,
        p_calib,
        y_calib,
        own.p_test,
        bundle.booster_text,
        bundle.group_pure,
        own.fitted.calib_rows,
    )


def global_cutoff(run: GlobalRun, rows: SegmentRows) -> SegmentCutoff:
    """The global model on the segment: its own policy's threshold, else the global threshold."""
    calib_rows = run.fitted.calib_rows
    calib_in = rows.in_seg[calib_rows]
    p_calib = run.bundle.probability(run.fitted.calib_raw)[calib_in]
    y_calib = run.data.y[calib_rows][calib_in]
    if rows.key in run.segmentation.own_policy:
        threshold, notes = resolve_threshold(
            rows.contract, p_calib, rows.weekly, y=y_calib, seed=run.options.seed
        )
    else:
        threshold, notes = run.bundle.threshold, []
    return SegmentCutoff(
        "global", threshold, notes, p_calib, y_calib, rows.p_global_test, calib_rows=calib_rows[calib_in]
    )


def _facts(run: GlobalRun, rows: SegmentRows, cutoff: SegmentCutoff) -> CutoffFacts:
    """What the segment's cutoff promises, measured on its test leads, with its interval."""
    points = run.points_test[rows.t_mask] if run.points_test is not None else None
    return segment_facts(run, rows, cutoff, (rows.y_test, cutoff.p_test, points), "test leads")


def segment_facts(
    run: GlobalRun,
    rows: SegmentRows,
    cutoff: SegmentCutoff,
    measured: tuple[np.ndarray, np.ndarray, np.ndarray | None],
    where: str,
) -> CutoffFacts:
    """What the segment's cutoff promises on ``measured`` (outcomes, P(SQL), points) of ``where``,
    with its interval from the calibration leads."""
    contract, seed = rows.contract, run.options.seed
    y, p, points = measured
    facts = cutoff_facts(contract, y, p, points, cutoff.threshold, rows.weekly, seed, measured_on=where)
    notes = cutoff.notes
    if not len(y):  # every lead of the segment fell in training: its promise cannot be measured
        notes = [*notes, "no test leads: its cutoff's promise is not measured"]
    facts.notes = [f"{rows.name}: {n}" for n in notes]
    if len(cutoff.p_calib) >= MIN_MQL:  # fewer calibration leads: no interval worth showing
        interval = promise_interval(cutoff.p_calib, cutoff.y_calib, cutoff.threshold, seed=seed)
        facts.expected_mql_share_interval = interval["mql_share"]
        facts.expected_sql_rate_interval = interval["sql_rate"]
    facts.confidence = contract.confidence
    return facts


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


def lead_share(data: TrainingData, in_seg: np.ndarray) -> float:
    """The segment's share of the export's leads: its rows, each counted as the leads it stands for
    (a sample's rows are weighted)."""
    weight = data.weight
    if weight is None:
        return float(in_seg.sum()) / max(len(in_seg), 1)
    total = float(weight.sum())
    return float(weight[in_seg].sum()) / total if total > 0 else 0.0


def _weekly(data: TrainingData, in_seg: np.ndarray, spec: DatasetSpec, weekly: float | None) -> float | None:
    """The segment's leads per week (its share of the whole when the span is too short to tell)."""
    own = weekly_volume(data.frame.loc[in_seg], spec.time, weight=data.weight_of(in_seg))
    if own is None and weekly:
        return weekly * lead_share(data, in_seg)
    return own


def _shared(
    contract: CutoffContract, weekly_seg: float | None, weekly: float | None, share_of_leads: float
) -> CutoffContract:
    """The default policy for one segment: a weekly MQL capacity is shared by lead volume."""
    if contract.policy != "mql_capacity" or contract.mql_capacity is None:
        return contract
    share = (weekly_seg / weekly) if (weekly_seg and weekly) else share_of_leads
    update: dict[str, Any] = {"mql_capacity": contract.mql_capacity * share}
    if contract.weekly_leads:
        update["weekly_leads"] = contract.weekly_leads * share
    return contract.model_copy(update=update)


def _auc(y: np.ndarray, p: np.ndarray) -> float | None:
    return float(roc_auc_score(y, p)) if len(np.unique(y)) == 2 else None
