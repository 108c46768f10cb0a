"""How long a 12-month backtest takes (target: 200,000 leads in under 5 minutes on this machine).

Run: .venv/bin/python benchmarks/bench_backtest.py [--leads 200000] [--months 12] [--trials N]

Generates an export, then runs ``leadscore backtest`` over its last ``--months`` months whose leads
have matured, in a process of its own (MLflow in a temporary folder), and prints the wall time, the
time per month and, for reference, one ``leadscore train`` on the whole export in the same run.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

from leadscore.data.synthetic import GeneratorConfig, generate, write_dataset


def run(args: list[str], env: dict[str, str], cwd: Path) -> tuple[float, dict[str, object]]:
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "leadscore", *args, "--json"], env=env, cwd=cwd, capture_output=True, text=True
    )
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(done.stderr[-2000:])
    return seconds, json.loads(done.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--leads", type=int, default=200_000)
    parser.add_argument("--months", type=int, default=12)
    parser.add_argument(
        "--trials", default=None, help="LEADSCORE_SEARCH_TRIALS for the runs (default: by size)"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        data = tmp / "export"
        write_dataset(generate(GeneratorConfig(leads=args.leads, seed=5)), data)
        scored = pd.read_parquet(data / "leads.parquet", columns=["scored_at"])["scored_at"]
        last = (scored.max() - pd.Timedelta(days=90)).to_period("M").to_timestamp()  # the last matured month
        first = last - pd.DateOffset(months=args.months - 1)
        env = {
            **os.environ,
            "LEADSCORE_TRACKING_URI": f"sqlite:///{tmp}/mlflow.db",
            "LEADSCORE_ARTIFACT_ROOT": str(tmp / "artifacts"),
            "LEADSCORE_MODELS_DIR": str(tmp / "models"),
        }
        if args.trials is not None:
            env["LEADSCORE_SEARCH_TRIALS"] = str(args.trials)
        window = ["--from", str(first.date()), "--to", str((last + pd.offsets.MonthEnd(0)).date())]
        seconds, result = run(["backtest", str(data), "--spec", "synthetic", *window], env, tmp)
        train_seconds, _ = run(["train", str(data), "--spec", "synthetic"], env, tmp)
    months = result["months"]
    print(
        json.dumps(
            {
                "leads": args.leads,
                "months": len(months),
                "backtest_seconds": round(seconds, 1),
                "seconds_per_month": round(seconds / max(len(months), 1), 1),
                "one_train_seconds": round(train_seconds, 1),
                "backtest_over_one_train": round(seconds / train_seconds, 2),
                "target_seconds": 300,
                "roc_auc_by_month": [round(m["roc_auc"], 3) if m.get("roc_auc") else None for m in months],
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
