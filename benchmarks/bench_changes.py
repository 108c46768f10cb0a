"""What ``changes`` (why a score moved since the lead's previous answer) costs per lead, against
answering the same leads with reasons, measured in the same run.

Run: .venv/bin/python benchmarks/bench_changes.py [--leads 20000] [--batch 1000]

Target (issue 33): adding ``changes`` to an answer costs under 0.2 ms per lead. The model is trained
on ``--leads`` synthetic leads (``bench_service.train_model``); each lead of the batch is compared
with itself as it was before (another lead's fields: every field may move).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from bench_service import train_model  # the same trained model as the service benchmark
from leadscore.data.synthetic import GeneratorConfig, generate
from leadscore.scoring.bundle import ModelBundle
from leadscore.scoring.changes import score_changes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--leads", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        model_path, _ = train_model(Path(tmp), args.leads)
        bundle = ModelBundle.load(model_path)
    leads = generate(GeneratorConfig(leads=args.batch * 2, seed=3))["leads"].to_pandas()
    fields = list(bundle.fields)
    rows = leads[fields].astype(object).where(leads[fields].notna(), None).to_dict("records")
    now, then = rows[: args.batch], rows[args.batch : 2 * args.batch]
    answers, changes = [], []
    for _ in range(args.runs):
        started = time.perf_counter()
        bundle.answers(now, explain=5)
        answers.append(time.perf_counter() - started)
        started = time.perf_counter()
        found = score_changes(bundle, now, then)
        changes.append(time.perf_counter() - started)
    per_answer = float(np.median(answers)) / args.batch * 1000
    per_change = float(np.median(changes)) / args.batch * 1000
    listed = sum(len(c or []) for c in found) / args.batch
    print(
        f"{args.batch:,} leads, median of {args.runs} runs: answers with reasons {per_answer:.3f} ms per lead; "
        f"changes {per_change:.3f} ms per lead ({per_change / per_answer:.2f}x the answer; target under "
        f"0.2 ms); {listed:.1f} changes listed per lead"
    )


if __name__ == "__main__":
    main()
