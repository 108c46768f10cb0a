"""Declared engagement features at scale (target: 1M leads with ~19M events in < 5 s on 2 cores).

Run: .venv/bin/python benchmarks/bench_declared.py [--leads 1000000] [--train]
Generates a data folder (leads, an activity log, a stage history), then times what training does
with the shipped synthetic spec's declared roll-ups: reading the leads and the activity log, and the
point-in-time engine over every event (``rollups_for_spec``). The same at a tenth of the size is the
reference measured in the same run. ``--train`` also times ``leadscore train FOLDER`` end to end
(target: < 2 min at 1M leads) in a child process against a private MLflow store.
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

from leadscore.data.folders import folder_activity, leads_path
from leadscore.data.sources import read_table
from leadscore.data.synthetic import GeneratorConfig, generate, write_dataset
from leadscore.features import rollups_for_spec
from leadscore.spec import load_spec, read_columns


def features(folder: Path) -> dict[str, float]:
    spec = load_spec("synthetic")
    t0 = time.perf_counter()
    leads = read_table(leads_path(folder, spec))
    # the activity as training and scoring read it: the columns the definitions use, text as stored
    events, _ = folder_activity(folder, spec, None, leads, read_columns(spec.definitions))
    t1 = time.perf_counter()
    assert spec.id and spec.time
    anchors = leads[[spec.id, spec.time]].drop_duplicates(spec.id)
    out = rollups_for_spec(events, anchors, spec)
    t2 = time.perf_counter()
    return {
        "leads": len(anchors),
        "events": len(events),
        "features": out.shape[1],
        "read_s": round(t1 - t0, 2),
        "rollups_s": round(t2 - t1, 2),
        "total_s": round(t2 - t0, 2),
        "events_per_s": round(len(events) / (t2 - t1)),
    }


def train(folder: Path, root: Path) -> float:
    env = {
        **os.environ,
        "LEADSCORE_TRACKING_URI": f"sqlite:///{root}/mlruns/mlflow.db",
        "LEADSCORE_ARTIFACT_ROOT": str(root / "mlruns" / "artifacts"),
        "LEADSCORE_MODELS_DIR": str(root / "models"),
    }
    cmd = [sys.executable, "-m", "leadscore", "train", str(folder), "--spec", "synthetic", "--json"]
    t = time.perf_counter()
    subprocess.run(cmd, capture_output=True, text=True, env=env, check=True)
    return round(time.perf_counter() - t, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--leads", type=int, default=1_000_000)
    parser.add_argument("--train", action="store_true", help="also time `leadscore train` end to end")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        results = {}
        for n in (max(10_000, args.leads // 10), args.leads):
            folder = root / f"leads{n}"
            write_dataset(generate(GeneratorConfig(leads=n, seed=1)), folder)
            results[n] = features(folder)
            if args.train and n == args.leads:
                results[n]["train_s"] = train(folder, root)
    ref, big = results.values()
    print(json.dumps({"reference": ref, "measured": big}, indent=2))
    ratio = big["rollups_s"] / ref["rollups_s"]
    print(
        f"{big['leads']:,} leads, {big['events']:,} events: features in {big['total_s']} s "
        f"(read {big['read_s']} s, roll-ups {big['rollups_s']} s, {big['events_per_s']:,} events/s); "
        f"roll-ups {ratio:.1f}x the time of {ref['leads']:,} leads for {big['events'] / ref['events']:.1f}x the events"
        + (f"; leadscore train end to end {big['train_s']} s" if "train_s" in big else "")
    )


if __name__ == "__main__":
    main()
