"""Model quality on an independently generated synthetic test set (issue: training pipeline).

Run: .venv/bin/python benchmarks/quality_synthetic.py [--train 200000] [--test 100000]
Trains on one seed, scores a test set drawn with another seed, and prints the model's ROC AUC
next to the AUC of the generator's own true_p_sql (the best any model can do), ECE (15 bins),
and at the default cutoff contract the MQL->SQL rate against the points model at the same volume.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from sklearn.metrics import roc_auc_score

from leadscore.data.synthetic import GeneratorConfig, generate, write_dataset
from leadscore.modeling.dataset import deduplicate
from leadscore.modeling.evaluate import cutoff_outcome, expected_calibration_error, rate_at_volume
from leadscore.modeling.options import TrainOptions
from leadscore.modeling.train import train_model
from leadscore.scoring.bundle import ModelBundle
from leadscore.scoring.contract import load_contract
from leadscore.scoring.points import load_rules
from leadscore.spec import load_spec


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--train", type=int, default=200_000)
    parser.add_argument("--test", type=int, default=100_000)
    parser.add_argument("--capacity", default=None, help="force a model shape (e.g. group-pure-d3)")
    args = parser.parse_args()
    spec = load_spec("synthetic")
    with tempfile.TemporaryDirectory() as tmp:
        train_dir = Path(tmp) / "train"
        write_dataset(generate(GeneratorConfig(leads=args.train, seed=1)), train_dir)
        from leadscore.modeling.options import CAPACITIES

        caps = tuple(c for c in CAPACITIES if c.name == args.capacity) if args.capacity else CAPACITIES
        t = time.perf_counter()
        result = train_model(train_dir, spec, TrainOptions(contract=load_contract()[0], capacities=caps))
        seconds = time.perf_counter() - t
        bundle = ModelBundle.load(result.bundle.save(Path(tmp) / "bundle"))
    test = generate(GeneratorConfig(leads=args.test, seed=2, observed_until="uncut"))["leads"].to_pandas()
    test, _ = deduplicate(test, spec)
    y = test["sql_within_90d"].to_numpy()
    p = bundle.score_frame(test).p_sql
    points = load_rules("b2b-default").score(test)["points"].to_numpy()
    out = cutoff_outcome(y, p, bundle.threshold)
    report = {
        "train_leads": args.train,
        "test_leads": len(test),
        "model_shape": result.params["capacity"],
        "train_seconds": round(seconds, 1),
        "roc_auc": round(float(roc_auc_score(y, p)), 4),
        "roc_auc_true_p_sql": round(float(roc_auc_score(y, test["true_p_sql"])), 4),
        "roc_auc_points_model": round(float(roc_auc_score(y, points)), 4),
        "ece": round(expected_calibration_error(y, p), 4),
        "threshold": round(bundle.threshold, 4),
        "mql_share": round(out["mql_share"], 4),
        "mql_sql_rate": round(out["sql_rate"], 4),
        "mql_recall": round(out["recall"], 4),
        "points_model_sql_rate_at_same_volume": round(rate_at_volume(y, points, out["mql_count"]), 4),
    }
    report["auc_gap_to_truth"] = round(report["roc_auc_true_p_sql"] - report["roc_auc"], 4)
    report["meets_targets"] = bool(
        report["auc_gap_to_truth"] <= 0.01
        and report["ece"] <= 0.01
        and report["mql_sql_rate"] >= 0.30
        and report["mql_sql_rate"] > report["points_model_sql_rate_at_same_volume"]
    )
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
