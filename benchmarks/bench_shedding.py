"""Load shedding: /healthz latency while a storm of 1,000-lead batches hits one worker.

Run: .venv/bin/python benchmarks/bench_shedding.py [--leads 20000] [--connections 50] [--seconds 20]
Everything runs on 127.0.0.1 and stops by itself (bounded in time and in requests). Printed:
health p50/p99/max during the storm against the same probe on an idle server (the reference
measured in this run), the 200/503 split of the batches, and the server-side time of the batches
that were scored. Goal: health p99 under 200 ms during the storm, and no request waiting unbounded.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _private import private_env  # noqa: E402
from leadscore.data.synthetic import GeneratorConfig, generate, write_dataset

KEY = "bench-key-0123456789abcdef"


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def probe(url: str, until: float, out: list[float]) -> None:
    with httpx.Client(timeout=30) as c:
        while time.monotonic() < until:
            t = time.perf_counter()
            c.get(f"{url}/healthz")
            out.append(time.perf_counter() - t)
            time.sleep(0.02)


def storm(url: str, body: bytes, until: float, statuses: list[int], per_connection: int) -> None:
    headers = {"X-API-Key": KEY, "content-type": "application/json"}
    with httpx.Client(headers=headers, timeout=120) as c:
        for _ in range(per_connection):
            if time.monotonic() > until:
                return
            statuses.append(c.post(f"{url}/v1/score/batch?explain=3", content=body).status_code)


def wrk_storm(url: str, body: bytes, seconds: float, connections: int, folder: Path) -> str:
    """The storm from wrk (C, two threads): the load generator costs the server's cores little."""
    (folder / "body.json").write_bytes(body)
    script = folder / "batch.lua"
    script.write_text(
        'wrk.method = "POST"\n'
        'wrk.headers["Content-Type"] = "application/json"\n'
        f'wrk.headers["X-API-Key"] = "{KEY}"\n'
        f'local f = io.open("{folder / "body.json"}", "rb")\nwrk.body = f:read("*all")\nf:close()\n'
    )
    done = subprocess.run(
        [
            "wrk",
            "-t2",
            f"-c{connections}",
            f"-d{int(seconds)}s",
            "--timeout",
            "30s",
            "-s",
            str(script),
            f"{url}/v1/score/batch?explain=3",
        ],
        capture_output=True,
        text=True,
        timeout=seconds + 120,
    )
    return done.stdout


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q) * 1000) if values else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--leads", type=int, default=20_000)
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--client", choices=["auto", "wrk", "python"], default="auto")
    args = parser.parse_args()
    client = ("wrk" if shutil.which("wrk") else "python") if args.client == "auto" else args.client
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        env = private_env(root, LEADSCORE_API_KEYS=KEY, LEADSCORE_MAX_BATCH="1000")
        tables = generate(GeneratorConfig(leads=args.leads, seed=5))
        write_dataset(tables, root / "train")
        leadscore = [sys.executable, "-m", "leadscore"]
        subprocess.run(
            [*leadscore, "train", str(root / "train"), "--spec", "synthetic", "--json"],
            env=env,
            check=True,
            capture_output=True,
        )
        leads = json.loads(
            tables["leads"].to_pandas().head(1000).to_json(orient="records", date_format="iso")
        )
        body = json.dumps({"leads": leads}).encode()
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        log = (root / "server.log").open("wb")
        proc = subprocess.Popen(
            [*leadscore, "serve", "--model", str(root / "models" / "synthetic"), "--port", str(port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
        try:
            for _ in range(300):
                try:
                    if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.2)
            idle: list[float] = []
            probe(url, time.monotonic() + 3, idle)
            health: list[float] = []
            statuses: list[int] = []
            wrk_report = ""
            until = time.monotonic() + args.seconds
            threads = [threading.Thread(target=probe, args=(url, until, health))]
            if client == "python":
                threads += [
                    threading.Thread(target=storm, args=(url, body, until, statuses, 400))
                    for _ in range(args.connections)
                ]
            for t in threads:
                t.start()
            if client == "wrk":
                wrk_report = wrk_storm(url, body, args.seconds, args.connections, root)
            for t in threads:
                t.join()
        finally:
            proc.terminate()
            proc.wait(timeout=30)
            log.close()
        served = [
            json.loads(line)["latency_ms"]
            for line in (root / "server.log").read_text().splitlines()
            if line.startswith("{") and '"path": "/v1/score/batch"' in line and '"status": 200' in line
        ]
    print(f"health idle:  p50 {pct(idle, 50):.1f} ms  p99 {pct(idle, 99):.1f} ms")
    print(
        f"health storm: p50 {pct(health, 50):.1f} ms  p99 {pct(health, 99):.1f} ms  max {max(health) * 1000:.1f} ms"
        f"  ({len(health)} probes; goal p99 < 200 ms)"
    )
    print(f"load generator: {client}")
    if client == "wrk":
        print(
            "wrk: "
            + " | ".join(
                line.strip()
                for line in wrk_report.splitlines()
                if "requests" in line.lower() or "Non-2xx" in line or "Socket" in line
            )
        )
    else:
        counts = {code: statuses.count(code) for code in sorted(set(statuses))}
        print(f"batches: {counts} over {args.connections} connections in {args.seconds:.0f} s")
    if served:
        print(
            f"scored batches, server-side: p50 {statistics.median(served):.0f} ms  p99 {np.percentile(served, 99):.0f} ms"
        )


if __name__ == "__main__":
    main()
