"""Quality against the bar of a careful plain LightGBM, on real and synthetic data.

Run: .venv/bin/python benchmarks/quality_real.py [--seeds 1 2 3 4 5] [--synthetic-leads 60000]
     .venv/bin/python benchmarks/quality_real.py --hidden --seeds $(seq 1 20) [--sets xeducation bank] [--no-finalize]

``--hidden`` measures what a user gets: X Education split 80/20 (stratified, per seed) before
leadscore sees it; ``leadscore train`` on the 80% (its own test fifth inside), and its shipped
model scores the hidden 20%, against a plain ``LGBMClassifier`` with the same parameters given the
same 80% (the same fields, as pandas categories) and logistic regression. Per split and the
worst: the margin over the plain model; goals: at or above it on 18 of 20 splits, mean margin at
least +0.004.

Without ``--hidden``:
For each set and seed, `leadscore`'s training (the same call as `leadscore train`) is compared on
the same held-out rows with the baselines it trains beside itself: a plain
`LGBMClassifier(n_estimators=400, learning_rate=0.03, num_leaves=31, subsample=0.8,
subsample_freq=1, colsample_bytree=0.8, cat_smooth=10, min_data_per_group=50)` with the same
categories, fields and training rows, and logistic regression. Printed per run: ROC AUC, Brier,
ECE, the shipped model's distinct scores against its raw booster's and both AUCs on the same leads
(which it learned from: a check of the calibration's ranking, not of quality), the training time, and for the
synthetic set the AUC of the generator's own truth. Goals: at or above the plain LightGBM on every
set, ECE at most 0.01, synthetic within 0.005 of the truth. Beside each ECE: what perfectly
calibrated scores would measure on the same rows (10-bin ECE has a floor that grows as rows get
fewer: about 0.024 on X Education's 1,848 held-out leads).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.metrics import roc_auc_score

from leadscore.data.synthetic import GeneratorConfig, generate, write_dataset
from leadscore.modeling.evaluate import expected_calibration_error
from leadscore.modeling.options import TrainOptions
from leadscore.modeling.train import train_model
from leadscore.scoring.contract import load_contract
from leadscore.spec import load_spec

XEDUCATION = Path(__file__).resolve().parents[2] / "shared" / "data" / "xeducation" / "Leads.csv"


REFIT_SEEDS: dict[str, int] = {}  # --refit-seeds N: {"refit_seeds": N}, an A/B of the options' default


def run(name: str, data: Path, spec: str, seed: int, trials: int | None = None) -> dict[str, Any]:
    start = time.perf_counter()
    options = TrainOptions(contract=load_contract()[0], seed=seed, search_trials=trials, **REFIT_SEEDS)
    r = train_model(data, load_spec(spec), options)
    seconds = time.perf_counter() - start
    raw = r.bundle.raw_score(r.test_X)
    shipped = r.bundle.probability(raw)
    row = {
        "set": name,
        "seed": seed,
        "leadscore": r.metrics["roc_auc"],
        "plain": r.baselines["plain_lightgbm"]["roc_auc"],
        "logistic": r.baselines["logistic_regression"]["roc_auc"],
        "brier": r.metrics["brier"],
        "plain_brier": r.baselines["plain_lightgbm"]["brier"],
        "ece": r.metrics["ece"],
        # the shipped model's own scores against its raw booster's, on the same leads (since the
        # finalize step the evaluated model's test_p comes from another booster)
        "distinct": len(np.unique(shipped)),
        "distinct_raw": len(np.unique(raw)),
        "raw_auc": float(roc_auc_score(r.test_y, raw)),
        "shipped_auc": float(roc_auc_score(r.test_y, shipped)),
        "seconds": seconds,
        "shape": r.params.get("capacity", "?"),
    }
    if "true_p_sql" in r.test_frame.columns:
        row["truth"] = float(roc_auc_score(r.test_y, r.test_frame["true_p_sql"]))
    row["ece_floor"], row["ece_floor_95"] = ece_if_calibrated(r.test_p, seed)
    row["y"], row["p"] = np.asarray(r.test_y), np.asarray(r.test_p)
    return row


def hidden_sets(
    names: list[str], placeholders: list[str] | None = None
) -> dict[str, tuple[Any, Any, np.ndarray]]:
    """The exports of ``--hidden``: X Education, the generated leads table (``synthetic``, a known
    truth), and a generated bank-like export (mostly categorical, long tails, placeholders, 11%
    positive, its call duration a leak, a known truth). ``placeholders``: X Education's spec read
    with these placeholders instead of its own (an A/B of what is read as missing)."""
    import pandas as pd

    from leadscore.data.synthetic.flat import bank_like
    from leadscore.spec import spec_from_flags

    sets: dict[str, tuple[Any, Any, np.ndarray]] = {}
    if "xeducation" in names and XEDUCATION.is_file():
        spec = load_spec("xeducation")
        if placeholders is not None:
            spec = spec.model_copy(update={"placeholders": placeholders})
        frame = pd.read_csv(XEDUCATION)
        sets["xeducation"] = (
            frame,
            spec,
            (frame[spec.label.column].astype(str) == "1").to_numpy().astype(int),
        )
    if "synthetic" in names:  # the generated leads table (flat), 60,000 leads with their truth
        frame = generate(GeneratorConfig(leads=60_000, seed=11))["leads"].to_pandas()
        spec = load_spec("synthetic")
        sets["synthetic"] = (frame, spec, frame[spec.label.column].to_numpy().astype(int))
    if "bank" in names:
        frame = bank_like(41_188, 7)
        spec = spec_from_flags("bank", "y", ["yes"], "contact_id", None, ["true_p_sql"])
        sets["bank"] = (frame, spec, (frame["y"] == "yes").to_numpy().astype(int))
    return sets


def hidden(
    frame: Any, spec: Any, y: np.ndarray, seed: int, finalize: bool, trials: int | None
) -> dict[str, float]:
    """One hidden 80/20 split: the shipped model against the plain one on the 20% it never saw."""
    import lightgbm as lgb
    import pandas as pd
    from sklearn.model_selection import train_test_split

    from leadscore.modeling.baselines import PLAIN_LIGHTGBM, fit_logistic

    inner, held = train_test_split(np.arange(len(frame)), test_size=0.2, stratify=y, random_state=seed)
    with tempfile.TemporaryDirectory() as tmp:
        given = Path(tmp) / "leads.csv"
        frame.iloc[inner].to_csv(given, index=False)
        start = time.perf_counter()
        options = TrainOptions(
            contract=load_contract()[0], seed=seed, search_trials=trials, finalize=finalize, **REFIT_SEEDS
        )
        r = train_model(given, spec, options)
        seconds = time.perf_counter() - start
    bundle = r.bundle
    X_in, X_out = bundle.encoder.transform(frame.iloc[inner]), bundle.encoder.transform(frame.iloc[held])
    p = bundle.probability(bundle.raw_score(X_out))
    fields = bundle.fields
    table = frame[fields].copy()
    for col in fields:  # what a data scientist does first: text as pandas categories, numbers as numbers
        if not pd.api.types.is_numeric_dtype(table[col]):
            table[col] = table[col].astype("category")
    plain = lgb.LGBMClassifier(**PLAIN_LIGHTGBM, random_state=seed, n_jobs=2)
    plain.fit(table.iloc[inner], y[inner])
    p_plain = np.asarray(plain.predict_proba(table.iloc[held]))[:, 1]
    cols, categorical = bundle.encoder.without_shares()
    logit = fit_logistic(X_in[:, cols], y[inner], categorical, seed)
    row = {
        "seed": seed,
        "leadscore": float(roc_auc_score(y[held], p)),
        "plain": float(roc_auc_score(y[held], p_plain)),
        "logistic": float(roc_auc_score(y[held], logit.predict_proba(X_out[:, cols])[:, 1])),
        "ece": expected_calibration_error(y[held], p),
        "rows_learned": float((bundle.meta.learned_from or {}).get("rows", 0)),
        "seconds": seconds,
        "shape": r.params.get("capacity", "?"),
    }
    if "true_p_sql" in frame.columns:
        row["truth"] = float(roc_auc_score(y[held], frame["true_p_sql"].to_numpy()[held]))
    return row


def report_hidden(name: str, rows: list[dict[str, Any]]) -> None:
    print(f"{name}\nseed  leadscore  plain   margin   logistic  ECE     learned  seconds  truth   shape")
    for r in rows:
        truth = f"{r['truth']:.4f}" if "truth" in r else "-"
        print(
            f"{r['seed']:>4}  {r['leadscore']:.4f}     {r['plain']:.4f}  {r['leadscore'] - r['plain']:+.4f}  "
            f"{r['logistic']:.4f}    {r['ece']:.4f}  {r['rows_learned']:>7.0f}  {r['seconds']:>5.1f}    {truth}  {r['shape']}"
        )
    margins = np.array([r["leadscore"] - r["plain"] for r in rows])
    print(
        f"over {len(rows)} hidden splits: leadscore {np.mean([r['leadscore'] for r in rows]):.4f}, plain "
        f"{np.mean([r['plain'] for r in rows]):.4f}, logistic {np.mean([r['logistic'] for r in rows]):.4f}; "
        f"margin mean {margins.mean():+.5f}, worst {margins.min():+.5f}; at or above plain on "
        f"{int((margins >= 0).sum())} of {len(rows)}; training {np.mean([r['seconds'] for r in rows]):.1f} s"
    )


def pool(max_categories: int, min_count: int) -> None:
    """Encoders fitted in this process keep at most ``max_categories`` categories of at least
    ``min_count`` leads each (the A/B of the default pooling against every category kept)."""
    from leadscore.features import FeatureEncoder

    fit = FeatureEncoder.fit.__func__  # type: ignore[attr-defined]

    def pooled(cls: type, *args: Any, **kw: Any) -> Any:
        return fit(cls, *args, **{**kw, "max_categories": max_categories, "min_count": min_count})

    FeatureEncoder.fit = classmethod(pooled)  # type: ignore[method-assign,assignment]


def ece_if_calibrated(p: np.ndarray, seed: int, draws: int = 400) -> tuple[float, float]:
    """The ECE that perfectly calibrated scores would measure on these rows (outcomes drawn from the
    scores themselves): its mean and 95th percentile. An ECE within that range cannot be told from
    perfect calibration at this number of rows; the 0.01 goal needs rows enough for a floor below it."""
    rng = np.random.default_rng(seed)
    p = np.asarray(p, dtype=float)
    sims = [expected_calibration_error(rng.binomial(1, p), p) for _ in range(draws)]
    return float(np.mean(sims)), float(np.percentile(sims, 95))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3, 4, 5])
    parser.add_argument("--synthetic-leads", type=int, default=60_000)
    parser.add_argument(
        "--search-trials",
        type=int,
        default=None,
        help="capacity search trials (default: its row budget; 0: off)",
    )
    parser.add_argument("--hidden", action="store_true", help="X Education split before leadscore sees it")
    parser.add_argument("--no-finalize", action="store_true", help="ship the evaluated model (the old way)")
    parser.add_argument(
        "--sets", nargs="+", default=["xeducation"], help="--hidden: xeducation, synthetic and/or bank"
    )
    parser.add_argument(
        "--categories",
        default=None,
        help="the encoder's category pooling as MAX,MIN_COUNT (an A/B of the default 40 and 0.2%% of rows)",
    )
    parser.add_argument("--final-rounds", type=float, default=None, help="A/B of boosters.FINAL_ROUNDS")
    parser.add_argument(
        "--refit-seeds",
        type=int,
        default=None,
        help="A/B of a cross-fitted booster's averaged seeds (default 3)",
    )
    parser.add_argument(
        "--placeholders",
        default=None,
        help="--hidden: X Education's placeholders as a comma-separated list, e.g. 'N/A,NA,' keeps "
        "'Select' as a category (an A/B of the spec's own)",
    )
    args = parser.parse_args()
    if args.final_rounds:
        from leadscore.modeling import boosters

        boosters.FINAL_ROUNDS = args.final_rounds
    if args.refit_seeds:
        REFIT_SEEDS["refit_seeds"] = args.refit_seeds
    if args.categories:
        pool(*(int(v) for v in args.categories.split(",")))
    if args.hidden:
        placeholders = None if args.placeholders is None else args.placeholders.split(",")
        for name, (frame, spec, y) in hidden_sets(args.sets, placeholders).items():
            rows_ = [
                hidden(frame, spec, y, seed, not args.no_finalize, args.search_trials) for seed in args.seeds
            ]
            report_hidden(name, rows_)
        return
    rows = []
    for seed in args.seeds:
        if XEDUCATION.is_file():
            rows.append(run("xeducation", XEDUCATION, "xeducation", seed, args.search_trials))
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "synthetic"
        write_dataset(generate(GeneratorConfig(leads=args.synthetic_leads, seed=11)), folder)
        rows.append(run("synthetic", folder, "synthetic", args.seeds[0], args.search_trials))
    header = "set          seed  leadscore  plain   logistic  Brier   (plain)  ECE (if calibrated: mean, 95%)  distinct/raw   raw AUC  (calib.)  truth   seconds  shape"
    print(header)
    for r in rows:
        truth = f"{r['truth']:.4f}" if "truth" in r else "  -   "
        print(
            f"{r['set']:<12} {r['seed']:>4}  {r['leadscore']:.4f}    {r['plain']:.4f}  {r['logistic']:.4f}    "
            f"{r['brier']:.4f}  ({r['plain_brier']:.4f}) {r['ece']:.4f} ({r['ece_floor']:.4f}, {r['ece_floor_95']:.4f})      "
            f"{r['distinct']:>6}/{r['distinct_raw']:<6}  "
            f"{r['raw_auc']:.4f}   ({r['shipped_auc']:.4f})  {truth}  {r['seconds']:.1f}  {r['shape']}"
        )
    xe = [r for r in rows if r["set"] == "xeducation"]
    if xe:
        print(
            f"xeducation mean over {len(xe)} seeds: leadscore {np.mean([r['leadscore'] for r in xe]):.4f}, "
            f"plain LightGBM {np.mean([r['plain'] for r in xe]):.4f}, "
            f"logistic {np.mean([r['logistic'] for r in xe]):.4f}; "
            f"leadscore >= plain on {sum(r['leadscore'] >= r['plain'] for r in xe)} of {len(xe)}"
        )
        # every seed's held-out rows together (a lead can be in several): more rows, a lower floor
        y, p = np.concatenate([r["y"] for r in xe]), np.concatenate([r["p"] for r in xe])
        floor, floor95 = ece_if_calibrated(p, 0)
        print(
            f"xeducation held-out rows of all seeds together ({len(y):,}): ECE {expected_calibration_error(y, p):.4f}; "
            f"perfectly calibrated scores would measure {floor:.4f} (95%: {floor95:.4f})"
        )


if __name__ == "__main__":
    main()
