"""The batch scorer processes: one per batch slot, so a batch never holds the serving process's GIL.

A 1,000-lead batch is ~100 ms of Python (parsing, checking, phrasing reasons, building answers).
Run in threads of the serving process, two such batches kept the event loop waiting for the
interpreter, and health checks took hundreds of milliseconds under a storm of batches. Here each of
the ``max_batches`` batch slots has a scorer process (``scorer_process.py``): the serving process
only passes the request's bytes in and the answer's bytes out, and its event loop stays free for
health checks, single leads and shedding.

A scorer gets the model by value (the loaded bundle, pickled once per model) with the first batch
after a reload, so it always scores with exactly the model the serving process answers with. The
score log's queue stays in the serving process: a scorer finds the leads' previous answers itself
(the queued answers, then the store), so batch answers carry ``previous`` and ``trend`` like single
ones, and returns its log rows packed (pickled once, there) for the serving process to forward to
the log's writer process unread. A scorer that dies or overruns ``LEADSCORE_BATCH_TIMEOUT`` is
replaced; its request gets a 500 or 504, and nothing else is affected.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import threading
from collections import deque
from typing import Any

from leadscore.service.batch_body import BATCH_THREADS, Batch, Refused, join_parts
from leadscore.service.forkserver import scorer_context
from leadscore.service.loaded import Loaded
from leadscore.service.scorer_process import (
    BatchRefused,
    BatchScored,
    Job,
    ModelLoaded,
    Reply,
    ScorerConfig,
    ScoringError,
    serve,
)

__all__ = ["SPLIT_BYTES", "BatchScorers", "Scorer", "ScorerFailed"]


class ScorerFailed(Exception):
    """A scorer died, overran its time or failed unexpectedly (a server fault: 500 or 504)."""

    def __init__(self, status: int, detail: str, *, dead: bool, sent: bool = True) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.dead = dead  # the process is gone or stuck: replace it
        self.sent = sent  # False: the job never reached the scorer (safe to give to another)


class Scorer:
    """One scorer process and the serving process's end of its pipe."""

    def __init__(self, config: ScorerConfig) -> None:
        ctx: Any = scorer_context()
        ours, theirs = ctx.Pipe(duplex=True)
        self.process = ctx.Process(target=serve, args=(theirs, config), name="leadscore-batch", daemon=True)
        self.process.start()
        theirs.close()
        self.conn = ours
        self.serial: int | None = None  # the model it holds

    def run(self, model: Loaded, job: Job, timeout: float) -> ModelLoaded | BatchScored:
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
            reply: Reply = self.conn.recv()
        except (EOFError, OSError) as exc:
            self.process.join(1.0)
            detail = (
                f"the batch scorer process died (exit code {self.process.exitcode}): {exc or 'pipe closed'}"
            )
            raise ScorerFailed(500, detail, dead=True) from None
        self.serial = model.serial
        if isinstance(reply, BatchRefused):
            raise Refused(reply.status, reply.detail)
        if isinstance(reply, ScoringError):
            raise ScorerFailed(500, f"batch scoring failed: {reply.detail}", dead=False)
        return reply

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
            reply = await self._run(scorer, model, job)
        except ScorerFailed as exc:
            if exc.sent:
                raise
            reply = await self._run(await self._acquire(), model, job)
        if not isinstance(reply, BatchScored):
            raise ScorerFailed(500, f"batch scoring failed: the scorer answered {reply!r}", dead=False)
        return reply.batch

    def _run(self, scorer: Scorer, model: Loaded, job: Job) -> asyncio.Future[ModelLoaded | BatchScored]:
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
        return [str(getattr(reply, "model_version", reply)) for reply in await asyncio.gather(*runs)]

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
