"""Time and peak memory of generating synthetic leads with their events (target: 1M in < 60 s, < 4 GiB).

Run: .venv/bin/python benchmarks/bench_generate.py [--leads 1000000]
Prints the figures and the ratio to a reference measured in the same run (10% of the size),
so a slow, shared machine shows up as a slow reference too.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile

CHILD = """
import sys, time, resource
from leadscore.data.synthetic import GeneratorConfig, generate, write_dataset
n, out = int(sys.argv[1]), sys.argv[2]
t = time.perf_counter()
tables = generate(GeneratorConfig(leads=n, seed=1))
write_dataset(tables, out)
elapsed = time.perf_counter() - t
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(f"{elapsed:.3f} {peak:.1f} {tables['events'].num_rows}")
"""


def run(n: int) -> tuple[float, float, int]:
    with tempfile.TemporaryDirectory() as out:
        proc = subprocess.run(
            [sys.executable, "-c", CHILD, str(n), out], capture_output=True, text=True, check=True
        )
    seconds, peak_mib, events = proc.stdout.split()
    return float(seconds), float(peak_mib), int(events)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--leads", type=int, default=1_000_000)
    args = parser.parse_args()
    ref_n = max(1000, args.leads // 10)
    ref_s, ref_mem, _ = run(ref_n)
    s, mem, events = run(args.leads)
    result = {
        "leads": args.leads,
        "events": events,
        "seconds": round(s, 2),
        "peak_mib": round(mem, 0),
        "leads_per_second": round(args.leads / s),
        "reference_leads": ref_n,
        "reference_seconds": round(ref_s, 2),
        "scaling_ratio": round((s / args.leads) / (ref_s / ref_n), 2),
        "target_seconds": 60,
        "target_peak_mib": 4096,
        "meets_targets": s < 60 and mem < 4096,
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
