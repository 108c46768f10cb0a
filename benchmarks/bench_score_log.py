"""The score log's cost on the request path (goal: one-lead p99 and requests/s within 10% of the
service without the log).

Run: .venv/bin/python benchmarks/bench_score_log.py [--requests 3000] [--postgres URL]
Trains one model, starts the service twice on this machine, with LEADSCORE_LOG_SCORES off and on
(SQLite, the default store; with --postgres also a PostgreSQL store), and sends the same one-lead
requests to each in alternating rounds (so machine noise hits both alike): a different lead id per
request from 2,000 leads, at 1 and 10 connections. Prints client p50/p99, server-side p99 (the
service's own JSON log), requests/s, and each logged variant's ratio to the unlogged one; and checks
that every answer was written.
"""

from __future__ import annotations

import argparse
import http.client
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bench_service import KEY, free_port, load, server_side, train_model, wait
from leadscore.data.synthetic import GeneratorConfig, generate

HEADERS = {"x-api-key": KEY}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--leads", type=int, default=20_000, help="training leads")
    parser.add_argument("--requests", type=int, default=3000, help="requests per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--postgres", default=None, help="also measure a PostgreSQL store at this URL")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        model_path, env = train_model(tmp, args.leads)
        model = str(model_path)
        leads = generate(GeneratorConfig(leads=2000, seed=2, fault_rate=0.0))["leads"].to_pandas()
        records = json.loads(
            leads.drop(columns=["true_p_sql", "sql_within_90d", "call_duration_sec"]).to_json(
                orient="records", date_format="iso"
            )
        )
        bodies = [json.dumps(r).encode() for r in records]
        variants = {
            "no log": {"LEADSCORE_LOG_SCORES": "false"},
            "SQLite log": {"LEADSCORE_DATABASE_URL": f"sqlite:///{tmp}/store.db"},
        }
        if args.postgres:
            variants["PostgreSQL log"] = {"LEADSCORE_DATABASE_URL": args.postgres}
        servers = {}
        for name, extra in variants.items():
            port, log = free_port(), tmp / f"{name.replace(' ', '_')}.log"
            with log.open("wb") as err:
                proc = subprocess.Popen(
                    [sys.executable, "-m", "leadscore", "serve", "--model", model, "--port", str(port)],
                    env={**env, **extra}, stdout=subprocess.DEVNULL, stderr=err,
                )  # fmt: skip
            servers[name] = (proc, port, log)
        results: dict[str, dict[int, list[dict[str, float]]]] = {n: {1: [], 10: []} for n in servers}
        try:
            for _, port, _ in servers.values():
                wait(port, "/readyz")
                load(port, "/v1/score", bodies, HEADERS, 1, 300)  # warm up
            for _ in range(args.rounds):
                for concurrency in (1, 10):
                    for name, (_, port, log) in servers.items():
                        since = len(log.read_text().splitlines())
                        figures = load(port, "/v1/score", bodies, HEADERS, concurrency, args.requests)
                        figures.update(server_side(log, "/v1/score", since))
                        results[name][concurrency].append(figures)
            time.sleep(1.0)  # the writer's last batch
            written = {}
            for name, (_, port, _) in servers.items():
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                conn.request("GET", "/metrics", headers={"x-api-key": KEY})
                text = conn.getresponse().read().decode()
                written[name] = {
                    k: float(line.split()[1])
                    for line in text.splitlines()
                    for k in ("leadscore_score_log_written", "leadscore_score_log_dropped")
                    if line.startswith(k + " ")
                }
        finally:
            for proc, _, _ in servers.values():
                proc.terminate()
                proc.wait(timeout=20)
    summary = {}
    for name, by_c in results.items():
        summary[name] = {
            c: {k: round(float(np.median([r[k] for r in runs])), 3) for k in runs[0]}
            for c, runs in by_c.items()
        }
    print(json.dumps({"median_of_rounds": summary, "score_log": written}, indent=2))
    base = summary["no log"]
    for name in summary:
        if name == "no log":
            continue
        for c in (1, 10):
            a, b = summary[name][c], base[c]
            print(
                f"{name}, {c} connection{'s' if c > 1 else ''}: {a['rps']:.0f} req/s vs {b['rps']:.0f} "
                f"({a['rps'] / b['rps']:.2f}x); client p99 {a['client_p99_ms']:.2f} vs {b['client_p99_ms']:.2f} ms "
                f"({a['client_p99_ms'] / b['client_p99_ms']:.2f}x); server p99 {a['server_p99_ms']:.3f} vs "
                f"{b['server_p99_ms']:.3f} ms ({a['server_p99_ms'] / b['server_p99_ms']:.2f}x)"
            )


if __name__ == "__main__":
    main()
