"""What the time-to-SQL head adds to training (target: at most +50% on 1M leads).

Run: .venv/bin/python benchmarks/bench_time_head.py [--leads 1000000]
Generates one export, then times `leadscore train` on it twice in child processes against private
MLflow stores: with the synthetic spec (the label from the status history, so the time head is
trained) and with the same spec without `label.stages` (the flat label column, no head). The two
labels agree lead for lead, so the classification model is the same; the ratio is the head's share.
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

import yaml

from leadscore.config import find_config
from leadscore.data.synthetic import GeneratorConfig, generate, write_dataset


def flat_spec(root: Path) -> Path:
    """The synthetic spec with its label read from the flat column instead of the stages."""
    source = find_config("datasets", "synthetic")
    raw = yaml.safe_load(source.read_text())
    raw["label"].pop("stages")
    raw["label"].pop("within_days", None)
    raw["rules"] = str((source.parent / raw["rules"]).resolve())
    raw["name"] = "synthetic-flat"
    path = root / "synthetic-flat.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def train(data: Path, spec: str, root: Path, name: str) -> dict[str, float]:
    env = {
        **os.environ,
        "LEADSCORE_TRACKING_URI": f"sqlite:///{root}/{name}-mlflow.db",
        "LEADSCORE_ARTIFACT_ROOT": str(root / f"{name}-artifacts"),
        "LEADSCORE_MODELS_DIR": str(root / f"{name}-models"),
    }
    cmd = [sys.executable, "-m", "leadscore", "train", str(data), "--spec", spec, "--json"]
    t = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True)
    seconds = time.perf_counter() - t
    payload = json.loads(proc.stdout)
    head = payload.get("time_head") or {}
    return {
        "seconds": round(seconds, 1),
        "roc_auc": round(payload["metrics"]["roc_auc"], 4),
        "time_head": head,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--leads", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        data = root / "leads"
        t = time.perf_counter()
        write_dataset(generate(GeneratorConfig(leads=args.leads, seed=args.seed)), data)
        generated = time.perf_counter() - t
        flat = train(data, str(flat_spec(root)), root, "flat")
        with_head = train(data, "synthetic", root, "head")
    print(
        json.dumps(
            {
                "leads": args.leads,
                "generate_seconds": round(generated, 1),
                "flat_label_no_head": flat,
                "stages_label_with_time_head": with_head,
                "head_share": round(with_head["seconds"] / flat["seconds"] - 1, 3),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
