"""One-lead requests that arrive together, answered together.

Under concurrent load the event loop holds several ``POST /v1/score`` requests at once. The first
request of a turn of the loop yields once; the requests that are ready in that turn check their
leads and join it; it then answers them all and each request sends its own answer. Three or more
leads are answered as one batch (one call of each booster, TreeSHAP from the tables), which costs
a lead about a third less at four leads and half at eight; fewer are answered one at a time through
the single-row path (quicker for them). A lone request waits one turn of the loop. Each request
gets exactly its own ``Answered`` (its answer, its log row with its request id, its alerts and
figures): the bytes it gets alone (a row of the tables is the same alone or in a block). A group
that fails is answered again one lead at a time, so one bad lead fails only its own request
(docs/performance.md).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import NamedTuple

from leadscore.service.answering import Answered, PreviousLookup, answer_leads
from leadscore.service.leads import CheckedLead
from leadscore.service.loaded import Loaded

log = logging.getLogger(__name__)

GROUP_MIN = 3  # fewer are answered one at a time: two leads cost more together than alone
GROUP_MAX = 64  # the most leads answered as one batch (a bigger wave is answered in several)


class Asked(NamedTuple):
    """What one request asks: its lead, how it is answered, and where its answer goes (None: the
    request that answers the others, which keeps its own)."""

    model: Loaded
    lead: CheckedLead
    explain: int
    request_id: str | None
    previous: PreviousLookup | None
    trend_threshold: float
    future: asyncio.Future[Answered] | None

    def alike(self) -> tuple[int, int, bool, float]:
        """Requests that may be answered together: the same model, reasons and logging."""
        return id(self.model), self.explain, self.previous is None, self.trend_threshold


class OneLeads:
    """The requests that arrived in one turn of the event loop, answered together by the first."""

    def __init__(self, enabled: bool = True, observe: Callable[[int], None] | None = None) -> None:
        self.enabled = enabled
        self.observe = observe  # told each turn's number of requests (the service's metrics)
        self._waiting: list[Asked] = []

    async def answer(
        self,
        model: Loaded,
        lead: CheckedLead,
        *,
        explain: int,
        request_id: str | None,
        previous: PreviousLookup | None,
        trend_threshold: float,
    ) -> Answered:
        """The lead's ``Answered``, with whatever other leads arrived in the same turn of the loop.

        The first request of a turn yields once (the others that are ready then join it), answers
        them all, and keeps its own answer; the others wait for theirs."""
        leader = not self._waiting
        future = None if leader else asyncio.get_running_loop().create_future()
        mine = Asked(model, lead, explain, request_id, previous, trend_threshold, future)
        if not self.enabled:
            return _answer_alone(mine)
        self._waiting.append(mine)
        if future is not None:
            return await future
        try:
            await asyncio.sleep(0)  # one turn: the requests that are ready now join this one
        finally:  # even when this request is cancelled meanwhile, the others get their answers
            waiting, self._waiting = self._waiting, []
            if self.observe is not None:
                self.observe(len(waiting))
            if len(waiting) > 1:
                answers = _answer_all(waiting)
        if len(waiting) == 1:  # alone (one connection): straight to its answer
            return _answer_alone(mine)
        result = answers[id(mine)]
        if isinstance(result, BaseException):
            raise result
        return result


def _answer_all(waiting: list[Asked]) -> dict[int, Answered | BaseException]:
    """Everyone's answer in ``waiting`` by ``id``, the followers' also set on their futures (each
    settled, whatever happens here: none is left waiting)."""
    answers: dict[int, Answered | BaseException] = {}
    try:
        _answer_groups(waiting, answers)
    finally:
        for asked in waiting:
            if asked.future is not None and not asked.future.done():  # done: the request went away
                result = answers.get(id(asked)) or RuntimeError("the lead was not answered")
                if isinstance(result, BaseException):
                    asked.future.set_exception(result)
                else:
                    asked.future.set_result(result)
    return answers


def _answer_groups(waiting: list[Asked], answers: dict[int, Answered | BaseException]) -> None:
    """The answers of ``waiting`` into ``answers``: alike requests in groups, each group together
    from ``GROUP_MIN`` leads, else one at a time."""
    groups: dict[tuple[int, int, bool, float], list[Asked]] = {}
    for asked in waiting:
        groups.setdefault(asked.alike(), []).append(asked)
    for group in groups.values():
        for start in range(0, len(group), GROUP_MAX):
            part = group[start : start + GROUP_MAX]
            together = _answer_together(part) if len(part) >= GROUP_MIN else None
            results: list[Answered | BaseException] = (
                list(together) if together is not None else [_answer_one(a) for a in part]
            )
            for asked, answered in zip(part, results, strict=True):
                answers[id(asked)] = answered


def _answer_together(group: list[Asked]) -> list[Answered] | None:
    """The group's answers as one batch (None: it failed, and each is to be answered alone)."""
    first = group[0]
    try:
        done = answer_leads(
            first.model,
            [asked.lead for asked in group],
            explain=first.explain,
            threads=1,
            trend_threshold=first.trend_threshold,
            previous=first.previous,
        )
        return done.split([asked.request_id for asked in group])
    except Exception:  # one lead the batch path cannot take: each is answered alone
        log.exception("%d leads answered together failed; each is answered alone", len(group))
        return None


def _answer_one(asked: Asked) -> Answered | BaseException:
    try:
        return _answer_alone(asked)
    except Exception as exc:
        return exc


def _answer_alone(asked: Asked) -> Answered:
    return answer_leads(
        asked.model,
        [asked.lead],
        explain=asked.explain,
        threads=1,
        trend_threshold=asked.trend_threshold,
        previous=asked.previous,
        request_id=asked.request_id,
    )
