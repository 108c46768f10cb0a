"""The Spark path at scale: declared features and scores of ~10M generated leads with --engine spark on
local[2], against the single-machine path on the same rows in the same run.

Run: .venv/bin/python benchmarks/bench_spark.py [--leads 10000000] [--chunk 1000000] [--work DIR]
Generates the data folder in chunks (the generator never holds more than one chunk: each chunk is a
seeded draw whose lead ids are offset past the previous ones) as Spark-style table folders
(``leads/``, ``events/``, ``stage_history/`` of Parquet parts). Then, each in its own process and
timed with its peak memory (the Python driver and the JVM sampled separately from /proc):

- the single-machine path (``leadscore features`` and ``leadscore score``, pandas) on the first chunk;
- the Spark path on that same first chunk (same rows: the ratio against the single machine);
- the Spark path on every chunk (the driver's memory must stay flat as rows grow);
- the floor under any Python engine inside Spark (``--floor``): the first chunk's events, with the
  columns the synthetic spec's features read, handed to Python workers and back empty
  (``mapInArrow``), in a warm session, against a count of the same rows in the JVM.

A model is trained first (pandas, on the first chunk's training table) and scores every run.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _memory import rss_kb, run_sampled  # noqa: E402
from leadscore.data.synthetic import GeneratorConfig, generate
from leadscore.spec import read_columns

TABLES = ("leads", "events", "stage_history")


def generate_chunks(folder: Path, leads: int, chunk: int, seed: int) -> dict[str, int]:
    """``leads`` leads in chunks of ``chunk``, written as one Parquet part per chunk and table."""
    counts = dict.fromkeys(TABLES, 0)
    offset = 0
    for i, start in enumerate(range(0, leads, chunk)):
        n = min(chunk, leads - start)
        tables = generate(GeneratorConfig(leads=n, seed=seed + i, fault_rate=0.0))
        top = 0
        for name in TABLES:
            table = tables[name]
            ids = table.column("lead_id")
            top = max(top, int(pc.max(ids).as_py() or 0)) if name == "leads" else top
            table = table.set_column(
                table.schema.get_field_index("lead_id"), "lead_id", pc.add(ids, pa.scalar(offset, ids.type))
            )
            (folder / name).mkdir(parents=True, exist_ok=True)
            pq.write_table(table, folder / name / f"part-{i:05d}.parquet")
            counts[name] += table.num_rows
        offset += top
        print(f"  chunk {i}: {n:,} leads, {counts['events']:,} events so far", file=sys.stderr, flush=True)
    return counts


def first_chunk_folder(folder: Path, out: Path) -> Path:
    """The first chunk as the single-machine path reads a folder (one file per table)."""
    out.mkdir(parents=True, exist_ok=True)
    for name in TABLES:
        shutil.copy(folder / name / "part-00000.parquet", out / f"{name}.parquet")
    return out


def _children(pid: int) -> list[int]:
    out = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            out += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
    return out


def run(cmd: list[str], env: dict[str, str]) -> dict[str, object]:
    """Run one command, timing it and sampling peak RSS: the command's own process (the Python
    driver), the JVM it starts, and the Python workers."""
    out, seconds, peaks = run_sampled(cmd, env, _spark_memory, 0.5)
    summary = json.loads(out.strip().splitlines()[-1])
    peaks = {"driver_mb": 0, "jvm_mb": 0, "workers_mb": 0, **peaks}  # a run too short to sample: 0
    return {"seconds": round(seconds, 1), **peaks, "rows": summary.get("rows")}


def _spark_memory(pid: int) -> dict[str, int]:
    """MB now: the command's own process (the Python driver), the JVM it starts, the Python workers."""
    jvm = workers = 0
    for child in _children(pid):
        try:
            name = Path(f"/proc/{child}/comm").read_text().strip()
        except OSError:
            continue
        if name == "java":
            jvm += rss_kb(child)
            workers += sum(rss_kb(w) for w in _descendants(child))
    return {"driver_mb": rss_kb(pid) // 1024, "jvm_mb": jvm // 1024, "workers_mb": workers // 1024}


def _descendants(pid: int) -> list[int]:
    found, todo = [], [pid]
    while todo:
        kids = _children(todo.pop())
        found += kids
        todo += kids
    return found


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--leads", type=int, default=10_000_000)
    ap.add_argument("--chunk", type=int, default=1_000_000)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--master", default="local[2]")
    ap.add_argument(
        "--work", type=Path, default=None, help="Keep the data here (default: a temporary folder)."
    )
    ap.add_argument("--keep", action="store_true", help="Reuse data already generated in --work.")
    ap.add_argument("--floor", action="store_true", help="Also measure handing the events to Python.")
    args = ap.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="bench_spark_"))
    data = work / "data"
    env = {
        **os.environ,
        "LEADSCORE_TRACKING_URI": f"sqlite:///{work}/mlruns/mlflow.db",
        "LEADSCORE_ARTIFACT_ROOT": str(work / "mlruns" / "artifacts"),
        "LEADSCORE_MODELS_DIR": str(work / "models"),
        "LEADSCORE_SEARCH_TRIALS": "0",
    }
    cli = [sys.executable, "-m", "leadscore"]
    t = time.perf_counter()
    if not (args.keep and (data / "leads").is_dir()):
        shutil.rmtree(data, ignore_errors=True)
        counts = generate_chunks(data, args.leads, args.chunk, args.seed)
    else:
        counts = {name: pq.ParquetDataset(data / name).read(columns=["lead_id"]).num_rows for name in TABLES}
    generated = round(time.perf_counter() - t, 1)
    first = first_chunk_folder(data, work / "first")
    first_leads = pq.ParquetFile(first / "leads.parquet").metadata.num_rows
    spark = ["--engine", "spark", "--master", args.master, "--json"]
    out = work / "out"
    shutil.rmtree(out, ignore_errors=True)
    results: dict[str, dict[str, object]] = {}
    results["pandas_features"] = run(
        [
            *cli,
            "features",
            str(first),
            "--spec",
            "synthetic",
            "--out",
            str(out / "p_features.parquet"),
            "--json",
        ],
        env,
    )
    subprocess.run(
        [*cli, "train", str(out / "p_features.parquet"), "--spec", "synthetic", "--json"],
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    model = str(work / "models" / "synthetic")
    results["pandas_score"] = run(
        [*cli, "score", str(first), "--model", model, "--out", str(out / "p_scores.parquet"), "--json"], env
    )
    results["spark_features_first"] = run(
        [*cli, "features", str(first), "--spec", "synthetic", "--out", str(out / "s_features_first"), *spark],
        env,
    )
    results["spark_score_first"] = run(
        [*cli, "score", str(first), "--model", model, "--out", str(out / "s_scores_first"), *spark], env
    )
    results["spark_features_all"] = run(
        [*cli, "features", str(data), "--spec", "synthetic", "--out", str(out / "s_features_all"), *spark],
        env,
    )
    results["spark_score_all"] = run(
        [*cli, "score", str(data), "--model", model, "--out", str(out / "s_scores_all"), *spark], env
    )
    for r in results.values():
        r["rows_per_s"] = round(int(r["rows"] or 0) / float(r["seconds"]))  # type: ignore[arg-type]
    report = {
        "leads": counts["leads"],
        "events": counts["events"],
        "stage_rows": counts["stage_history"],
        "first_chunk_leads": first_leads,
        "generate_s": generated,
        "master": args.master,
        "runs": results,
        "ratios": {
            "spark_vs_pandas_features_same_rows": round(
                float(results["spark_features_first"]["seconds"])
                / float(results["pandas_features"]["seconds"]),
                2,
            ),
            "spark_vs_pandas_score_same_rows": round(
                float(results["spark_score_first"]["seconds"]) / float(results["pandas_score"]["seconds"]), 2
            ),
            "driver_mb_all_vs_first": round(
                int(results["spark_score_all"]["driver_mb"])
                / max(1, int(results["spark_score_first"]["driver_mb"])),  # type: ignore[call-overload]
                2,
            ),
        },
    }
    if args.floor:
        floor = python_floor(first, args.master)
        report["floor"] = {**floor, "pandas_features_s": results["pandas_features"]["seconds"]}
    print(json.dumps(report, indent=2))
    if args.work is None:
        shutil.rmtree(work, ignore_errors=True)


def python_floor(first: Path, master: str) -> dict[str, object]:
    """Seconds to count the first chunk's events in the JVM, and to hand the columns the features
    read to Python workers and back (nothing computed): no Python engine inside Spark can be faster
    than the second."""
    from leadscore.spark.session import spark_session
    from leadscore.spec import load_spec

    spec = load_spec("synthetic")
    log = spec.activity
    assert log is not None
    session = spark_session(master)
    events = session.read.parquet(str(first / "events.parquet"))
    columns = list(dict.fromkeys([log.id, log.time, log.type, *read_columns(spec.declared)]))
    events = events.select(*[c for c in columns if c in events.columns])

    def timed(job: Callable[[], object]) -> float:
        job()  # warm: the JVM's first job of a kind pays its compilation
        start = time.perf_counter()
        job()
        return round(time.perf_counter() - start, 2)

    out: dict[str, object] = {
        "events": events.count(),
        "jvm_count_s": timed(lambda: events.count()),
        "to_python_and_back_s": timed(
            lambda: events.mapInArrow(lambda it: (b.slice(0, 0) for b in it), events.schema).count()
        ),
    }
    session.stop()
    return out


if __name__ == "__main__":
    main()
