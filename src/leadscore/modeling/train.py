"""Train a calibrated P(SQL) model on any CRM export, with baselines and an honest test."""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold, train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from leadscore.bundle import ENGAGEMENT_BANDS, FIT_BANDS, ModelBundle
from leadscore.config import DatasetSpec, UserError
from leadscore.data.sources import read_folder_table, read_table, resolve_leads_path
from leadscore.data.validate import MIN_CLASS_EXAMPLES, ValidationReport, label_values, validate_frame
from leadscore.features import (
    ENGAGEMENT_COLUMNS,
    FeatureEncoder,
    canonical_category,
    engagement_rollups,
    map_values,
)
from leadscore.modeling import leakage
from leadscore.modeling.calibrate import choose_calibrator
from leadscore.modeling.cutoff import CutoffContract, contract_dict, resolve_threshold
from leadscore.modeling.evaluate import (
    binary_metrics,
    cutoff_outcome,
    gains_curve,
    rate_at_volume,
    reliability_table,
)
from leadscore.rules import PointsModel, load_rules

log = logging.getLogger(__name__)

GRADE_SAMPLE = 20_000
SMALL_DATA = 300  # fewer examples than this in a class: report cross-validated intervals
TEST_SHARE = 0.2
VALID_SHARE = 0.2


@dataclass(frozen=True)
class Capacity:
    """A model shape: tree size and whether each tree keeps to fit or to engagement fields."""

    name: str
    num_leaves: int
    max_depth: int
    group_pure: bool


# Candidates, compared on held-out ROC AUC (validation rows, or out-of-fold when cross-fitted).
# Group-pure shallow trees come first and are kept unless another shape is clearly better: their
# fit and engagement parts are exact and cheap to read for every lead (grades at batch speed, see
# benchmarks/bench_service.py), and exact reasons stay cheap. `--capacity` forces a shape.
CAPACITIES = (
    Capacity("group-pure-d3", 7, 3, True),
    Capacity("shallow-d3", 7, 3, False),
    Capacity("deeper-d6", 31, 6, False),
)
CAPACITY_TOLERANCE = 0.002  # held-out ROC AUC a later (slower to explain) shape must gain to be chosen...
FAST_GRADES_ROWS = 100_000  # ...when there is this much data: grading speed matters at volume only
CROSSFIT_MAX_ROWS = 100_000  # up to this many training rows without a time column: cross-fit
SELECTION_ROWS = 200_000


@dataclass
class TrainOptions:
    """How to train: the contract, columns to keep despite the leakage guard, seed, threads."""

    contract: CutoffContract
    keep: list[str] = field(default_factory=list)
    seed: int = 42
    feedback: str | None = None  # feedback store: sales' decisions override the data's label
    num_threads: int = 2
    max_rounds: int = 3000
    learning_rate: float | None = None
    capacities: tuple[Capacity, ...] = CAPACITIES


@dataclass
class TrainResult:
    """Everything a training run produced, for logging, printing and exporting."""

    bundle: ModelBundle
    metrics: dict[str, float]
    baselines: dict[str, dict[str, float]]
    cutoff: dict[str, Any]
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


# --- data ------------------------------------------------------------------------------------


def file_hash(path: str | Path) -> str:
    """SHA-256 of the leads file (the data a run was trained on)."""
    digest = hashlib.sha256()
    with resolve_leads_path(path).open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def load_training_frame(path: str | Path, spec: DatasetSpec) -> pd.DataFrame:
    """The leads table; for a generator folder, engagement is rebuilt from raw events as of scoring time."""
    frame = read_table(path)
    if spec.events and Path(path).is_dir():
        events = read_folder_table(path, "events")
        if events is not None and spec.id and spec.time and spec.time in frame.columns:
            anchors = frame[[spec.id, spec.time]].drop_duplicates(spec.id)
            rollups = engagement_rollups(events, anchors, id_col=spec.id, time_col=spec.time)
            rollups.insert(0, spec.id, anchors[spec.id].to_numpy())
            frame = frame.drop(columns=[c for c in ENGAGEMENT_COLUMNS if c in frame.columns])
            frame = frame.merge(rollups, on=spec.id, how="left")
    return frame


def deduplicate(frame: pd.DataFrame, spec: DatasetSpec) -> tuple[pd.DataFrame, int]:
    """Drop repeated ids and repeated contacts (email, ignoring case and spaces): keep the first."""
    keep = np.ones(len(frame), dtype=bool)
    if spec.id and spec.id in frame.columns:
        keep &= ~frame[spec.id].duplicated().to_numpy()
    if spec.email and spec.email in frame.columns:
        emails = map_values(frame[spec.email], canonical_category)
        keep &= ~(emails.duplicated() & emails.notna()).to_numpy()
    return frame.loc[keep].reset_index(drop=True), int((~keep).sum())


def candidate_fields(frame: pd.DataFrame, spec: DatasetSpec) -> tuple[list[str], dict[str, str]]:
    """The fields a model may learn from, and the excluded ones with the reason."""
    excluded: dict[str, str] = {}
    reserved = {spec.label.column, spec.id, spec.time} - {None}
    for col, why in spec.exclude.items():
        if col in frame.columns:
            excluded[col] = why
    if spec.features:
        wanted = [c for c in dict.fromkeys([*spec.features, *spec.dates]) if c in frame.columns]
        fields = [c for c in wanted if c not in excluded and c not in reserved]
        return fields, excluded
    fields = []
    n = len(frame)
    for col in frame.columns:
        if col in reserved or col in excluded:
            continue
        series = frame[col]
        distinct = series.nunique(dropna=True)
        if distinct <= 1:
            excluded[col] = "constant (carries no information)"
            continue
        textual = not pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_datetime64_any_dtype(
            series
        )
        integral = pd.api.types.is_integer_dtype(series)
        if (textual or integral) and distinct >= 0.98 * series.notna().sum() and n >= 50:
            excluded[col] = "identifier-like (a different value for almost every lead)"
            continue
        if textual and series.astype(str).str.contains("@", regex=False).mean() > 0.5:
            excluded[col] = "email address (personal data)"
            continue
        fields.append(col)
    return fields, excluded


def split_indices(
    frame: pd.DataFrame, y: np.ndarray, spec: DatasetSpec, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, str]:
    """Fit / validation / test rows: by time when there is a time column, else stratified."""
    n = len(frame)
    idx = np.arange(n)
    if spec.time and spec.time in frame.columns:
        from leadscore.features import parse_dates

        when = parse_dates(frame[spec.time]).astype("datetime64[ms]").astype(np.int64)
        order = np.lexsort((idx, when))
        n_test = int(round(TEST_SHARE * n))
        rest, test = order[: n - n_test], order[n - n_test :]
        n_valid = int(round(VALID_SHARE * len(rest)))
        fit, valid = rest[: len(rest) - n_valid], rest[len(rest) - n_valid :]
        return np.sort(fit), np.sort(valid), np.sort(test), "time"
    rest, test = train_test_split(idx, test_size=TEST_SHARE, stratify=y, random_state=seed)
    fit, valid = train_test_split(rest, test_size=VALID_SHARE, stratify=y[rest], random_state=seed + 1)
    return np.sort(fit), np.sort(valid), np.sort(test), "stratified"


# --- models ----------------------------------------------------------------------------------


def lgb_params(n_fit: int, options: TrainOptions, enc: FeatureEncoder, capacity: Capacity) -> dict[str, Any]:
    # About 200-600 trees either way: exact reasons cost grows with trees (benchmarks/bench_service.py).
    lr = options.learning_rate or (0.05 if n_fit < 50_000 else 0.08)
    params: dict[str, Any] = {
        "objective": "binary",
        "learning_rate": lr,
        "num_leaves": capacity.num_leaves,
        "max_depth": capacity.max_depth,
        "min_data_in_leaf": max(20, min(200, n_fit // 1000)),
        "feature_fraction": 0.8,
        "bagging_fraction": 0.8,
        "bagging_freq": 1,
        "lambda_l2": 1.0,
        "cat_smooth": 10.0,
        "cat_l2": 10.0,
        "min_data_per_group": 50,
        "max_cat_to_onehot": 4,
        "num_threads": options.num_threads,
        "seed": options.seed,
        "deterministic": True,
        "force_row_wise": True,
        "verbose": -1,
    }
    if capacity.group_pure:
        # Each tree uses fit fields only or engagement fields only: the fit and engagement parts
        # of a score are then exact, and cheap to read for every lead's grade.
        fit = [j for j, src in enumerate(enc.feature_fields) if enc.field(src).group == "fit"]
        eng = [j for j, src in enumerate(enc.feature_fields) if enc.field(src).group != "fit"]
        if fit and eng:
            params["interaction_constraints"] = [fit, eng]
    return params


def choose_capacity(
    X: np.ndarray,
    y: np.ndarray,
    fit_idx: np.ndarray,
    valid_idx: np.ndarray,
    enc: FeatureEncoder,
    options: TrainOptions,
) -> tuple[Capacity, dict[str, float]]:
    """The simplest candidate shape within ``CAPACITY_TOLERANCE`` of the best on validation leads."""
    if len(options.capacities) == 1:
        return options.capacities[0], {}
    rng = np.random.default_rng(options.seed)
    fit_rows = (
        np.sort(rng.choice(fit_idx, SELECTION_ROWS, replace=False))
        if len(fit_idx) > SELECTION_ROWS
        else fit_idx
    )
    scores: dict[str, float] = {}
    for cap in options.capacities:
        params = lgb_params(len(fit_idx), options, enc, cap)
        booster = fit_booster(X, y, fit_rows, valid_idx, enc, params, options.max_rounds)
        scores[cap.name] = float(
            roc_auc_score(y[valid_idx], booster.predict(X[valid_idx], num_threads=options.num_threads))
        )
    chosen = _prefer(options.capacities, scores, len(fit_idx) + len(valid_idx))
    log.info("model shape %s (validation ROC AUC %s)", chosen.name, scores)
    return chosen, scores


@dataclass
class _Fitted:
    """A trained booster and the scores it (or its fold models) gave leads it never trained on."""

    booster: lgb.Booster
    capacity: Capacity
    params: dict[str, Any]
    scores: dict[str, float]
    calib_rows: np.ndarray
    calib_raw: np.ndarray
    fold_aucs: list[float] | None = None


def _prefer(capacities: tuple[Capacity, ...], scores: dict[str, float], n_rows: int) -> Capacity:
    """The best held-out AUC; with much data, the earlier (faster) shape unless clearly worse."""
    best = max(scores.values())
    tolerance = CAPACITY_TOLERANCE if n_rows >= FAST_GRADES_ROWS else 0.0
    return next(c for c in capacities if scores[c.name] >= best - tolerance)


def _fit_holdout(
    X: np.ndarray,
    y: np.ndarray,
    fit_idx: np.ndarray,
    valid_idx: np.ndarray,
    enc: FeatureEncoder,
    options: TrainOptions,
    capacity: Capacity | None,
) -> _Fitted:
    """Fit on the older rows, stop early and calibrate on the validation rows."""
    scores: dict[str, float] = {}
    if capacity is None:
        capacity, scores = choose_capacity(X, y, fit_idx, valid_idx, enc, options)
    params = lgb_params(len(fit_idx), options, enc, capacity)
    booster = fit_booster(X, y, fit_idx, valid_idx, enc, params, options.max_rounds)
    raw = np.asarray(booster.predict(X[valid_idx], raw_score=True, num_threads=options.num_threads))
    return _Fitted(booster, capacity, params, scores, valid_idx, raw)


def _fit_crossfit(
    X: np.ndarray,
    y: np.ndarray,
    rows: np.ndarray,
    enc: FeatureEncoder,
    options: TrainOptions,
    capacity: Capacity | None,
) -> _Fitted:
    """Five fold models give every training row an out-of-fold score (shape choice, calibration,
    cutoff); the final booster then learns from all rows, as CalibratedClassifierCV(ensemble=False)."""
    folds = list(StratifiedKFold(5, shuffle=True, random_state=options.seed).split(rows, y[rows]))
    candidates = (capacity,) if capacity else options.capacities
    runs: dict[str, tuple[dict[str, Any], np.ndarray, list[int], list[float]]] = {}
    for cap in candidates:
        params = lgb_params(int(0.8 * len(rows)), options, enc, cap)
        oof = np.zeros(len(rows))
        iters: list[int] = []
        aucs: list[float] = []
        for fit_pos, eval_pos in folds:
            model = fit_booster(X, y, rows[fit_pos], rows[eval_pos], enc, params, options.max_rounds)
            oof[eval_pos] = model.predict(X[rows[eval_pos]], raw_score=True, num_threads=options.num_threads)
            iters.append(model.best_iteration or model.current_iteration())
            aucs.append(float(roc_auc_score(y[rows[eval_pos]], oof[eval_pos])))
        runs[cap.name] = (params, oof, iters, aucs)
    scores = {name: float(np.mean(run[3])) for name, run in runs.items()}
    chosen = _prefer(candidates, scores, len(rows))
    params, oof, iters, aucs = runs[chosen.name]
    rounds = max(10, int(round(np.mean(iters) * 1.1)))  # a little longer: 25% more rows than each fold
    data = lgb.Dataset(
        X[rows],
        y[rows],
        categorical_feature=enc.categorical_indices,
        feature_name=_safe_names(enc.feature_names),
    )
    booster = lgb.train(params, data, num_boost_round=rounds)
    return _Fitted(booster, chosen, params, scores if len(candidates) > 1 else {}, rows, oof, aucs)


def fit_booster(
    X: np.ndarray,
    y: np.ndarray,
    fit_rows: np.ndarray,
    stop_rows: np.ndarray,
    enc: FeatureEncoder,
    params: dict[str, Any],
    max_rounds: int,
) -> lgb.Booster:
    """Train on ``fit_rows``, stopping early on ``stop_rows``."""
    train_set = lgb.Dataset(
        X[fit_rows],
        y[fit_rows],
        categorical_feature=enc.categorical_indices,
        feature_name=_safe_names(enc.feature_names),
        free_raw_data=False,
    )
    valid_set = lgb.Dataset(X[stop_rows], y[stop_rows], reference=train_set)
    return lgb.train(
        params,
        train_set,
        num_boost_round=max_rounds,
        valid_sets=[valid_set],
        callbacks=[lgb.early_stopping(100, verbose=False)],
    )


def _safe_names(names: list[str]) -> list[str]:
    # LightGBM rejects some characters in feature names; keep them readable and unique.
    out = []
    for i, name in enumerate(names):
        cleaned = "".join(c if c.isalnum() or c in "_" else "_" for c in name)
        out.append(f"f{i}_{cleaned}"[:60])
    return out


def fit_logistic(X: np.ndarray, y: np.ndarray, categorical: list[int], seed: int) -> Pipeline:
    """The logistic-regression baseline: one-hot categories, scaled numbers with missing flags."""
    numeric = [j for j in range(X.shape[1]) if j not in set(categorical)]
    pre = ColumnTransformer(
        [
            (
                "num",
                Pipeline(
                    [
                        (
                            "impute",
                            SimpleImputer(strategy="median", add_indicator=True, keep_empty_features=True),
                        ),
                        ("scale", StandardScaler()),
                    ]
                ),
                numeric,
            ),
            (
                "cat",
                Pipeline(
                    [
                        (
                            "impute",
                            SimpleImputer(strategy="constant", fill_value=-1.0, keep_empty_features=True),
                        ),
                        ("onehot", OneHotEncoder(handle_unknown="ignore", min_frequency=5)),
                    ]
                ),
                categorical,
            ),
        ]
    )
    model = Pipeline([("pre", pre), ("lr", LogisticRegression(C=0.5, max_iter=2000))])
    if len(y) > 200_000:
        keep = np.random.default_rng(seed).choice(len(y), 200_000, replace=False)
        X, y = X[keep], y[keep]
    model.fit(X, y)
    return model


def field_shares(bundle: ModelBundle, X: np.ndarray, max_rows: int = 3000) -> dict[str, float]:
    """Share of the model's mean absolute attribution that each field carries."""
    contrib, _ = bundle.field_contributions(X[:max_rows])  # exact TreeSHAP on a sample
    mean_abs = np.abs(contrib).mean(axis=0)
    total = mean_abs.sum() or 1.0
    return {name: float(v / total) for name, v in zip(bundle.fields, mean_abs, strict=True)}


def grade_edges(part: np.ndarray) -> list[float]:
    """Quartile edges, best first: the top quarter of leads by fit (or engagement) is band A (or 1)."""
    return [float(v) for v in np.quantile(part, [0.75, 0.5, 0.25])]


# --- the pipeline ----------------------------------------------------------------------------


def train(path: str | Path, spec: DatasetSpec, options: TrainOptions) -> TrainResult:
    """The whole training run, without side effects beyond reading ``path``."""
    notes: list[str] = []
    raw = load_training_frame(path, spec)
    if options.feedback:
        raw = _with_feedback(raw, spec, options.feedback, notes)
    report = validate_frame(raw, spec, source=str(path))
    blocking = [p for p in report.problems if p.level == "error" and p.check != "too_few_examples"]
    if blocking:
        raise UserError(blocking[0].line().removeprefix("error: "))
    frame, dropped = deduplicate(raw, spec)
    if dropped:
        notes.append(f"left out {dropped} duplicate leads (same id or same contact)")
    y_all, known = label_values(frame, spec)
    frame = frame.loc[known].reset_index(drop=True)
    y = y_all[known].astype(int)
    n_pos, n_neg = int(y.sum()), int(len(y) - y.sum())
    if min(n_pos, n_neg) < MIN_CLASS_EXAMPLES:
        cmd = f"leadscore points {path}" + (f" --rules {spec.rules}" if spec.rules else "")
        raise UserError(
            f"column '{spec.label.column}': only {n_pos} SQL and {n_neg} non-SQL examples; at least "
            f"{MIN_CLASS_EXAMPLES} of each are needed to train a model. Use the written points model "
            f"until there is more data: {cmd}"
        )

    fields, excluded = candidate_fields(frame, spec)
    if not fields:
        raise UserError("no usable columns to learn from (all excluded, constant or identifiers)")
    fit_idx, valid_idx, test_idx, split_kind = split_indices(frame, y, spec, options.seed)
    for part, rows in (("validation", valid_idx), ("test", test_idx)):
        if len(np.unique(y[rows])) < 2:
            raise UserError(f"the {part} part has only one class; more data or more SQLs are needed")

    kinds = {**dict.fromkeys(spec.categorical, "categorical"), **dict.fromkeys(spec.dates, "date")}
    groups = {**dict.fromkeys(spec.fit, "fit"), **dict.fromkeys(spec.engagement, "engagement")}
    encoder = FeatureEncoder.fit(
        frame.iloc[fit_idx],
        fields,
        kinds=kinds,
        groups=groups,
        placeholders=spec.placeholders,
        aliases=spec.aliases,
        ranges=spec.ranges,
        time_col=spec.time,
    )
    X = encoder.transform(frame)

    # Leakage guard, part 1: columns that alone give the answer away.
    findings = leakage.single_column_scan(
        X[fit_idx],
        y[fit_idx],
        encoder.field_names,
        encoder.feature_fields,
        set(encoder.categorical_indices),
        seed=options.seed,
    )
    keep = set(options.keep)
    unknown_keep = keep - set(encoder.field_names) - set(excluded)
    if unknown_keep:
        raise UserError(f"--keep: no such column: {', '.join(sorted(unknown_keep))}")
    suspects = [f.column for f in findings if f.suspect]

    # Small exports without a time column are cross-fitted: out-of-fold scores choose the model
    # shape, calibrate and set the cutoff, and the final booster learns from every training row.
    train_rows = np.sort(np.concatenate([fit_idx, valid_idx]))
    crossfit = split_kind == "stratified" and len(train_rows) <= CROSSFIT_MAX_ROWS
    capacity: Capacity | None = None
    for _attempt in range(3):
        drop = [c for c in suspects if c not in keep]
        enc = _subset(encoder, drop)
        Xs = _columns(X, encoder, enc)
        if crossfit:
            fitted = _fit_crossfit(Xs, y, train_rows, enc, options, capacity)
        else:
            fitted = _fit_holdout(Xs, y, fit_idx, valid_idx, enc, options, capacity)
        capacity, booster, params = (
            fitted.capacity,
            fitted.booster,
            fitted.params,
        )  # shape fixed after the first try
        draft = _bundle(
            spec,
            enc,
            booster,
            options,
            calibrator={"kind": "identity"},
            threshold=0.5,
            edges=([0, 0, 0], [0, 0, 0]),
            group_pure=capacity.group_pure,
        )
        # Leakage guard, part 2: a model leaning on one column for most of what it knows.
        newly = leakage.lean_check(
            [f for f in findings if f.column in enc.field_names], field_shares(draft, Xs[fitted.calib_rows])
        )
        newly_dropped = [f.column for f in newly if f.column not in keep]
        suspects += [f.column for f in newly]
        if not newly_dropped:
            break
    _record_suspects(suspects, findings, keep, excluded, notes)

    capacity = fitted.capacity
    y_calib = y[fitted.calib_rows]
    calibrator, cal_scores = choose_calibrator(fitted.calib_raw, y_calib, seed=options.seed)
    group_pure = capacity.group_pure and "interaction_constraints" in params
    draft = _bundle(
        spec,
        enc,
        booster,
        options,
        calibrator=calibrator.to_dict(),
        threshold=0.5,
        edges=([0, 0, 0], [0, 0, 0]),
        group_pure=group_pure,
    )
    p_valid = draft.probability(fitted.calib_raw)
    # Grade bands are quartiles of the fit and engagement parts; a sample fixes them well and
    # keeps TreeSHAP (needed for the parts of mixed trees) off the whole validation set.
    parts = draft.score_matrix(Xs[fitted.calib_rows][:GRADE_SAMPLE])
    edges = (grade_edges(parts.fit_part), grade_edges(parts.engagement_part))
    weekly = _weekly_volume(frame, spec)
    threshold, cut_notes = resolve_threshold(options.contract, p_valid, weekly)
    notes += cut_notes

    bundle = _bundle(
        spec,
        enc,
        booster,
        options,
        calibrator=calibrator.to_dict(),
        threshold=threshold,
        edges=edges,
        group_pure=group_pure,
    )
    X_test = Xs[test_idx]
    y_test = y[test_idx]
    p_test = bundle.probability(bundle.raw_score(X_test))
    metrics = binary_metrics(y_test, p_test)

    baselines: dict[str, dict[str, float]] = {}
    logit = fit_logistic(Xs[fit_idx], y[fit_idx], enc.categorical_indices, options.seed)
    baselines["logistic_regression"] = binary_metrics(y_test, logit.predict_proba(X_test)[:, 1])
    points_test = _points_baseline(spec, frame, y, fit_idx, test_idx, baselines)

    outcome = cutoff_outcome(y_test, p_test, threshold)
    cutoff = {
        "threshold": threshold,
        "policy": options.contract.describe(),
        "contract_version": options.contract.version,
        "review_by": options.contract.review_by.isoformat(),
        "expected_mql_share": outcome["mql_share"],
        "expected_sql_rate": outcome["sql_rate"],
        "expected_recall": outcome["recall"],
        "model_expected_sql_rate": outcome["expected_sql_rate"],
        "mql_count_test": outcome["mql_count"],
        "points_model_sql_rate_at_same_volume": (
            rate_at_volume(y_test, points_test, int(outcome["mql_count"]), options.seed)
            if points_test is not None
            else None
        ),
        "weekly_lead_volume": weekly,
        "expected_mql_per_week": (outcome["mql_share"] * weekly) if weekly else None,
        "notes": cut_notes,
    }
    uncertainty = None
    if min(n_pos, n_neg) < SMALL_DATA:
        if fitted.fold_aucs:
            uncertainty = _interval(fitted.fold_aucs)
        else:
            rounds = booster.best_iteration or booster.current_iteration()
            uncertainty = _interval(_cv_aucs(Xs, y, enc, params, rounds, options.seed))
        notes.append(
            f"small data ({n_pos} SQL / {n_neg} non-SQL): cross-validated ROC AUC {uncertainty['roc_auc_mean']:.3f} "
            f"(95% interval {uncertainty['roc_auc_low']:.3f}-{uncertainty['roc_auc_high']:.3f}); treat the figures as rough"
        )

    n_train = len(train_rows) if crossfit else len(fit_idx)
    bundle.meta["metrics"] = {
        **metrics,
        "n_train": n_train,
        "n_valid": len(valid_idx),
        "n_test": len(test_idx),
    }
    bundle.meta["baselines"] = baselines
    bundle.meta["cutoff"] = {"contract": contract_dict(options.contract), **cutoff}
    bundle.meta["leakage_suspects"] = suspects
    bundle.meta["excluded_columns"] = excluded
    bundle.meta["card"] = _card_facts(
        bundle, report, findings, y_test, p_test, points_test, X_test, dropped, split_kind, crossfit, notes
    )
    bundle.meta["version"] = _version(bundle)
    run_params = {
        **{f"lgb_{k}": v for k, v in params.items()},
        "trees": booster.num_trees(),
        "fit_method": "crossfit" if crossfit else "holdout",
        "split": split_kind,
        "capacity": capacity.name,
        **{f"capacity_auc_{k}": v for k, v in fitted.scores.items()},
        "calibration": calibrator.kind,
        "calibration_brier_isotonic": cal_scores["isotonic"],
        "calibration_brier_sigmoid": cal_scores["sigmoid"],
        "dataset": spec.name,
        "spec_digest": spec.digest(),
        "contract_version": options.contract.version,
        "n_fields": len(enc.fields),
        "seed": options.seed,
    }
    return TrainResult(
        bundle=bundle,
        metrics=metrics,
        baselines=baselines,
        cutoff=cutoff,
        leakage_findings=findings,
        leakage_suspects=suspects,
        excluded_columns=excluded,
        validation=report,
        params=run_params,
        data_hash=file_hash(path),
        n_train=n_train,
        n_valid=len(fitted.calib_rows) if not crossfit else 0,
        n_test=len(test_idx),
        test_frame=frame.iloc[test_idx].reset_index(drop=True),
        test_y=y_test,
        test_p=p_test,
        test_points=points_test,
        test_X=X_test,
        notes=notes,
        uncertainty=uncertainty,
    )


def _with_feedback(raw: pd.DataFrame, spec: DatasetSpec, store: str, notes: list[str]) -> pd.DataFrame:
    """Sales' accept/reject decisions as labels (they override what the export says)."""
    from leadscore.feedback import apply_labels, existing_store, load_store

    frame, changed = apply_labels(raw, spec, load_store(existing_store(store)))
    notes.append(f"sales feedback from {store} set the label of {changed} leads")
    return frame


def _card_facts(
    bundle: ModelBundle,
    report: ValidationReport,
    findings: list[leakage.LeakageFinding],
    y_test: np.ndarray,
    p_test: np.ndarray,
    points_test: np.ndarray | None,
    X_test: np.ndarray,
    dropped: int,
    split_kind: str,
    crossfit: bool,
    notes: list[str],
) -> dict[str, Any]:
    """What the model card shows, kept in the bundle so a card can be written from any exported model."""
    xs, model_gain = gains_curve(y_test, p_test, points=20)
    gains = {"share_contacted": xs.tolist(), "model": model_gain.tolist()}
    if points_test is not None:
        gains["points_model"] = gains_curve(y_test, points_test, points=20)[1].tolist()
    data = report.to_dict()
    return {
        "data": {
            "source": Path(data["source"]).name,
            "rows": data["rows"],
            "columns": data["columns"],
            "positives": data.get("positives"),
            "negatives": data.get("negatives"),
            "duplicates_left_out": dropped,
            "problems": data.get("problems", [])[:30],
            "split": split_kind,
            "fit_method": "crossfit" if crossfit else "holdout",
            "test_sql_rate": float(np.mean(y_test)) if len(y_test) else None,
        },
        "reliability": reliability_table(y_test, p_test),
        "gains": gains,
        "importance": field_shares(bundle, X_test),
        "leakage": leakage.report(findings)[:20],
        "trees": bundle.booster.num_trees(),
        "notes": list(notes),
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


def _points_baseline(
    spec: DatasetSpec,
    frame: pd.DataFrame,
    y: np.ndarray,
    fit_idx: np.ndarray,
    test_idx: np.ndarray,
    baselines: dict[str, dict[str, float]],
) -> np.ndarray | None:
    """The written points model on the same test rows (where its fields exist), calibrated on fit rows."""
    try:
        rules: PointsModel = load_rules(spec.rules or "b2b-default")
    except UserError:
        return None
    if not rules.available(frame.columns):
        return None
    points = rules.score(frame)["points"].to_numpy()
    from sklearn.isotonic import IsotonicRegression

    iso = IsotonicRegression(out_of_bounds="clip", y_min=0, y_max=1).fit(points[fit_idx], y[fit_idx])
    baselines["points_model"] = binary_metrics(y[test_idx], iso.predict(points[test_idx]))
    baselines["points_model"]["roc_auc"] = float(roc_auc_score(y[test_idx], points[test_idx]))
    return points[test_idx]


def _weekly_volume(frame: pd.DataFrame, spec: DatasetSpec) -> float | None:
    if not spec.time or spec.time not in frame.columns:
        return None
    from leadscore.features import parse_dates

    when = parse_dates(frame[spec.time])
    when = when[~np.isnat(when)]
    if when.size < 2:
        return None
    weeks = (when.max() - when.min()) / np.timedelta64(7, "D")
    return float(when.size / weeks) if weeks > 0 else None


def _cv_aucs(
    X: np.ndarray, y: np.ndarray, enc: FeatureEncoder, params: dict[str, Any], rounds: int, seed: int
) -> list[float]:
    aucs = []
    for fit_idx, eval_idx in StratifiedKFold(5, shuffle=True, random_state=seed).split(X, y):
        data = lgb.Dataset(
            X[fit_idx],
            y[fit_idx],
            categorical_feature=enc.categorical_indices,
            feature_name=_safe_names(enc.feature_names),
        )
        model = lgb.train(params, data, num_boost_round=max(rounds, 10))
        aucs.append(float(roc_auc_score(y[eval_idx], model.predict(X[eval_idx]))))
    return aucs


def _interval(aucs: list[float]) -> dict[str, Any]:
    """Mean fold ROC AUC with a 95% t interval (4 degrees of freedom for 5 folds)."""
    mean, sd = float(np.mean(aucs)), float(np.std(aucs, ddof=1))
    half = 2.776 * sd / np.sqrt(len(aucs))
    return {
        "folds": len(aucs),
        "roc_auc_folds": aucs,
        "roc_auc_mean": mean,
        "roc_auc_low": mean - half,
        "roc_auc_high": mean + half,
    }


def _subset(encoder: FeatureEncoder, drop: list[str]) -> FeatureEncoder:
    return FeatureEncoder(
        fields=[f for f in encoder.fields if f.name not in set(drop)],
        placeholders=encoder.placeholders,
        aliases=encoder.aliases,
        time_col=encoder.time_col,
    )


def _columns(X: np.ndarray, full: FeatureEncoder, sub: FeatureEncoder) -> np.ndarray:
    pos = {name: j for j, name in enumerate(full.feature_names)}
    return X[:, [pos[name] for name in sub.feature_names]]


def _bundle(
    spec: DatasetSpec,
    enc: FeatureEncoder,
    booster: lgb.Booster,
    options: TrainOptions,
    *,
    calibrator: dict[str, Any],
    threshold: float,
    edges: tuple[list[float], list[float]],
    group_pure: bool,
) -> ModelBundle:
    reasons = {k: {kk: vv for kk, vv in v.items() if kk != "label"} for k, v in spec.reasons.items()}
    labels = {k: v["label"] for k, v in spec.reasons.items() if "label" in v}
    meta: dict[str, Any] = {
        "format": 1,
        "name": spec.name,
        "version": "draft",
        "encoder": enc.to_dict(),
        "calibrator": {"x": [], "y": [], "a": 1.0, "b": 0.0, **calibrator},
        "threshold": threshold,
        "spec": spec.model_dump(mode="json"),
        "grade_edges": {"fit": edges[0], "engagement": edges[1]},
        "grade_bands": {"fit": list(FIT_BANDS), "engagement": list(ENGAGEMENT_BANDS)},
        "reasons": reasons,
        "labels": labels,
        "num_threads": options.num_threads,
        "group_pure": group_pure,
        "cutoff": {"contract": contract_dict(options.contract)},
    }
    text = booster.model_to_string(num_iteration=booster.best_iteration or None)
    return ModelBundle(meta, text)


def _version(bundle: ModelBundle) -> str:
    digest = hashlib.sha256(bundle.booster_text.encode())
    digest.update(repr(sorted(bundle.meta["calibrator"].items())).encode())
    digest.update(repr(bundle.threshold).encode())
    return f"{bundle.name}-{digest.hexdigest()[:10]}"
