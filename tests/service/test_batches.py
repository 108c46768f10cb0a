"""Batches are scored in scorer processes: split over idle ones, always with the served model, and a
scorer that dies or overruns is replaced without taking the service down."""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

import httpx
import numpy as np
import pandas as pd
import pytest
from prometheus_client import CollectorRegistry, Histogram, generate_latest

from leadscore.service.batch_body import join_parts, score_batch_body
from leadscore.service.batches import SPLIT_BYTES, BatchScorers, ScorerFailed
from leadscore.service.scorer_process import Job, ScorerConfig
from leadscore.service.state import load_model
from leadscore.service.telemetry import SCORE_BUCKETS, ScoreHistogram
from leadscore.store.writer import WRITER_NICE, PackedRows
from tests.helpers import API_KEY, Trained, free_port, make_leads, start_server, stop, wait_ready

T = TypeVar("T")
BAD = {3: {"employee_count": "a lot"}, 250: {"web_visits_30d": True}}  # wrong types: 422 for the lead


def _leads(n: int) -> list[dict[str, object]]:
    frame = make_leads(400, 95, fault_rate=0.0).head(n)
    leads = json.loads(frame.to_json(orient="records", date_format="iso"))
    for i, change in BAD.items():
        if i < n:
            leads[i].update(change)
    return leads


def _in_a_loop(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine on a loop of its own (in a thread: an earlier test may have left one running)."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


def _kids(pid: int) -> list[tuple[int, bytes]]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True)
    found = []
    for child in (int(x) for x in out.stdout.split()):
        try:
            found.append((child, Path(f"/proc/{child}/cmdline").read_bytes()))
        except OSError:
            continue
    return found


def _forked(pid: int) -> set[int]:
    """The processes the server had forked by multiprocessing's fork server, a child of the server
    (its resource tracker is one too: not counted)."""
    servers = [child for child, command in _kids(pid) if b"forkserver" in command]
    return {child for server in servers for child, command in _kids(server) if command}


def _children(pid: int) -> set[int]:
    """The server's scorer processes: forked ones at the server's own CPU priority (the score log's
    writer process runs below it)."""
    return {child for child in _forked(pid) if _nice(child) == _nice(pid)}


def _nice(pid: int) -> int | None:
    try:
        return os.getpriority(os.PRIO_PROCESS, pid)
    except OSError:  # gone meanwhile
        return None


def _scorers(pid: int, want: int, timeout: float = 60) -> set[int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = _children(pid)
        if len(found) >= want:
            return found
        time.sleep(0.2)
    raise AssertionError(f"{want} scorer processes did not start: {_children(pid)}")


@pytest.mark.e2e
def test_a_big_batch_is_split_over_scorer_processes_and_a_killed_scorer_is_replaced(
    trained: Trained, tmp_path: Path
) -> None:
    port = free_port()
    env = {
        **trained["env"],
        "LEADSCORE_API_KEYS": API_KEY,
        "LEADSCORE_MAX_BATCH": "400",
        "LEADSCORE_MAX_BODY_BYTES": "2000000",
        "LEADSCORE_DATABASE_URL": f"sqlite:///{tmp_path}/leadscore.db",
        "LEADSCORE_WARM_SCORERS": "true",
    }
    proc = start_server(trained["model_path"], env, port, log=tmp_path / "server.log")
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url, proc)
        # ready means both scorers (one per batch slot) hold the model: a batch sent at once waits
        # for none to start or load it
        assert httpx.get(f"{url}/readyz").json()["batch_scorers"] == 2
        first = _children(proc.pid)
        assert len(first) == 2 and proc.pid not in first
        # they are forked from a fork server that imported LightGBM once (a scorer imported it with
        # its first model: 1.5 s of CPU in every new or replacing scorer)
        (fork_server,) = [child for child, command in _kids(proc.pid) if b"forkserver" in command]
        assert "lib_lightgbm" in Path(f"/proc/{fork_server}/maps").read_text()
        # the score log is written by one more forked process, below the scoring's priority
        writers = _forked(proc.pid) - first
        assert len(writers) == 1
        assert _nice(writers.pop()) == min(19, os.getpriority(os.PRIO_PROCESS, proc.pid) + WRITER_NICE)
        leads = _leads(300)
        body = json.dumps({"leads": leads}).encode()
        assert len(body) >= SPLIT_BYTES  # big enough to be split over both scorers
        with httpx.Client(base_url=url, headers={"X-API-Key": API_KEY}, timeout=60) as c:
            r = c.post(
                "/v1/score/batch?explain=3", content=body, headers={"content-type": "application/json"}
            )
            assert r.status_code == 200, r.text
            results = r.json()["results"]
            assert len(results) == 300
            # bad leads keep the whole batch's index, in both halves
            assert [x["index"] for x in results if "error" in x] == [3, 250]
            assert results[3]["error"]["field"] == "employee_count"
            assert results[250]["error"]["field"] == "web_visits_30d"
            # every other lead is the answer the same lead gets alone, in the batch's order
            for i in (0, 149, 150, 151, 299):
                alone = c.post("/v1/score?explain=3", json=leads[i]).json()
                assert results[i]["lead_id"] == leads[i]["lead_id"]
                for key in ("p_sql", "mql", "grade", "fit", "engagement", "reasons", "model_version"):
                    assert results[i][key] == alone[key], (i, key)
                # the batch was logged: the lead scored again shows the batch's answer as previous
                assert alone["previous"]["p_sql"] == results[i]["p_sql"]
            scored = [
                line
                for line in c.get("/metrics").text.splitlines()
                if line.startswith("leadscore_leads_scored_total")
            ]
            assert float(scored[0].split()[1]) >= 298 + 5

            victim = sorted(first)[0]
            os.kill(victim, signal.SIGKILL)
            deadline = time.monotonic() + 10
            while victim in _children(proc.pid) and time.monotonic() < deadline:
                time.sleep(0.1)
            again = c.post("/v1/score/batch", content=body, headers={"content-type": "application/json"})
            assert again.status_code == 200, again.text  # the dead scorer was replaced, nothing failed
            assert c.get("/healthz").status_code == 200
        after = _scorers(proc.pid, 2)
        assert victim not in after and len(after) == 2
    finally:
        stop(proc)
    assert not _kids(proc.pid)  # scorers, fork server and resource tracker all gone


def test_ready_only_once_the_batch_scorers_hold_the_model(trained: Trained) -> None:
    """A load balancer sends batches once /readyz says ready: they must find both scorers started
    and holding the model, not wait while one forks and loads it (the first batches of a fresh
    server took one scorer's time, or the whole load's)."""
    from leadscore.config import Settings
    from leadscore.service.app import create_app

    settings = Settings(api_keys=API_KEY, log_scores=False, warm_scorers=True, max_batches=2)
    interval = sys.getswitchinterval()  # create_app shortens it for the server's process

    async def run() -> tuple[httpx.Response, httpx.Response]:
        app = create_app(str(trained["model_path"]), settings=settings)
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
                first = await c.get("/readyz")  # the scorers are still starting
                deadline = time.monotonic() + 60
                while (ready := await c.get("/readyz")).status_code != 200 and time.monotonic() < deadline:
                    await asyncio.sleep(0.02)
        return first, ready

    try:
        first, ready = _in_a_loop(run())
    finally:
        sys.setswitchinterval(interval)
    assert first.status_code == 503 and first.json() == {"status": "starting the batch scorers"}
    assert ready.status_code == 200 and ready.json()["batch_scorers"] == 2


def test_a_scorer_always_scores_with_the_model_it_is_given(trained: Trained) -> None:
    """A reload swaps the served model; the next batch on a scorer that holds the old one is scored
    with the new one (it travels with the job), never with what the scorer had."""
    old = load_model(str(trained["model_path"]))
    new = load_model(str(trained["model_path"]))
    new.bundle.threshold = 1.01  # nothing is an MQL under the "new model"
    body = json.dumps({"leads": _leads(40)}).encode()

    async def run() -> tuple[bool, bool, bool]:
        pool = BatchScorers(1, ScorerConfig(max_batch=1000, trend_threshold=0.05), timeout=60)
        try:
            await pool.warm(old)
            first = json.loads((await pool.score(old, Job(old.serial, None, body, 0))).response())
            second = json.loads((await pool.score(new, Job(new.serial, None, body, 0))).response())
            third = json.loads((await pool.score(old, Job(old.serial, None, body, 0))).response())
        finally:
            await pool.close()
        mql = [[bool(x.get("mql")) for x in r["results"]] for r in (first, second, third)]
        return any(mql[0]), any(mql[1]), mql[0] == mql[2]

    some_old, some_new, same = _in_a_loop(run())
    assert some_old and not some_new and same


def test_a_batch_over_the_timeout_is_504_and_its_scorer_replaced(trained: Trained) -> None:
    loaded = load_model(str(trained["model_path"]))
    body = json.dumps({"leads": _leads(200)}).encode()

    async def run() -> tuple[ScorerFailed, int, int, int]:
        pool = BatchScorers(1, ScorerConfig(max_batch=1000, trend_threshold=0.05), timeout=60)
        try:
            await pool.warm(loaded)
            before = pool.processes
            pool.timeout = 0.001
            with pytest.raises(ScorerFailed) as caught:
                await pool.score(loaded, Job(loaded.serial, None, body, 5))
            pool.timeout = 60
            batch = await pool.score(loaded, Job(loaded.serial, None, body, 5))  # a new scorer answers
            return caught.value, before[0], pool.processes[0], batch.leads
        finally:
            await pool.close()

    failed, before, after, leads = _in_a_loop(run())
    assert failed.status == 504 and "LEADSCORE_BATCH_TIMEOUT" in failed.detail and failed.dead
    assert before != after and leads == 199  # lead 3 has a wrong type


def _logged(rows: list[PackedRows] | None) -> list[dict[str, object]]:
    """Packed log rows as written, but for the time each part was scored."""
    return [{k: v for k, v in r.items() if k != "scored_at"} for part in rows or [] for r in part.rows()]


def test_parts_of_a_batch_join_as_the_whole(trained: Trained) -> None:
    loaded = load_model(str(trained["model_path"]))
    body = json.dumps({"leads": _leads(301)}).encode()
    score = functools.partial(
        score_batch_body,
        loaded,
        body,
        explain=2,
        max_batch=1000,
        trend_threshold=0.05,
        previous=lambda ids: {},
        threads=1,
    )
    whole = score()
    for m in (2, 3):
        parts = [score(part=(k, m)) for k in range(m)]
        joined = join_parts(parts)
        assert json.loads(joined.response()) == json.loads(whole.response())
        assert (joined.leads, joined.mql, joined.invalid) == (whole.leads, whole.mql, whole.invalid)
        np.testing.assert_array_equal(joined.p_sql, whole.p_sql)
        # the log rows stay packed as each scorer made them, and unpack to the whole batch's rows
        assert joined.rows is not None and len(joined.rows) == m
        assert _logged(joined.rows) == _logged(whole.rows)


@pytest.mark.parametrize("one_at_a_time", [False, True], ids=["a-batch", "one-lead-each"])
def test_the_score_histogram_reads_as_prometheus_own(one_at_a_time: bool) -> None:
    values = np.concatenate([np.linspace(0, 1, 101), [0.05, 0.1, 0.95, 1.0, np.nan, -0.0, 1e-300]])
    ours, theirs = CollectorRegistry(), CollectorRegistry()
    histogram = ScoreHistogram("p", "P(SQL)", SCORE_BUCKETS, ours)
    for part in np.split(values, len(values)) if one_at_a_time else [values]:
        histogram.observe_many(part)
    reference = Histogram("p", "P(SQL)", buckets=SCORE_BUCKETS, registry=theirs)
    for v in values[~np.isnan(values)]:
        reference.observe(float(v))

    def samples(registry: CollectorRegistry) -> pd.Series:
        lines = [
            x
            for x in generate_latest(registry).decode().splitlines()
            if x.startswith("p_") and "created" not in x
        ]
        return pd.Series({x.rsplit(" ", 1)[0]: float(x.rsplit(" ", 1)[1]) for x in lines})

    pd.testing.assert_series_equal(
        samples(ours).sort_index(), samples(theirs).sort_index(), check_exact=False
    )
