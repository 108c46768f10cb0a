"""Batches are scored in processes of their own, so a batch never holds the serving process's GIL.

A 1,000-lead batch is ~100 ms of Python (parsing, checking, phrasing reasons, building answers).
Run in threads of the serving process, two such batches kept the event loop waiting for the
interpreter, and health checks took hundreds of milliseconds under a storm of batches. Here each of
the ``max_batches`` batch slots has a scorer process: the serving process only passes the request's
bytes in and the answer's bytes out, and its event loop stays free for health checks, single leads
and shedding.

A scorer gets the model by value (the loaded bundle, pickled once per model) with the first batch
after a reload, so it always scores with exactly the model the serving process answers with. The
score log's queue stays in the serving process: a scorer finds the leads' previous answers itself
(the queued answers, then the store), so batch answers carry ``previous`` and ``trend`` like single
ones, and returns its log rows packed (pickled once, here) for the serving process to forward to the
log's writer process unread. A scorer that dies or overruns ``LEADSCORE_BATCH_TIMEOUT`` is replaced;
its request gets a 500 or 504, and nothing else is affected. Scorers exit when the serving process closes their
pipe, or dies.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import gc
import itertools
import multiprocessing
import pickle
import signal
import threading
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

import numpy as np
import orjson

from leadscore.scoring.answer import trend_fields
from leadscore.scoring.bundle import ModelBundle
from leadscore.service.leads import CheckedLead, LeadChecker, LeadError
from leadscore.store.scores import LatestReader, Previous, score_tuples
from leadscore.store.writer import PackedRows, Pending

BATCH_THREADS = 2  # TreeSHAP of a batch on two threads (one worker per core serves single leads)
_serials = itertools.count(1)


class Refused(Exception):
    """A batch the service refuses as a whole (an HTTP status and its detail)."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(status, detail)
        self.status = status
        self.detail = detail


@dataclass
class Loaded:
    """A model ready to answer: the bundle and its lead checker, swapped as one on reload."""

    bundle: ModelBundle
    checker: LeadChecker
    source: str
    serial: int = field(default_factory=lambda: next(_serials))
    _pickled: bytes | None = field(default=None, repr=False)

    @property
    def model_version(self) -> str:
        return self.bundle.model_version

    def pickled(self) -> bytes:
        """The bundle as a scorer process receives it (made once per model)."""
        if self._pickled is None:
            self._pickled = pickle.dumps(self.bundle, protocol=pickle.HIGHEST_PROTOCOL)
        return self._pickled


@dataclass
class Answered:
    """Leads answered: each answer, the log rows (when logged), and the figures for the metrics."""

    answers: list[dict[str, Any]]
    rows: PackedRows | None
    p_sql: np.ndarray
    mql: int


def answer_leads(
    model: Loaded,
    leads: list[CheckedLead],
    *,
    explain: int,
    threads: int,
    trend_threshold: float,
    previous: Callable[[list[str]], Mapping[str, Previous]] | None,
    request_id: str | None = None,
) -> Answered:
    """Checked leads scored together. With ``previous`` (the score log is on) each answer gains the
    lead's previous logged answer and trend, and a log row is made for it; without, they are null."""
    records = [c.record for c in leads]
    bundle = model.bundle
    answers, scored = bundle.answers(
        records, explain=explain, warnings=[c.warnings for c in leads], num_threads=threads
    )
    rows = None
    if previous is not None:
        rows = PackedRows.from_tuples(
            score_tuples(
                answers,
                records,
                model_name=bundle.name,
                fields=bundle.fields,
                source="api",
                request_id=request_id,
            )
        )
        found = previous([key for key, *_ in rows.answers])
        for answer, (key, *_) in zip(answers, rows.answers, strict=True):
            answer.update(trend_fields(answer, found.get(key), trend_threshold))
    else:
        for answer in answers:
            answer.update(trend_fields(answer, None, trend_threshold))
    return Answered(answers, rows, np.asarray(scored.p_sql, dtype=float), int(scored.mql.sum()))


def parse_body(body: bytes) -> Any:
    """The request body as JSON, or a 422 saying why not."""
    if not body:
        raise Refused(422, "empty body: send a JSON object")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise Refused(422, f"body is not valid JSON ({exc.msg} at position {exc.pos})") from None


def batch_leads(parsed: Any, max_batch: int) -> list[Any]:
    leads = parsed.get("leads") if isinstance(parsed, dict) else None
    if not isinstance(leads, list):
        raise Refused(422, "field 'leads': expected a JSON array of leads")
    if len(leads) > max_batch:
        raise Refused(422, f"field 'leads': {len(leads)} leads is over the limit of {max_batch} per batch")
    return leads


@dataclass
class Batch:
    """A scored batch (or part of one): the results as a JSON array, the log rows (packed, one part
    per scorer), and the figures for the metrics."""

    results: bytes
    rows: list[PackedRows] | None
    leads: int
    mql: int
    invalid: int
    p_sql: np.ndarray

    def response(self) -> bytes:
        """The response body: ``{"results": [...]}``."""
        return b'{"results":' + self.results + b"}"


def join_parts(parts: list[Batch]) -> Batch:
    """The parts of one batch, scored by several scorers, as one (in the leads' order)."""
    if len(parts) == 1:
        return parts[0]
    inner = [p.results[1:-1] for p in parts if p.results != b"[]"]
    rows = [r for p in parts for r in (p.rows or [])]  # each scorer's packed rows, in order
    return Batch(
        results=b"[" + b",".join(inner) + b"]",
        rows=rows if any(p.rows is not None for p in parts) else None,
        leads=sum(p.leads for p in parts),
        mql=sum(p.mql for p in parts),
        invalid=sum(p.invalid for p in parts),
        p_sql=np.concatenate([p.p_sql for p in parts]),
    )


def score_batch_body(
    model: Loaded,
    body: bytes,
    *,
    explain: int,
    max_batch: int,
    trend_threshold: float,
    previous: Callable[[list[str]], Mapping[str, Previous]] | None,
    request_id: str | None = None,
    threads: int = BATCH_THREADS,
    part: tuple[int, int] = (0, 1),
) -> Batch:
    """A batch body parsed, each lead checked (a bad one reported by its index) and the rest scored;
    ``previous``: finds the leads' last logged answers (None: the score log is off). ``part`` (k, m):
    only the k-th of m equal slices of the leads (indexes stay the whole batch's)."""
    leads = batch_leads(parse_body(body), max_batch)
    k, m = part
    start, stop = len(leads) * k // m, len(leads) * (k + 1) // m
    results: list[dict[str, Any] | None] = [None] * (stop - start)
    good: list[tuple[int, CheckedLead]] = []
    for i in range(start, stop):
        try:
            good.append((i - start, model.checker.check(leads[i])))
        except LeadError as exc:
            results[i - start] = {"index": i, "error": {"detail": str(exc), "field": exc.field}}
    rows = None
    p_sql = np.empty(0)
    mql = 0
    if good:
        done = answer_leads(
            model,
            [c for _, c in good],
            explain=explain,
            threads=threads,
            trend_threshold=trend_threshold,
            previous=previous,
            request_id=request_id,
        )
        for (i, _), answer in zip(good, done.answers, strict=True):
            results[i] = answer
        rows = None if done.rows is None else [done.rows]
        p_sql, mql = done.p_sql, done.mql
    elif previous is not None:
        rows = []
    return Batch(
        results=orjson.dumps(results, option=orjson.OPT_SERIALIZE_NUMPY),
        rows=rows,
        leads=len(good),
        mql=mql,
        invalid=len(results) - len(good),
        p_sql=p_sql,
    )


# -- the scorer process ------------------------------------------------------------------------
LogView = tuple[bytes, str | None]  # the serving process's queued answers (pickled), the store URL
_readers: dict[str, LatestReader] = {}


def previous_from(view: LogView) -> Callable[[list[str]], dict[str, Previous]]:
    """The leads' previous answers as a scorer finds them: rows still queued in the serving process
    first, then the store (on a connection of the scorer's own; skipped while the store is down)."""
    queued, url = view
    pending: dict[str, Pending] = pickle.loads(queued) if queued else {}

    def lookup(ids: list[str]) -> dict[str, Previous]:
        found = {i: Previous(*pending[i]) for i in ids if i in pending}
        rest = [i for i in ids if i and i not in found]
        if rest and url:
            reader = _readers.get(url) or _readers.setdefault(url, LatestReader(url))
            try:
                found.update(reader.get(rest))
            except Exception:  # the store went down meanwhile: answer without previous, as the service does
                pass
        return found

    return lookup


@dataclass
class Job:
    serial: int
    bundle: bytes | None  # the model, sent when the scorer does not hold this serial yet
    body: bytes | None  # None: only load the model (warming up)
    explain: int = 0
    log: LogView | None = None  # the score log is on: where to find the leads' previous answers
    request_id: str | None = None
    part: tuple[int, int] = (0, 1)
    threads: int = BATCH_THREADS


@dataclass
class ScorerConfig:
    max_batch: int
    trend_threshold: float


def _serve(conn: Connection, config: ScorerConfig) -> None:
    """A scorer process: answer jobs until the serving process closes the pipe (or dies)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl+C reaches the whole group: the server decides
    model: Loaded | None = None
    while True:
        try:
            job: Job = conn.recv()
        except (EOFError, OSError):
            return
        try:
            if model is None or model.serial != job.serial:
                if job.bundle is None:
                    raise RuntimeError("scorer asked to score with a model it was not given")
                bundle = pickle.loads(job.bundle)
                model = Loaded(bundle=bundle, checker=LeadChecker(bundle), source="", serial=job.serial)
                gc.unfreeze()
                gc.collect()
                gc.freeze()  # the model lives until the next one: out of the collector's full passes
            if job.body is None:
                reply: tuple[Any, ...] = ("loaded", model.model_version)
            else:
                reply = (
                    "ok",
                    score_batch_body(
                        model,
                        job.body,
                        explain=job.explain,
                        max_batch=config.max_batch,
                        trend_threshold=config.trend_threshold,
                        previous=previous_from(job.log) if job.log is not None else None,
                        request_id=job.request_id,
                        threads=job.threads,
                        part=job.part,
                    ),
                )
        except Refused as exc:
            reply = ("refused", exc.status, exc.detail)
        except Exception as exc:  # reported to the serving process, which logs it and answers 500
            reply = ("error", f"{type(exc).__name__}: {exc}")
        try:
            conn.send(reply)
        except (BrokenPipeError, OSError):
            return


class ScorerFailed(Exception):
    """A scorer died, overran its time or failed unexpectedly (a server fault: 500 or 504)."""

    def __init__(self, status: int, detail: str, *, dead: bool, sent: bool = True) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.dead = dead  # the process is gone or stuck: replace it
        self.sent = sent  # False: the job never reached the scorer (safe to give to another)


# Imported once by the fork server: this module (and with it the store's code) and LightGBM, which
# a scorer otherwise imported when it unpickled its first model (with scikit-learn and SciPy: about
# 1.5 s of CPU in every new or replacing scorer, taken from the batches scored meanwhile). Importing
# LightGBM starts no OpenMP threads, so forking after it is safe.
FORKSERVER_PRELOAD = [__name__, "lightgbm"]


def scorer_context() -> multiprocessing.context.BaseContext:
    """Scorers (and the score log's writer process) are forked from a fork server that imported
    ``FORKSERVER_PRELOAD`` once: never a fork of the threaded server itself, and a new scorer starts
    and loads its model in milliseconds instead of importing again. Where there is no fork server
    (Windows), each scorer is spawned (it imports on its own)."""
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    ctx = multiprocessing.get_context("forkserver")
    assert isinstance(ctx, multiprocessing.context.ForkServerContext)
    ctx.set_forkserver_preload(FORKSERVER_PRELOAD)
    return ctx


class Scorer:
    """One scorer process and the serving process's end of its pipe."""

    def __init__(self, config: ScorerConfig) -> None:
        ctx: Any = scorer_context()
        ours, theirs = ctx.Pipe(duplex=True)
        self.process = ctx.Process(target=_serve, args=(theirs, config), name="leadscore-batch", daemon=True)
        self.process.start()
        theirs.close()
        self.conn = ours
        self.serial: int | None = None  # the model it holds

    def run(self, model: Loaded, job: Job, timeout: float) -> Any:
        """Send a job and wait for its answer (blocking: call from a thread)."""
        if self.serial != model.serial:
            job.bundle = model.pickled()
        try:
            self.conn.send(job)
        except OSError as exc:  # it died before the job reached it
            self.process.join(1.0)
            detail = f"the batch scorer process died (exit code {self.process.exitcode}): {exc}"
            raise ScorerFailed(500, detail, dead=True, sent=False) from None
        try:
            if not self.conn.poll(timeout):
                raise ScorerFailed(
                    504, f"batch not scored within {timeout:g} s (LEADSCORE_BATCH_TIMEOUT)", dead=True
                )
            reply = self.conn.recv()
        except (EOFError, OSError) as exc:
            self.process.join(1.0)
            detail = (
                f"the batch scorer process died (exit code {self.process.exitcode}): {exc or 'pipe closed'}"
            )
            raise ScorerFailed(500, detail, dead=True) from None
        self.serial = model.serial
        if reply[0] == "refused":
            raise Refused(reply[1], reply[2])
        if reply[0] == "error":
            raise ScorerFailed(500, f"batch scoring failed: {reply[1]}", dead=False)
        return reply[1]

    def stop(self, timeout: float = 5.0) -> None:
        with contextlib.suppress(OSError):
            self.conn.close()  # the scorer sees the end of its pipe and exits
        self.process.join(timeout)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(timeout)


def _stop_later(scorer: Scorer) -> None:
    """Stop (or reap) a scorer's process off the event loop."""
    threading.Thread(target=scorer.stop, args=(1.0,), daemon=True).start()


SPLIT_BYTES = 64_000  # a batch body at least this big is split over the idle scorers (~100 leads)


class BatchScorers:
    """``size`` scorer processes (one per batch slot), used from the event loop's thread only.

    A batch takes one scorer (waiting for one only while another batch holds two) and, when its
    body is big enough, every other idle one: its leads are split between them and scored at once,
    so a lone 1,000-lead batch uses both cores of a two-core machine, and under load each batch
    still gets one. A scorer that died or overran is stopped and a new one started.
    """

    def __init__(self, size: int, config: ScorerConfig, timeout: float = 60.0) -> None:
        self.size = size
        self.config = config
        self.timeout = timeout
        self.replaced = 0
        self._idle: list[Scorer] = []
        self._all: set[Scorer] = set()
        self._starting = 0
        self._waiters: deque[asyncio.Future[Scorer]] = deque()
        self._tasks: set[asyncio.Task[Scorer]] = set()
        self._closed = False

    async def _acquire(self) -> Scorer:
        while self._idle:
            scorer = self._idle.pop()
            if self._alive(scorer):
                return scorer
        if len(self._all) + self._starting < self.size:
            self._starting += 1
            return await self._start()
        waiter: asyncio.Future[Scorer] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        return await waiter

    async def _start(self) -> Scorer:
        """A new scorer (the caller counted it in ``_starting`` before any await: no two callers
        can both see room for one more)."""
        try:
            scorer = await asyncio.to_thread(Scorer, self.config)
        finally:
            self._starting -= 1
        self._all.add(scorer)
        return scorer

    def _release(self, scorer: Scorer, healthy: bool) -> None:
        if not healthy:
            self._drop(scorer)
            return
        if self._closed:
            _stop_later(scorer)
            return
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(scorer)
                return
        self._idle.append(scorer)

    def _alive(self, scorer: Scorer) -> bool:
        """Whether an idle scorer still runs; one that died while idle (killed, out of memory) is
        dropped and replaced."""
        if scorer.process.is_alive():
            return True
        self._drop(scorer)
        return False

    def _drop(self, scorer: Scorer) -> None:
        """Forget a failed scorer, stop (or reap) its process off the event loop, and start its
        replacement at once (for whoever waits, or idle for the next batch)."""
        self._all.discard(scorer)
        self.replaced += 1
        _stop_later(scorer)
        if self._closed:
            return
        self._starting += 1
        task = asyncio.get_running_loop().create_task(self._start())
        self._tasks.add(task)

        def started(t: asyncio.Task[Scorer]) -> None:
            self._tasks.discard(t)
            if t.cancelled():
                return
            failed = t.exception()
            if failed is None:
                self._release(t.result(), True)
                return
            while self._waiters:  # nobody waits for a scorer that will not come
                waiter = self._waiters.popleft()
                if not waiter.done():
                    detail = f"could not start a batch scorer: {failed}"
                    waiter.set_exception(ScorerFailed(500, detail, dead=False))

        task.add_done_callback(started)

    async def score(self, model: Loaded, job: Job) -> Batch:
        """Score a batch job on one scorer, or split over every idle one (the job's body is shared)."""
        scorers = [await self._acquire()]
        if job.body is not None and len(job.body) >= SPLIT_BYTES:
            idle, self._idle = self._idle, []
            scorers += [scorer for scorer in idle if self._alive(scorer)]
        m = len(scorers)
        threads = max(1, BATCH_THREADS // m)
        jobs = [dataclasses.replace(job, part=(k, m), threads=threads) for k in range(m)]
        runs = [self._part(s, model, j) for s, j in zip(scorers, jobs, strict=True)]
        outcomes = await asyncio.gather(*runs, return_exceptions=True)
        parts: list[Batch] = []
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome
            parts.append(outcome)
        return join_parts(parts)

    async def _part(self, scorer: Scorer, model: Loaded, job: Job) -> Batch:
        """One part on one scorer; if that scorer turns out dead before it got the job, on another."""
        try:
            return await self._run(scorer, model, job)
        except ScorerFailed as exc:
            if exc.sent:
                raise
        return await self._run(await self._acquire(), model, job)

    def _run(self, scorer: Scorer, model: Loaded, job: Job) -> asyncio.Future[Any]:
        """Run a job in a thread; the scorer goes back when the job has ended (even if the request
        is cancelled meanwhile: a scorer is never given two jobs at once)."""
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(None, scorer.run, model, job, self.timeout)

        def done(f: asyncio.Future[Any]) -> None:
            failed = f.exception() if not f.cancelled() else None
            self._release(scorer, not (isinstance(failed, ScorerFailed) and failed.dead))

        future.add_done_callback(done)
        return asyncio.shield(future)

    async def warm(self, model: Loaded) -> list[str]:
        """Start every scorer and give it the model now, so the first batches do not wait."""
        scorers = [await self._acquire() for _ in range(self.size)]
        runs = [self._run(s, model, Job(serial=model.serial, bundle=None, body=None)) for s in scorers]
        return list(await asyncio.gather(*runs))

    async def close(self) -> None:
        self._closed = True
        for task in list(self._tasks):
            task.cancel()
        scorers, self._all, self._idle = list(self._all), set(), []
        await asyncio.gather(*(asyncio.to_thread(s.stop) for s in scorers))

    @property
    def processes(self) -> list[int]:
        return sorted(s.process.pid for s in self._all if s.process.pid is not None)

    def holding(self, model: Loaded) -> int:
        """How many scorers hold this model already (a batch on one that does not waits for it to load)."""
        return sum(1 for s in self._all if s.serial == model.serial)
