"""Out-of-core scoring: 10M leads and ~190M events scored on one machine, bucket by bucket.

Run: .venv/bin/python benchmarks/bench_buckets.py [--leads 10000000] [--buckets 20] [--work DIR]
Generates a data folder of ``--leads`` leads in chunks of 1M (one Parquet file per table, written
chunk by chunk: the generator never holds more than one chunk), trains a model on a separate
200,000-lead folder, then, each in its own process with its peak memory sampled from /proc:

- the reference: ``leadscore score`` of the first million leads read whole (no buckets);
- the measured run: ``leadscore score FOLDER --buckets N`` of every lead;
- with ``--features``: ``leadscore features FOLDER --buckets N`` (the training table of every lead);
- with ``--train-sample N``: ``leadscore train FOLDER --sample N`` of the whole export (about 3N
  leads drawn while streaming, then the sample), against a private MLflow store.

Target: every lead featured and scored in under 8 GB (the whole-folder path needs about 3 GB per
million leads). Printed: both runs' time, leads per second and peak memory, and the ratio of the
measured run's time per lead to the reference's.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _memory import rss_kb, run_sampled  # noqa: E402
from _private import private_env  # noqa: E402
from leadscore.data.synthetic import GeneratorConfig, generate, write_dataset
from leadscore.modeling.options import TrainOptions
from leadscore.modeling.train import train_model
from leadscore.scoring.contract import load_contract
from leadscore.spec import load_spec

TABLES = ("leads", "events", "stage_history")
CHUNK = 1_000_000


def generate_folder(folder: Path, leads: int, seed: int, first: Path) -> dict[str, int]:
    """``leads`` leads in chunks, appended to one Parquet file per table (ids offset past the
    previous chunk's); the first chunk is also written alone to ``first`` (the reference)."""
    counts = dict.fromkeys(TABLES, 0)
    writers: dict[str, pq.ParquetWriter] = {}
    offset = 0
    folder.mkdir(parents=True, exist_ok=True)
    try:
        for i, start in enumerate(range(0, leads, CHUNK)):
            tables = generate(GeneratorConfig(leads=min(CHUNK, leads - start), seed=seed + i, fault_rate=0.0))
            if i == 0:
                write_dataset(tables, first)
            top = int(pc.max(tables["leads"].column("lead_id")).as_py() or 0)
            for name in TABLES:
                table = _offset(tables[name], offset)
                if name not in writers:
                    writers[name] = pq.ParquetWriter(folder / f"{name}.parquet", table.schema)
                writers[name].write_table(table.cast(writers[name].schema))
                counts[name] += table.num_rows
            offset += top
            print(
                f"  chunk {i}: {counts['leads']:,} leads, {counts['events']:,} events",
                file=sys.stderr,
                flush=True,
            )
    finally:
        for writer in writers.values():
            writer.close()
    return counts


def _offset(table: pa.Table, offset: int) -> pa.Table:
    ids = table.column("lead_id")
    at = table.schema.get_field_index("lead_id")
    return table.set_column(at, "lead_id", pc.add(ids, pa.scalar(offset, ids.type)))


def run(cmd: list[str], env: dict[str, str] | None = None) -> dict[str, float]:
    """Run one command, timing it and sampling its peak resident memory."""
    out, seconds, peaks = run_sampled(cmd, env, lambda pid: {"kb": rss_kb(pid)}, 0.2)
    payload = json.loads(out)
    rows = payload["rows"] if "rows" in payload else payload["learned_from"]["rows"]
    return {
        "rows": rows,
        "seconds": round(seconds, 1),
        "leads_per_s": round(rows / seconds),
        "peak_gb": round(peaks.get("kb", 0) / 1e6, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--leads", type=int, default=10_000_000)
    parser.add_argument("--buckets", type=int, default=20)
    parser.add_argument(
        "--work", type=Path, help="keep the generated data here (default: a temporary folder)"
    )
    parser.add_argument("--train-sample", type=int, help="also train on the whole export with --sample N")
    parser.add_argument("--features", action="store_true", help="also build the training table by buckets")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.work) as tmp:
        root = Path(tmp)
        t = time.perf_counter()
        counts = generate_folder(root / "all", args.leads, 1, root / "first")
        print(f"generated {counts} in {time.perf_counter() - t:.0f} s", file=sys.stderr, flush=True)
        write_dataset(generate(GeneratorConfig(leads=200_000, seed=99)), root / "train")
        options = TrainOptions(contract=load_contract()[0], time_head=False)
        model = train_model(root / "train", load_spec("synthetic"), options).bundle.save(root / "model")
        leadscore = [sys.executable, "-m", "leadscore", "score"]
        common = ["--model", str(model), "--json"]
        reference = run([*leadscore, str(root / "first"), "--out", str(root / "first.parquet"), *common])
        measured = run(
            [
                *leadscore,
                str(root / "all"),
                "--out",
                str(root / "all.parquet"),
                "--buckets",
                str(args.buckets),
                *common,
            ]
        )
        table = None
        if args.features:
            features = [
                sys.executable,
                "-m",
                "leadscore",
                "features",
                str(root / "all"),
                "--spec",
                "synthetic",
            ]
            out = ["--out", str(root / "table.parquet"), "--buckets", str(args.buckets), "--json"]
            table = run([*features, *out])
        trained = None
        if args.train_sample:
            train = [sys.executable, "-m", "leadscore", "train", str(root / "all"), "--spec", "synthetic"]
            cmd = [*train, "--sample", str(args.train_sample), "--json"]
            trained = run(cmd, private_env(root / "mlflow", LEADSCORE_SEARCH_TRIALS="0"))
        disk_gb = sum(os.path.getsize(root / "all" / f"{name}.parquet") for name in TABLES) / 1e9
    out = {
        "events": counts["events"],
        "export_gb_on_disk": round(disk_gb, 2),
        "reference": reference,
        "measured": measured,
        "train_sample": trained,
        "features": table,
    }
    print(json.dumps(out, indent=2))
    per_lead = (measured["seconds"] / measured["rows"]) / (reference["seconds"] / reference["rows"])
    print(
        f"{measured['rows']:,} leads and {counts['events']:,} events scored in {measured['seconds']} s with "
        f"--buckets {args.buckets}, peak {measured['peak_gb']} GB (target under 8 GB); {reference['rows']:,} "
        f"leads read whole: {reference['seconds']} s, peak {reference['peak_gb']} GB; time per lead "
        f"{per_lead:.2f}x the whole-folder path's"
    )

    if table is not None:
        print(
            f"leadscore features of the whole export --buckets {args.buckets}: {table['rows']:,} leads in "
            f"{table['seconds']} s, peak {table['peak_gb']} GB"
        )
    if trained is not None:
        print(
            f"leadscore train of the whole export --sample {args.train_sample:,}: {trained['seconds']} s, "
            f"peak {trained['peak_gb']} GB, the shipped model learned from {trained['rows']:,} leads"
        )


if __name__ == "__main__":
    main()
