"""The answer for a lead: what the API sends, the batch file writes and the score log keeps.

One place turns a model's ``Scored`` and its reasons into answers, so the service, batch scoring,
the reports, the pyfunc and the notebooks cannot disagree: ``score_parts`` (p_sql, mql, grade,
parts, reasons), ``answers`` (those plus the lead id, segment, respond-within rule, versions and
warnings), ``log_rows`` (the score log's rows of answers) and ``trend_fields`` (how the answer moved
since the lead's previous logged one).
"""

from __future__ import annotations

import functools
import math
import operator
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, NamedTuple

import orjson

from leadscore.features import to_number
from leadscore.features.values import lead_key
from leadscore.scoring.predictor import Predictor, Scored
from leadscore.scoring.reasons import api_reasons, reasons_dict
from leadscore.scoring.router import ALL_ROWS, Route, SegmentRouter
from leadscore.scoring.segment_keys import GLOBAL
from leadscore.spec import DatasetSpec
from leadscore.store.scores import Previous, ScoreRow, now_utc, plain_value

Answer = dict[str, Any]
RECENT_KEY = "\x00recent"  # a checked lead's record: the events it was sent with (the page's timeline)
RECENT_EVENTS = 20  # events a lead's timeline keeps


class Named(NamedTuple):
    """Who answers: the lead-id column, the versions every answer names, warnings for every lead,
    and each lead's time to SQL (the bundle's time head; null fields without one)."""

    id_column: str | None
    model_version: str
    cutoff_version: str
    shared_warnings: list[str]
    times: list[dict[str, Any]] | None = None


NO_TIMES = {"p_sql_7d": None, "p_sql_30d": None, "expected_days_to_sql": None}


def respond_within(spec: DatasetSpec, record: Mapping[str, Any]) -> str:
    """The service level for this lead: 1 hour for demo or pricing requests, else 24 hours."""
    for name in spec.respond_fast_when:
        number = to_number(record.get(name))
        if not math.isnan(number) and number > 0:
            return "1h"
    return "24h"


def trend_fields(answer: Mapping[str, Any], previous: Previous | None, threshold: float) -> dict[str, Any]:
    """``previous``, ``trend`` and ``crossed_cutoff`` for one answer (all null for a lead never logged)."""
    if previous is None:
        return {"previous": None, "trend": None, "crossed_cutoff": None}
    change = float(answer["p_sql"]) - previous.p_sql
    trend = "improving" if change >= threshold else "declining" if change <= -threshold else "steady"
    return {
        "previous": previous.to_dict(),
        "trend": trend,
        "crossed_cutoff": bool(answer["mql"]) != previous.mql,
    }


def score_parts(scored: Scored, reasons: list[dict[str, list[dict[str, Any]]]] | None = None) -> list[Answer]:
    """The score part of each lead's answer (p_sql, mql, grade, fit, engagement, reasons), reading
    each array once (a 1,000-lead batch is on the request path); ``reasons``: the API's reasons
    when already made (``api_reasons``), else the phrased ones in ``scored``."""
    p = [round(v, 6) for v in scored.p_sql.tolist()]
    fit = [round(v, 4) for v in scored.fit_part.tolist()]
    eng = [round(v, 4) for v in scored.engagement_part.tolist()]
    mql, grade = scored.mql.tolist(), scored.grade.tolist()
    fit_band, eng_band = scored.fit_band.tolist(), scored.engagement_band.tolist()
    if reasons is None:
        reasons = [reasons_dict(r) for r in (scored.reasons or [[] for _ in p])]
    return [
        {
            "p_sql": p[i],
            "mql": mql[i],
            "grade": grade[i],
            "fit": {"band": fit_band[i], "log_odds": fit[i]},
            "engagement": {"band": eng_band[i], "log_odds": eng[i]},
            "reasons": reasons[i],
        }
        for i in range(len(p))
    ]


def answers(
    main: Predictor,
    router: SegmentRouter | None,
    records: Sequence[Mapping[str, Any]],
    *,
    explain: int = 5,
    warnings: Sequence[Sequence[str]] | None = None,
    num_threads: int | None = None,
) -> tuple[list[Answer], Scored]:
    """The whole answer for each lead (what the API sends), and the scores behind them: ``main``
    (the bundle's global model) answers, or with a ``router`` each lead's segment model."""
    X = main.encoder.encode_records(records)
    kw: dict[str, Any] = {"explain": explain, "records": records, "num_threads": num_threads, "phrase": False}
    times = main.time_head.answer_fields(X, num_threads) if main.time_head is not None else None
    if router is None:
        named = _named(main, main, times)
        answered = _answered(main, named, records, main.score_matrix(X, **kw), explain, warnings)
    else:
        keys = [router.key(r) for r in records]
        if len(records) == 1 and keys[0] is not None and keys[0] in router.models:
            # one lead of a known segment: its model answers, named as the bundle (its version, segment)
            model = router.models[keys[0]]
            scored = router.name_rows(model.score_matrix(X, **kw), [Route(keys[0], model, ALL_ROWS)], 1)
            answered = _answered(model, _named(main, model, times), records, scored, explain, warnings)
        else:
            scored = router.score(X, keys, **kw)
            unrouted = _unrouted(router, records, keys)
            answered = _answered(
                main, _named(main, main, times), records, scored, explain, warnings, unrouted
            )
    answered[1].inputs = X  # the rows the bundle's encoder made: ``changes`` compares against them
    return answered


def _named(main: Predictor, model: Predictor, times: list[dict[str, Any]] | None) -> Named:
    """The bundle's identity, with the review warning of the cutoff the answering model is held to."""
    overdue = model.meta.cutoff.review_warning()
    meta = main.meta
    return Named(main.spec.id, meta.model_version, meta.cutoff_version, [overdue] if overdue else [], times)


def _unrouted(
    router: SegmentRouter, records: Sequence[Mapping[str, Any]], keys: list[str | None]
) -> dict[int, tuple[str, str | None]]:
    """Leads scored by the global model for want of a known segment: their warning and, for a new
    segment, the segment as it was sent."""
    return {
        i: (router.unrouted(records[i], key), router.reader.shown(records[i]) if key is not None else None)
        for i, key in enumerate(keys)
        if key not in router.models
    }


def _answered(
    model: Predictor,
    named: Named,
    records: Sequence[Mapping[str, Any]],
    scored: Scored,
    explain: int,
    warnings: Sequence[Sequence[str]] | None,
    unrouted: Mapping[int, tuple[str, str | None]] | None = None,
) -> tuple[list[Answer], Scored]:
    """Each lead's answer from its scores: the score part, then who it is and who answered."""
    said = (
        api_reasons(records, scored.weights, explain, model.fields, model._group_names, model.phraser)
        if scored.weights is not None
        else None
    )
    n = len(records)
    parts = score_parts(scored, said)
    segment = scored.segment.tolist() if scored.segment is not None else [None] * n
    segment_model = scored.segment_model.tolist() if scored.segment_model is not None else [GLOBAL] * n
    out = []
    for i, record in enumerate(records):
        own = [*(warnings[i] if warnings is not None else ())]
        if unrouted is not None and i in unrouted:
            warning, shown = unrouted[i]
            own.append(warning)
            if shown is not None:
                segment[i] = shown
        out.append(
            {
                "lead_id": record.get(named.id_column) if named.id_column else None,
                **parts[i],
                **(named.times[i] if named.times is not None else NO_TIMES),
                "segment": segment[i],
                "segment_model": segment_model[i],
                "respond_within": respond_within(model.spec, record),
                "model_version": named.model_version,
                "cutoff_version": named.cutoff_version,
                "warnings": [*own, *named.shared_warnings],
            }
        )
    return out, scored


def log_rows(
    answers: Sequence[Mapping[str, Any]],
    records: Sequence[Mapping[str, Any]],
    *,
    model_name: str,
    fields: Sequence[str],
    source: str,
    request_id: str | None = None,
    scored_at: datetime | None = None,
    shown: Sequence[str] = (),
    source_field: str | None = None,
    inputs: Sequence[str] | None = None,
) -> list[ScoreRow]:
    """Log rows for answers (same order as the leads' records), made by name (``ScoreRow``, a tuple
    in ``SCORE_COLUMNS`` order: how rows travel to the writer and into the driver): ids, scores and
    the model's own fields, never anything else the CRM sent. ``reasons`` and ``inputs`` are JSON text already, made
    where the rows are made (a batch scorer process), not by the writer.

    The model's fields are picked by one ``itemgetter`` (docs/performance.md). What the pages read
    rides along for ``latest_scores`` only: the top reasons' texts, segment, respond-within, and the
    ``shown`` (the spec's display) and ``source_field`` values as sent. ``inputs``: the records'
    ``log_inputs``, when they were made already (the one-lead path needs them before it answers)."""
    when = scored_at or now_utc()
    model_name = str(model_name)
    if inputs is None:
        inputs = log_inputs(records, fields)
    dumps = orjson.dumps
    out = []
    make = functools.partial(tuple.__new__, ScoreRow)  # positional, without NamedTuple's keyword call
    for answer, record, logged in zip(answers, records, inputs, strict=True):
        reasons = answer.get("reasons") or {}
        positive = reasons.get("positive", ())
        fit, engagement = answer.get("fit"), answer.get("engagement")
        segment = answer.get("segment")
        out.append(
            make(
                (
                    lead_key(answer.get("lead_id")),
                    when,
                    model_name,
                    str(answer.get("model_version") or ""),
                    answer.get("cutoff_version"),
                    float(answer["p_sql"]),
                    bool(answer["mql"]),
                    str(answer["grade"]),
                    fit.get("log_odds") if fit else None,
                    engagement.get("log_odds") if engagement else None,
                    dumps(
                        [r["field"] for side in ("positive", "negative") for r in reasons.get(side, ())]
                    ).decode(),
                    logged,
                    request_id,
                    source,
                    dumps([r.get("text") for r in positive[:3]]).decode(),  # top_reasons
                    segment if segment.__class__ is str and 0 < len(segment) <= 200 else _text(segment),
                    answer.get("respond_within"),
                    _text(record.get(source_field)) if source_field else None,  # lead_source
                    _shown(record, shown) if shown else None,  # display
                    _recent(record[RECENT_KEY]) if RECENT_KEY in record else None,  # activity
                )
            )
        )
    return out


def log_inputs(records: Sequence[Mapping[str, Any]], fields: Sequence[str]) -> list[str]:
    """Each record's values of the model's fields as the score log keeps them (``inputs``, JSON
    text): what the next answer for the lead compares itself with (``changes``)."""
    names = tuple(fields)
    pick = _picker(names)
    dumps = orjson.dumps
    out = []
    for record in records:
        values = pick(record)
        if set(map(type, values)) <= _PLAIN:  # NaN floats are null in both ways
            out.append(dumps(dict(zip(names, values, strict=True))).decode())
        else:
            out.append(dumps({f: plain_value(v) for f, v in zip(names, values, strict=True)}).decode())
    return out


def _text(value: Any, limit: int = 200) -> str | None:
    """A value as a short text column keeps it (None for a missing one)."""
    plain = plain_value(value)
    return None if plain is None or plain == "" else str(plain)[:limit]


def _recent(events: Any) -> str | None:
    """The last events a lead was sent with, as sent (JSON text; None without any)."""
    if not isinstance(events, list) or not events:
        return None
    kept = [
        {str(k): plain_value(v) for k, v in e.items()}
        for e in events[-RECENT_EVENTS:]
        if isinstance(e, Mapping)
    ]
    return orjson.dumps(kept).decode() if kept else None


def _shown(record: Mapping[str, Any], shown: Sequence[str]) -> str | None:
    """The display fields as sent (JSON text; None without any)."""
    values = {c: v for c in shown if (v := _text(record.get(c), 500)) is not None}
    return orjson.dumps(values).decode() if values else None


def _picker(names: tuple[str, ...]) -> Callable[[Mapping[str, Any]], tuple[Any, ...]]:
    """A record's values of ``names``, in order (a field it lacks is None)."""
    if len(names) < 2:
        return lambda record: tuple(record.get(n) for n in names)
    getter = operator.itemgetter(*names)

    def pick(record: Mapping[str, Any]) -> tuple[Any, ...]:
        try:
            return getter(record)
        except KeyError:  # a lead sent without some fields
            return tuple(record.get(n) for n in names)

    return pick


_PLAIN = frozenset({type(None), bool, int, float, str})
