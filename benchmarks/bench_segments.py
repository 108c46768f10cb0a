"""What routing by segment costs: one-lead p99 and 1,000-lead batch time of a segmented bundle.

Run: .venv/bin/python benchmarks/bench_segments.py [--leads 20000] [--requests 3000] [--batches 30]

Trains one routing bundle (``segments: {by: region}``) on generated leads whose APAC buyers differ
(``--segment-effect``), then scores the same leads, in this process, three ways, interleaved call by
call (the order turning, so no way always goes first) so the machine's noise falls on all alike:
  - routed: the bundle as the service uses it (each lead's segment read, its sub-model found);
  - direct: each lead handed straight to its own sub-model (the same models, no routing at all);
  - single: the global model alone (what one model for all would cost).
``routed / direct`` is the routing's own cost (the goal: within 5%); ``routed / single`` adds what
the segment models themselves cost (their trees differ from the global model's).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from leadscore.config import SHIPPED_CONFIGS
from leadscore.data.synthetic import GeneratorConfig, generate, write_dataset
from leadscore.modeling.options import TrainOptions
from leadscore.modeling.train import train_model
from leadscore.scoring.bundle import ModelBundle
from leadscore.scoring.bundle_files import TIME_BOOSTER
from leadscore.scoring.contract import load_contract
from leadscore.scoring.predictor import Predictor
from leadscore.spec import load_spec


def routed_bundle(work: Path, leads: int, seed: int) -> ModelBundle:
    data = work / "data"
    write_dataset(generate(GeneratorConfig(leads=leads, seed=seed, segment_effect=True)), data)
    spec = yaml.safe_load((SHIPPED_CONFIGS / "datasets" / "synthetic.yaml").read_text())
    spec.update(name="bench-segments", segments={"by": "region"})
    (work / "spec.yaml").write_text(yaml.safe_dump(spec))
    result = train_model(
        data, load_spec(str(work / "spec.yaml")), TrainOptions(contract=load_contract()[0], seed=seed)
    )
    folder = result.bundle.save(work / "bundle")
    return ModelBundle.load(folder)


def alone(model: Predictor, bundle: ModelBundle) -> ModelBundle:
    """One model as a bundle of its own, without routing (the global one, or a segment's), with the
    routed bundle's time head: every way then answers the same fields, and only the routing differs."""
    meta = model.meta.model_copy(update={"segments": None, "threshold": model.threshold})
    time_head = {k: v for k, v in bundle.segment_boosters.items() if k == TIME_BOOSTER}
    return ModelBundle(meta, model.booster_text, time_head)


def percentiles(ms: list[float]) -> dict[str, float]:
    a = np.asarray(ms)
    return {"p50": float(np.percentile(a, 50)), "p99": float(np.percentile(a, 99)), "mean": float(a.mean())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--leads", type=int, default=20_000)
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--batches", type=int, default=30)
    parser.add_argument("--explain", type=int, default=5)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        bundle = routed_bundle(Path(tmp), args.leads, args.seed)
        print(f"trained on {args.leads:,} leads in {time.perf_counter() - started:.0f} s")
        data = pd.read_parquet(Path(tmp) / "data" / "leads.parquet")
    routing = bundle.meta.segments
    assert routing is not None and bundle.reader is not None
    for seg in routing.models.values():
        print(f"  segment {seg.name:<14} {seg.model:<7} {seg.why}")
    single = alone(bundle, bundle)
    assert (single.time_head is None) == (bundle.time_head is None)
    fields = [c for c in data.columns if c in set(bundle.fields) | {"lead_id", "scored_at"}]
    records: list[dict[str, Any]] = (
        data[fields].astype(object).where(data[fields].notna(), None).to_dict("records")
    )
    rng = np.random.default_rng(args.seed)
    order = rng.permutation(len(records))

    direct = {key: alone(model, bundle) for key, model in bundle.routes.items()}

    def own_scorer(record: dict[str, Any]) -> ModelBundle:
        assert bundle.reader is not None
        return direct.get(bundle.reader.key(record) or "", single)

    # One lead with reasons, interleaved.
    times: dict[str, list[float]] = {"routed": [], "direct": [], "single": []}
    for i in range(args.requests):
        record = records[order[i % len(order)]]
        scorer = own_scorer(record)
        # The order turns each call: the first call on a new lead pays for bringing it into cache.
        turn = [("routed", bundle), ("direct", scorer), ("single", single)]
        for name, target in turn[i % 3 :] + turn[: i % 3]:
            t = time.perf_counter()
            target.answers([record], explain=args.explain)
            times[name].append((time.perf_counter() - t) * 1000)
    one = {k: percentiles(v[50:]) for k, v in times.items()}  # the first calls warm caches
    print(f"\none lead with {args.explain} reasons, {args.requests:,} calls each (ms):")
    for k, v in one.items():
        print(f"  {k:<7} p50 {v['p50']:.3f}  p99 {v['p99']:.3f}  mean {v['mean']:.3f}")
    print(
        f"  routed / direct: p50 {one['routed']['p50'] / one['direct']['p50']:.3f}x  "
        f"p99 {one['routed']['p99'] / one['direct']['p99']:.3f}x   "
        f"routed / single: p50 {one['routed']['p50'] / one['single']['p50']:.3f}x  "
        f"p99 {one['routed']['p99'] / one['single']['p99']:.3f}x"
    )

    # 1,000-lead batches with reasons, interleaved.
    batch_times: dict[str, list[float]] = {"routed": [], "direct": [], "single": []}
    for b in range(args.batches):
        start = (b * 1000) % max(1, len(records) - 1000)
        batch = [records[j] for j in order[start : start + 1000]]
        groups: dict[int, tuple[ModelBundle, list[dict[str, Any]]]] = {}
        for record in batch:
            scorer = own_scorer(record)
            groups.setdefault(id(scorer), (scorer, []))[1].append(record)
        names = ["routed", "direct", "single"]
        for name in names[b % 3 :] + names[: b % 3]:
            t = time.perf_counter()
            if name == "routed":
                bundle.answers(batch, explain=args.explain)
            elif name == "direct":
                for scorer, subset in groups.values():
                    scorer.answers(subset, explain=args.explain)
            else:
                single.answers(batch, explain=args.explain)
            batch_times[name].append((time.perf_counter() - t) * 1000)
    med = {k: float(np.median(v[2:])) for k, v in batch_times.items()}
    print(f"\n1,000-lead batch with {args.explain} reasons, median of {args.batches - 2} (ms):")
    for k, v in med.items():
        print(f"  {k:<7} {v:.1f}")
    print(
        f"  routed / direct {med['routed'] / med['direct']:.3f}x   routed / single {med['routed'] / med['single']:.3f}x"
    )


if __name__ == "__main__":
    main()
