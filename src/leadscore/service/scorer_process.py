"""A batch scorer process: it receives jobs on a pipe and sends one typed reply for each.

The serving process sends a ``Job`` (the model pickled, when the scorer does not hold it yet; the
request's body; where to find the leads' previous answers). The scorer answers with one of
``ModelLoaded``, ``BatchScored``, ``BatchRefused`` or ``ScoringError``, small typed values that
pickle as tuples do. It exits when the serving process closes the pipe, or dies.
"""

from __future__ import annotations

import gc
import pickle
import signal
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any, NamedTuple

from leadscore.service.answering import PreviousLookup
from leadscore.service.batch_body import BATCH_THREADS, Batch, Refused, score_batch_body
from leadscore.service.leads import LeadChecker
from leadscore.service.loaded import Loaded
from leadscore.store.scores import LatestReader, Previous
from leadscore.store.writer import LogView


@dataclass
class Job:
    """What a scorer is asked to do: load a model (``body`` None) or score a batch body with it."""

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


class ModelLoaded(NamedTuple):
    """The scorer holds the model now (the reply to a job without a body)."""

    model_version: str


class BatchScored(NamedTuple):
    batch: Batch


class BatchRefused(NamedTuple):
    """The batch is refused as a whole (a 4xx with its detail)."""

    status: int
    detail: str


class ScoringError(NamedTuple):
    """Scoring failed unexpectedly (the serving process logs it and answers 500)."""

    detail: str


Reply = ModelLoaded | BatchScored | BatchRefused | ScoringError


class PreviousFinder:
    """The leads' previous answers as a scorer finds them: rows still queued in the serving process
    first, then the store (on a connection of the scorer's own, one per store URL, kept for the
    scorer's life; skipped while the store is down)."""

    def __init__(self) -> None:
        self._readers: dict[str, LatestReader] = {}

    def lookup(self, view: LogView) -> PreviousLookup:
        queued, url = view
        pending: dict[str, tuple[Any, ...]] = pickle.loads(queued) if queued else {}

        def found_for(ids: list[str]) -> dict[str, Previous]:
            found = {i: Previous._make(pending[i]) for i in ids if i in pending}
            rest = [i for i in ids if i and i not in found]
            if rest and url:
                reader = self._readers.get(url) or self._readers.setdefault(url, LatestReader(url))
                try:
                    found.update(reader.get(rest))
                except (
                    Exception
                ):  # the store went down meanwhile: answer without previous, as the service does
                    pass
            return found

        return found_for


_finder = PreviousFinder()  # this process's readers of the store


def previous_from(view: LogView) -> PreviousLookup:
    """The leads' previous answers, found as this scorer process finds them."""
    return _finder.lookup(view)


def serve(conn: Connection, config: ScorerConfig) -> None:
    """A scorer process: answer jobs until the serving process closes the pipe (or dies)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl+C reaches the whole group: the server decides
    model: Loaded | None = None
    while True:
        try:
            job: Job = conn.recv()
        except (EOFError, OSError):
            return
        try:
            model = _holding(model, job)
            reply: Reply = (
                ModelLoaded(model.model_version)
                if job.body is None
                else BatchScored(_score(model, job, config))
            )
        except Refused as exc:
            reply = BatchRefused(exc.status, exc.detail)
        except Exception as exc:  # reported to the serving process, which logs it and answers 500
            reply = ScoringError(f"{type(exc).__name__}: {exc}")
        try:
            conn.send(reply)
        except (BrokenPipeError, OSError):
            return


def _holding(model: Loaded | None, job: Job) -> Loaded:
    """The model the job is for: the one held, or the one the job brings."""
    if model is not None and model.serial == job.serial:
        return model
    if job.bundle is None:
        raise RuntimeError("scorer asked to score with a model it was not given")
    bundle = pickle.loads(job.bundle)
    model = Loaded(bundle=bundle, checker=LeadChecker(bundle), source="", serial=job.serial)
    gc.unfreeze()
    gc.collect()
    gc.freeze()  # the model lives until the next one: out of the collector's full passes
    return model


def _score(model: Loaded, job: Job, config: ScorerConfig) -> Batch:
    assert job.body is not None
    return score_batch_body(
        model,
        job.body,
        explain=job.explain,
        max_batch=config.max_batch,
        trend_threshold=config.trend_threshold,
        previous=previous_from(job.log) if job.log is not None else None,
        request_id=job.request_id,
        threads=job.threads,
        part=job.part,
    )
