"""A/B of a 1,000-lead batch with reasons: this checkout's service against an earlier revision's.

Run: .venv/bin/python benchmarks/bench_batch_ab.py --against 72bd01e [--leads 200000] [--batches 60] [--rounds 2]
     [--pause 0.25]
On a shared machine absolute latencies swing with other tenants' load, so old and new run in
alternation, each against a real server (`leadscore serve`, the same model, the same batch body),
with the score log off and on (SQLite). The earlier revision is checked out in a temporary git
worktree and served from its own sources (PYTHONPATH). Printed per run: server-side p50/p95/p99
from the service's own log; then, per setting, new/old ratios of the medians over the rounds.
The target (issue 13, item 7): p99 under 100 ms. By default the batches come back to back (the
next is sent as soon as the last is answered: the score log's write of one batch runs beside the
scoring of the next); ``--pause S`` waits S seconds between them, as a CRM's sync would.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _revision import checkout  # noqa: E402
from bench_service import batches_on_a_server, train_model  # noqa: E402
from leadscore.data.synthetic import GeneratorConfig, generate  # noqa: E402
from leadscore.scoring.bundle import ModelBundle  # noqa: E402


def serve_batches(
    model: Path,
    env: dict[str, str],
    body: bytes,
    batches: int,
    log_scores: bool,
    tmp: Path,
    pause: float = 0.0,
) -> np.ndarray:
    """Server-side milliseconds of ``batches`` sequential batches on a server of its own."""
    run = time.monotonic_ns()
    run_env = {
        **env,
        "LEADSCORE_LOG_SCORES": "true" if log_scores else "false",
        "LEADSCORE_DATABASE_URL": f"sqlite:///{tmp}/scores-{run}.db",
    }
    return batches_on_a_server(model, run_env, tmp / f"server-{run}.log", body, batches, pause)[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--against", required=True, help="the earlier revision (a commit, tag or branch)")
    parser.add_argument("--leads", type=int, default=200_000, help="training leads of the served model")
    parser.add_argument("--batches", type=int, default=60)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument(
        "--pause", type=float, default=0.0, help="seconds between an answer and the next batch"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp_dir, checkout(args.against, Path(tmp_dir) / "old") as worktree:
        tmp = Path(tmp_dir)
        model, env = train_model(tmp, args.leads)
        bundle = ModelBundle.load(model)
        test = generate(GeneratorConfig(leads=2_000, seed=2, fault_rate=0.0))["leads"].to_pandas()
        wanted = (*bundle.fields, "lead_id", "scored_at")
        leads = json.loads(test.head(1000).to_json(orient="records", date_format="iso"))
        body = json.dumps({"leads": [{k: r.get(k) for k in wanted if k in r} for r in leads]}).encode()
        envs = {
            "old": {**env, "PYTHONPATH": str(worktree / "src")},
            "new": {k: v for k, v in env.items() if k != "PYTHONPATH"},
        }
        medians: dict[tuple[bool, str], list[tuple[float, float]]] = {}
        print(
            f"model: {bundle.booster.num_trees()} trees; old = {args.against}, new = this checkout; "
            f"{args.pause:g} s between batches"
        )
        for _ in range(args.rounds):
            for log_scores in (False, True):
                for version in ("old", "new"):
                    ms = serve_batches(model, envs[version], body, args.batches, log_scores, tmp, args.pause)
                    p50, p95, p99 = (float(np.percentile(ms, q)) for q in (50, 95, 99))
                    medians.setdefault((log_scores, version), []).append((p50, p99))
                    print(
                        f"score log {'on ' if log_scores else 'off'}  {version}: "
                        f"p50 {p50:6.1f}  p95 {p95:6.1f}  p99 {p99:6.1f}  max {ms.max():6.1f} ms"
                    )
        for log_scores in (False, True):
            old = np.median(medians[(log_scores, "old")], axis=0)
            new = np.median(medians[(log_scores, "new")], axis=0)
            print(
                f"score log {'on ' if log_scores else 'off'}: new/old p50 {new[0] / old[0]:.2f}, "
                f"p99 {new[1] / old[1]:.2f} (new p99 {new[1]:.1f} ms; target under 100)"
            )


if __name__ == "__main__":
    main()
