"""``train --sample N`` against training on every row, on the same test leads.

Run: .venv/bin/python benchmarks/bench_sample.py [--leads 1000000] [--sample 200000] [--folder DIR]
    [--sql-share F]
Generates a data folder (or reads ``--folder``; ``--sql-share F`` keeps only a seeded share F of the
leads that reach SQL, with their rows: a world where SQLs are rarer), trains the lead model on every labelled lead and on
a sample (both as evaluated, ``finalize`` off, so neither has seen the test leads), then scores every
test lead of the full run with both models: ROC AUC, calibration (ECE, mean P(SQL) against the
observed SQL rate), and each model's own cutoff (MQL share, MQL->SQL rate) on those same leads,
with each run's time and the process's peak memory. The full run is the reference.
"""

from __future__ import annotations

import argparse
import json
import resource
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from sklearn.metrics import roc_auc_score

from leadscore.data.synthetic import GeneratorConfig, generate, write_dataset
from leadscore.modeling.evaluate import expected_calibration_error
from leadscore.modeling.options import TrainOptions
from leadscore.modeling.train import TrainResult, train_model
from leadscore.scoring.contract import load_contract
from leadscore.spec import load_spec


def _train(folder: Path, sample: int | None) -> tuple[TrainResult, float]:
    options = TrainOptions(contract=load_contract()[0], finalize=False, time_head=False, sample=sample)
    t = time.perf_counter()
    result = train_model(folder, load_spec("synthetic"), options)
    return result, round(time.perf_counter() - t, 1)


def _judged(result: TrainResult, p: np.ndarray, y: np.ndarray, seconds: float) -> dict[str, Any]:
    mql = p >= result.bundle.threshold
    return {
        "train_s": seconds,
        "rows_learned_from": result.n_train,
        "roc_auc": round(float(roc_auc_score(y, p)), 4),
        "ece": round(expected_calibration_error(y, p), 4),
        "mean_p": round(float(p.mean()), 4),
        "mql_share": round(float(mql.mean()), 4),
        "mql_sql_rate": round(float(y[mql].mean()), 4),
    }


def rarer_sqls(tables: dict[str, pa.Table], share: float, seed: int = 7) -> dict[str, pa.Table]:
    """The generated tables without a seeded (1 - ``share``) of the leads that reach SQL, and their rows."""
    history = tables["stage_history"]
    sql = pc.unique(history.filter(pc.equal(history["stage"], "SQL"))["lead_id"]).to_numpy(
        zero_copy_only=False
    )
    dropped = sql[np.random.default_rng(seed).random(len(sql)) >= share]
    out = dict(tables)
    for name in ("leads", "events", "stage_history", "feedback"):
        table = tables[name]
        out[name] = table.filter(pc.invert(pc.is_in(table["lead_id"], pa.array(dropped))))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--leads", type=int, default=1_000_000)
    parser.add_argument("--sample", type=int, default=200_000)
    parser.add_argument("--folder", type=Path, help="an existing data folder (default: generate one)")
    parser.add_argument("--sql-share", type=float, default=1.0, help="keep this share of the SQL leads")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.folder
        if folder is None:
            folder = Path(tmp) / "leads"
            tables = generate(GeneratorConfig(leads=args.leads, seed=1))
            write_dataset(rarer_sqls(tables, args.sql_share) if args.sql_share < 1 else tables, folder)
        full, full_s = _train(folder, None)
        sampled, sampled_s = _train(folder, args.sample)
    y = full.test_y
    p_sampled = sampled.bundle.probability(sampled.bundle.raw_score(sampled.bundle.encode(full.test_frame)))
    out = {
        "test_leads": int(len(y)),
        "observed_sql_rate": round(float(y.mean()), 4),
        "every_row": _judged(full, full.test_p, y, full_s),
        "sample": _judged(sampled, p_sampled, y, sampled_s),
        "peak_rss_gb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6, 2),
    }
    print(json.dumps(out, indent=2))
    a, b = out["every_row"], out["sample"]
    print(
        f"--sample {args.sample:,}: ROC AUC {b['roc_auc']} against {a['roc_auc']} "
        f"({b['roc_auc'] - a['roc_auc']:+.4f}), ECE {b['ece']} against {a['ece']}, MQL share "
        f"{b['mql_share']:.1%} against {a['mql_share']:.1%}, MQL->SQL {b['mql_sql_rate']:.1%} against "
        f"{a['mql_sql_rate']:.1%}, in {b['train_s'] / a['train_s']:.2f}x the time ({b['train_s']} s against "
        f"{a['train_s']} s) on the same {out['test_leads']:,} test leads"
    )


if __name__ == "__main__":
    main()
