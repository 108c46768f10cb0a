"""Service speed: latency, throughput against `mlflow models serve`, batch cost, and reason cost.

Run: .venv/bin/python benchmarks/bench_service.py [--leads 50000] [--requests 2000]
Everything is measured in this run on this machine, against 127.0.0.1 only:
  1. one lead with reasons: server-side p50/p99 (from the service's own JSON logs) and
     client-observed p50/p99 and requests/s at 1 and 10 concurrent connections;
  2. the same trained model served by `mlflow models serve` (no reasons, no MQL flag), the same
     one-lead payload, the same concurrency: requests/s of both and the ratio;
  3. a 1,000-lead batch with reasons (server-side time, with the score log and without; the
     reference: the same batch scored in this process on one thread) and in-process batch scoring
     without reasons (leads/s);
  4. how exact reasons (TreeSHAP) cost grows with the number of trees and their depth, with
     LightGBM's walk (two threads) and from the TreeSHAP tables (one thread; trees too big for
     tables: null).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd

from leadscore.data.synthetic import GeneratorConfig, generate, write_dataset

KEY = "bench-key-0123456789abcdef"
BATCHES = 100  # 1,000-lead batches per run, one after another (p99 of 40 was the slowest one)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait(port: int, path: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", path)
            if conn.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.1)  # not up, or not ready yet (503): ask again shortly, not in a tight loop
    raise RuntimeError(f"server on {port} not ready")


def load(
    port: int,
    path: str,
    body: bytes | list[bytes],
    headers: dict[str, str],
    concurrency: int,
    total: int,
    pause: float = 0.0,
) -> dict[str, float]:
    """A bounded keep-alive load loop: ``total`` POSTs spread over ``concurrency`` connections
    (several bodies are sent in turn: a different lead per request), each connection waiting
    ``pause`` seconds between an answer and its next request."""
    per = total // concurrency
    bodies = body if isinstance(body, list) else [body]
    latencies: list[float] = []
    failures = [0]
    lock = threading.Lock()

    def worker(offset: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        mine = []
        for i in range(per):
            sent = bodies[(offset + i * concurrency) % len(bodies)]
            t = time.perf_counter()
            conn.request("POST", path, body=sent, headers={"content-type": "application/json", **headers})
            resp = conn.getresponse()
            resp.read()
            mine.append(time.perf_counter() - t)
            if resp.status != 200:
                with lock:
                    failures[0] += 1
            if pause:
                time.sleep(pause)
        conn.close()
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(concurrency)]
    start = time.perf_counter()
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    elapsed = time.perf_counter() - start
    lat = np.array(latencies) * 1000
    return {
        "concurrency": concurrency,
        "requests": len(lat),
        "failed": failures[0],
        "rps": round(len(lat) / elapsed, 1),
        "client_p50_ms": round(float(np.percentile(lat, 50)), 2),
        "client_p99_ms": round(float(np.percentile(lat, 99)), 2),
    }


def server_latencies(log: Path, path: str, since: int) -> np.ndarray:
    """Server-side milliseconds of the answered requests to ``path`` after line ``since`` of the
    service's JSON log."""
    lines = log.read_text().splitlines()[since:]
    return np.array(
        [
            json.loads(x)["latency_ms"]
            for x in lines
            if x.startswith("{") and f'"path": "{path}"' in x and '"status": 200' in x
        ]
    )


def server_side(log: Path, path: str, since: int) -> dict[str, float]:
    return server_percentiles(server_latencies(log, path, since))


def server_percentiles(lat: np.ndarray) -> dict[str, float]:
    return {
        "server_p50_ms": round(float(np.percentile(lat, 50)), 3),
        "server_p99_ms": round(float(np.percentile(lat, 99)), 3),
    }


def reason_cost(X: np.ndarray, y: np.ndarray) -> list[dict[str, float | None]]:
    import lightgbm as lgb

    from leadscore.scoring.treeshap import build as build_tables

    rows = []
    data = lgb.Dataset(X, y, free_raw_data=False)
    for depth, leaves in ((3, 7), (5, 31), (8, 255)):
        for trees in (100, 300, 1000):
            params = {
                "objective": "binary",
                "max_depth": depth,
                "num_leaves": leaves,
                "learning_rate": 0.05,
                "verbose": -1,
                "num_threads": 2,
                "min_data_in_leaf": 20,
                "seed": 1,
            }
            booster = lgb.train(params, data, num_boost_round=trees)
            one = X[:1]
            t = time.perf_counter()
            for _ in range(200):
                booster.predict(one, pred_contrib=True, num_threads=1)
            single = (time.perf_counter() - t) / 200 * 1000
            t = time.perf_counter()
            for _ in range(200):
                booster.predict(one, num_threads=1)
            plain = (time.perf_counter() - t) / 200 * 1000
            t = time.perf_counter()
            booster.predict(X[:5000], pred_contrib=True, num_threads=2)
            batch = 5000 / (time.perf_counter() - t)
            # the same reasons from TreeSHAP tables (scoring/treeshap.py), where the trees allow them
            booster = lgb.Booster(model_str=booster.model_to_string())  # as a bundle holds it
            tables = build_tables(booster, np.eye(X.shape[1] + 1, X.shape[1]))
            table_rate = None
            if tables is not None:
                t = time.perf_counter()
                tables.contributions(X[:5000])
                table_rate = round(5000 / (time.perf_counter() - t))
            rows.append(
                {
                    "depth": depth,
                    "leaves": leaves,
                    "trees": trees,
                    "one_lead_reasons_ms": round(single, 3),
                    "one_lead_score_only_ms": round(plain, 3),
                    "batch_reasons_leads_per_s": round(batch),
                    "batch_reasons_from_tables_leads_per_s_one_thread": table_rate,
                }
            )
    return rows


def train_model(tmp: Path, leads: int, extra: dict[str, str] | None = None) -> tuple[Path, dict[str, str]]:
    """Generate ``leads`` synthetic leads and train on them with a private MLflow store under ``tmp``;
    the exported model and the environment its service should run with."""
    write_dataset(generate(GeneratorConfig(leads=leads, seed=1)), tmp / "train")
    env = {
        **os.environ,
        "LEADSCORE_TRACKING_URI": f"sqlite:///{tmp}/mlruns/mlflow.db",
        "LEADSCORE_ARTIFACT_ROOT": str(tmp / "mlruns" / "artifacts"),
        "LEADSCORE_MODELS_DIR": str(tmp / "models"),
        "LEADSCORE_API_KEYS": KEY,
        "LEADSCORE_DATABASE_URL": f"sqlite:///{tmp}/leadscore.db",  # the score log, as in production
        **(extra or {}),
    }
    out = subprocess.run(
        [sys.executable, "-m", "leadscore", "train", str(tmp / "train"), "--spec", "synthetic", "--json"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return Path(json.loads(out.stdout)["model_path"]), env


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--leads", type=int, default=50_000, help="training leads")
    parser.add_argument("--requests", type=int, default=2000, help="requests per load run")
    args = parser.parse_args()
    report: dict[str, object] = {}
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        # `mlflow models serve` starts `uvicorn` from PATH: use the project's environment.
        path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
        model, env = train_model(tmp, args.leads, {"PATH": path})
        from leadscore.scoring.bundle import ModelBundle

        bundle = ModelBundle.load(model)
        report["model"] = {
            "shape": "group-pure" if bundle.group_pure else "mixed",
            "trees": bundle.booster.num_trees(),
            "fields": len(bundle.fields),
        }
        test = generate(GeneratorConfig(leads=20_000, seed=2, fault_rate=0.0))["leads"].to_pandas()
        lead = json.loads(test.iloc[[7]].to_json(orient="records", date_format="iso"))[0]
        lead_cols = {k: lead[k] for k in (*bundle.fields, "lead_id", "scored_at") if k in lead}

        ours_port, mlflow_port = free_port(), free_port()
        log = tmp / "service.log"
        ours = start_service(model, ours_port, env, log)
        mlflow_bin = str(Path(sys.executable).parent / "mlflow")
        theirs = subprocess.Popen(
            [
                mlflow_bin,
                "models",
                "serve",
                "-m",
                str(model),
                "-p",
                str(mlflow_port),
                "--env-manager",
                "local",
                "-w",
                "1",
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait(ours_port, "/readyz")  # the batch scorers hold the model
            wait(mlflow_port, "/ping")
            body = json.dumps(lead_cols).encode()
            mlflow_cols = model_input_columns(model)
            mlflow_body = json.dumps(
                {"dataframe_records": [{k: lead_cols.get(k) for k in mlflow_cols}]}
            ).encode()
            headers = {"X-API-Key": KEY}
            load(ours_port, "/v1/score", body, headers, 1, 200)  # warm up
            load(mlflow_port, "/invocations", mlflow_body, {}, 1, 50)
            runs = []
            for conc in (1, 10):
                since = len(log.read_text().splitlines())
                mine = load(ours_port, "/v1/score", body, headers, conc, args.requests)
                mine.update(server_side(log, "/v1/score", since))
                theirs_run = load(
                    mlflow_port, "/invocations", mlflow_body, {}, conc, max(200, args.requests // 4)
                )
                runs.append(
                    {
                        "concurrency": conc,
                        "leadscore": mine,
                        "mlflow_models_serve": theirs_run,
                        "rps_ratio": round(mine["rps"] / theirs_run["rps"], 2),
                    }
                )
            report["one_lead"] = runs
            batch = json.loads(test.head(1000).to_json(orient="records", date_format="iso"))
            batch_body = json.dumps({"leads": [{k: b.get(k) for k in lead_cols} for b in batch]}).encode()
            since = len(log.read_text().splitlines())
            batch_run = load(ours_port, "/v1/score/batch?explain=5", batch_body, headers, 1, BATCHES)
            report["batch_1000_with_reasons"] = {
                **server_side(log, "/v1/score/batch", since),
                "failed": batch_run["failed"],
                # the reference: the same batch scored in this process on one thread, no HTTP
                "in_process_one_thread_p50_ms": in_process_batch(model, batch_body),
            }
        finally:
            for proc in (ours, theirs):
                stop(proc)
        # The same batches on a server without the score log (LEADSCORE_LOG_SCORES=false): what the
        # log (previous answers, rows written to the store) adds to a batch.
        report["batch_1000_with_reasons_no_score_log"] = batch_without_log(model, env, tmp, batch_body)
        big = pd.concat([test] * 10, ignore_index=True)
        t = time.perf_counter()
        bundle.num_threads = 2
        bundle.score_frame(big)
        report["batch_scoring_without_reasons_leads_per_s"] = round(len(big) / (time.perf_counter() - t))
        X = bundle.encode(test)
        report["reason_cost_by_model_size"] = reason_cost(X, test["sql_within_90d"].to_numpy())
    report["targets"] = {
        "server_p99_ms_under": 5,
        "rps_ratio_at_least": 5,
        "batch_1000_with_reasons_server_p99_ms_under": 100,
        "batch_without_reasons_leads_per_s_at_least": 50_000,
    }
    print(json.dumps(report, indent=2))


def start_service(model: Path, port: int, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """`leadscore serve` on 127.0.0.1:``port``, its JSON log written to ``log``."""
    with log.open("wb") as err:
        return subprocess.Popen(
            [sys.executable, "-m", "leadscore", "serve", "--model", str(model), "--port", str(port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=err,
        )


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()


def batches_on_a_server(
    model: Path, env: dict[str, str], log: Path, body: bytes, batches: int = BATCHES, pause: float = 0.0
) -> tuple[np.ndarray, int]:
    """A server of its own answers ``batches`` batches one after another (after five to warm up
    its scorers; ``pause`` seconds between an answer and the next batch): their server-side
    milliseconds, and how many failed."""
    port = free_port()
    proc = start_service(model, port, env, log)
    try:
        wait(port, "/readyz")  # the batch scorers hold the model: none loads it in the measured batches
        headers = {"X-API-Key": KEY}
        load(port, "/v1/score/batch?explain=5", body, headers, 1, 5)
        since = len(log.read_text().splitlines())
        run = load(port, "/v1/score/batch?explain=5", body, headers, 1, batches, pause)
    finally:
        stop(proc)
    return server_latencies(log, "/v1/score/batch", since), int(run["failed"])


def batch_without_log(model: Path, env: dict[str, str], tmp: Path, body: bytes) -> dict[str, float]:
    env = {**env, "LEADSCORE_LOG_SCORES": "false"}
    lat, failed = batches_on_a_server(model, env, tmp / "service-no-log.log", body)
    return {**server_percentiles(lat), "failed": failed}


def in_process_batch(model: Path, body: bytes, runs: int = 15) -> float:
    """The batch's scoring cost without the service: parse, check, score, reasons, answers, log rows."""
    from leadscore.service.batch_body import score_batch_body
    from leadscore.service.state import load_model

    loaded = load_model(str(model))
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        score_batch_body(
            loaded, body, explain=5, max_batch=1000, trend_threshold=0.05, previous=lambda ids: {}, threads=1
        )
        times.append(time.perf_counter() - t)
    return round(float(np.median(times)) * 1000, 1)


def model_input_columns(model: Path) -> list[str]:
    """The input columns of the signature `mlflow models serve` enforces."""
    import mlflow

    return list(mlflow.models.get_model_info(str(model)).signature.inputs.input_names())


if __name__ == "__main__":
    main()
