"""End-to-end training time and peak memory on synthetic leads (target: 1M in < 5 min on 2 cores).

Run: .venv/bin/python benchmarks/bench_train.py [--leads 1000000]
Times `leadscore train` (features from raw events, model, calibration, baselines, MLflow logging,
registration and export) in a child process against a private MLflow store, and the same at a
tenth of the size as a reference measured in the same run.
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

from leadscore.data.synthetic import GeneratorConfig, generate, write_dataset


def run(n: int, root: Path) -> dict[str, float]:
    data = root / f"leads{n}"
    write_dataset(generate(GeneratorConfig(leads=n, seed=1)), data)
    env = {
        **os.environ,
        "LEADSCORE_TRACKING_URI": f"sqlite:///{root}/mlruns{n}/mlflow.db",
        "LEADSCORE_ARTIFACT_ROOT": str(root / f"mlruns{n}" / "artifacts"),
        "LEADSCORE_MODELS_DIR": str(root / f"models{n}"),
    }
    cmd = [
        sys.executable,
        "-c",
        "import resource, sys, runpy; sys.argv=['leadscore','train',sys.argv[1],'--spec','synthetic','--json'];"
        "\ntry:\n  runpy.run_module('leadscore', run_name='__main__')\nexcept SystemExit: pass\n"
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)",
        str(data),
    ]
    t = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True)
    seconds = time.perf_counter() - t
    peak_mib = int(proc.stderr.strip().splitlines()[-1]) / 1024
    payload = json.loads(proc.stdout)
    return {
        "seconds": round(seconds, 1),
        "peak_mib": round(peak_mib),
        "roc_auc": round(payload["metrics"]["roc_auc"], 4),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--leads", type=int, default=1_000_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        ref_n = max(10_000, args.leads // 10)
        ref = run(ref_n, Path(tmp))
        big = run(args.leads, Path(tmp))
    print(
        json.dumps(
            {
                "leads": args.leads,
                **big,
                "reference_leads": ref_n,
                "reference_seconds": ref["seconds"],
                "scaling_ratio": round((big["seconds"] / args.leads) / (ref["seconds"] / ref_n), 2),
                "target_seconds": 300,
                "meets_target": big["seconds"] < 300,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
