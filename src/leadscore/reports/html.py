"""Self-contained HTML reports: one lead for a sales rep, today's MQL queue, and the model card.

Every page is a single file (inline CSS and SVG, no scripts, no outside resources) that reads
well on screen and on paper. Pages are rendered from jinja2 templates with autoescaping, so CRM
text can never become markup.
"""

from __future__ import annotations

import logging
import math
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from leadscore.data.folders import is_declared_folder, read_leads, with_declared_engagement
from leadscore.data.sources import atomic_path
from leadscore.errors import UserError
from leadscore.features import dates_ms
from leadscore.reports import svg
from leadscore.reports.activity import (
    activity,
    activity_summary,
    lead_events,
    talking_points,
)
from leadscore.reports.stage import Stage, current_stage
from leadscore.scoring.answer import score_parts
from leadscore.scoring.bundle import ModelBundle
from leadscore.scoring.time_head import INTERVALS
from leadscore.spec.reasons import STANDARD_REASONS

log = logging.getLogger(__name__)


def _env() -> Environment:
    env = Environment(
        loader=PackageLoader("leadscore.reports", "templates"),
        autoescape=select_autoescape(["html"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["pct"] = lambda v, d=1: "n/a" if v is None or _nan(v) else f"{float(v):.{d}%}"
    env.filters["num"] = lambda v, d=3: "n/a" if v is None or _nan(v) else f"{float(v):,.{d}f}"
    return env


def _nan(value: Any) -> bool:
    return isinstance(value, float) and math.isnan(value)


def render(template: str, **context: Any) -> str:
    return _env().get_template(template).render(**context)


def write_html(html: str, out: str | Path) -> Path:
    """Write a report atomically (a reader never sees half a page)."""
    out = Path(out)
    if out.suffix.lower() not in {".html", ".htm"}:
        raise UserError(f"{out}: a report must end in .html")
    with atomic_path(out) as tmp:
        tmp.write_text(html, encoding="utf-8")
    return out


# --- one lead ----------------------------------------------------------------------------------


def load_leads(data: str | Path, bundle: ModelBundle) -> pd.DataFrame:
    frame = read_leads(data, bundle.spec)  # a folder of a CRM's own tables: its declared features
    if bundle.id_column and bundle.id_column not in frame.columns:
        raise UserError(f"{data}: id column '{bundle.id_column}' is missing")
    return frame


def find_lead(frame: pd.DataFrame, bundle: ModelBundle, lead_id: str, data: str | Path) -> pd.DataFrame:
    if not bundle.id_column:
        raise UserError(f"model '{bundle.name}' has no id column: leads cannot be looked up by id")
    ids = frame[bundle.id_column].astype("string").str.strip()
    row = frame[(ids == str(lead_id).strip()).fillna(False).to_numpy(dtype=bool)]
    if row.empty:
        raise UserError(f"{data}: no lead with {bundle.id_column} = {lead_id}")
    return row.head(1).reset_index(drop=True)


def human_value(name: str, kind: str, shown: str | None) -> str | None:
    """A model value as a person reads it: days and hours for durations, whole counts and sizes with
    thousands separators, other numbers rounded (never ``0.004``)."""
    if shown is None or kind != "numeric":
        return shown
    try:
        number = float(shown)
    except ValueError:
        return shown
    lowered = name.casefold()
    if "days" in lowered or lowered.endswith(("_age", " age")):
        return _duration(number)
    if number.is_integer():
        return f"{number:,.0f}"
    return f"{number:,.2f}" if abs(number) < 100 else f"{number:,.0f}"


def _duration(days: float) -> str:
    if days < 0:
        return f"{days:,.1f} days"
    hours = days * 24
    if hours < 1:
        return "within the hour"
    if hours < 24:
        return f"{hours:.0f} hour{'s' if round(hours) != 1 else ''} ago"
    whole = round(days)
    return f"{whole:,} day{'s' if whole != 1 else ''} ago"


PERSON_PARTS = ("first name", "last name", "full name", "name", "firstname", "lastname")


def display_line(columns: list[str], record: dict[str, Any]) -> str | None:
    """The spec's ``display`` fields of a lead in one line: its person's name parts joined by a
    space ("Dana Ortiz"), then the others ("Acme GmbH", the owner) after a middle dot; None when empty."""
    values = {c: str(record[c]).strip() for c in columns if not _empty(record.get(c))}
    person = " ".join(v for c, v in values.items() if _part(c) in PERSON_PARTS)
    rest = [v for c, v in values.items() if _part(c) not in PERSON_PARTS]
    line = " · ".join(part for part in (person, *rest) if part)
    return line or None


def _part(column: str) -> str:
    """A column's name as compared with the person's name parts ("First_Name", "first-name" alike)."""
    return " ".join(column.casefold().replace("_", " ").replace("-", " ").split())


def _empty(value: Any) -> bool:
    return value is None or bool(pd.isna(value)) or str(value).strip() == ""


def lead_context(
    bundle: ModelBundle, data: str | Path, lead_id: str, as_of_ms: float | None = None
) -> dict[str, Any]:
    """The lead report's values: the lead as of its own scoring time, or (``as_of_ms``) as of that
    moment (its activity until then, its stage then: no response clock once it is past MQL)."""
    frame = find_lead(load_leads(data, bundle), bundle, lead_id, data)
    if as_of_ms is not None:
        frame = _as_of(frame, bundle, data, as_of_ms)
    record = frame.iloc[0].to_dict()
    result = bundle.score_record(record, explain=5)
    respond = result["respond_within"]
    time_col = bundle.encoder.time_col
    until = float(dates_ms(frame[time_col])[0]) if time_col and time_col in frame.columns else None
    stage = current_stage(
        data, bundle.spec, record.get(bundle.id_column or "", lead_id), until or as_of_ms or 0
    )
    events = lead_events(data, record.get(bundle.id_column or "", lead_id), until, bundle.spec)
    fit_fields, engagement_fields = field_values(bundle, record)
    reasons = result["reasons"]["positive"] + result["reasons"]["negative"]
    chart = svg.hbars(
        [(r["text"], r["weight"]) for r in reasons], unit=" pp", title="Reasons, in points of P(SQL)"
    )
    shown = display_line(bundle.spec.display, record)
    return {
        "title": f"{shown} (lead {lead_id})" if shown else f"Lead {lead_id}",
        "lead_id": lead_id,
        "display": shown,
        "result": result,
        "gauge": svg.score_gauge(result["p_sql"], bundle.threshold_for(record)),
        "reasons_chart": chart,
        "respond": None if stage is not None and stage.past_mql else respond,
        "respond_text": _respond_text(respond, stage),
        "stage": stage,
        "summary": activity_summary(events, until, bundle.spec.event_labels) if events is not None else None,
        "timeline": activity(events, bundle.spec.event_labels) if events is not None else [],
        "has_events": events is not None,
        "talking_points": talking_points(
            result, events, "" if stage is not None and stage.past_mql else respond
        ),
        "trend": _logged_trend(result, record.get(bundle.id_column or "", lead_id)),
        "fit_fields": fit_fields,
        "engagement_fields": engagement_fields,
        **model_ids(bundle),
    }


def field_values(
    bundle: ModelBundle, record: dict[str, Any]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The fields a lead was scored on as people read them (label, value), fit then engagement."""
    fields = []
    for f in bundle.encoder.fields:
        shown = human_value(f.name, f.kind, bundle.encoder.describe_value(f.name, record.get(f.name)))
        fields.append({"label": bundle.phraser.label(f.name), "value": shown, "group": f.group})
    return [f for f in fields if f["group"] == "fit"], [f for f in fields if f["group"] != "fit"]


def _logged_trend(result: dict[str, Any], lead_id: Any) -> dict[str, Any] | None:
    """The lead's trend against its last score in the store's score log (None when never logged or
    the store cannot be read: a report is still written)."""
    return _logged_trends([result], [lead_id])[0]


def _logged_trends(results: list[dict[str, Any]], lead_ids: list[Any]) -> list[dict[str, Any] | None]:
    """Each lead's trend against its last logged score, read in one query."""
    from leadscore.config import get_settings
    from leadscore.features.values import lead_key
    from leadscore.scoring.answer import trend_fields
    from leadscore.store.db import open_store, store_exists
    from leadscore.store.scores import latest

    keys = [lead_key(i) for i in lead_ids]
    try:  # a report only reads the score log: it never creates a store
        found = latest(open_store(), keys) if keys and store_exists() else {}
    except Exception as exc:  # the report does not depend on the store
        log.warning("score log not read for the trend: %s", exc)
        found = {}
    threshold = get_settings().trend_threshold
    return [
        trend_fields(result, found[key], threshold) if key in found else None
        for result, key in zip(results, keys, strict=True)
    ]


def lead_report(bundle: ModelBundle, data: str | Path, lead_id: str, as_of_ms: float | None = None) -> str:
    return render("lead.html", **lead_context(bundle, data, lead_id, as_of_ms))


def _respond_text(respond: str, stage: Stage | None) -> str:
    if stage is not None and stage.past_mql:
        return f"already {stage.name} since {stage.since}: no response clock"
    return "within 1 hour (demo or pricing request)" if respond == "1h" else "within 24 hours"


def _as_of(frame: pd.DataFrame, bundle: ModelBundle, data: str | Path, as_of_ms: float) -> pd.DataFrame:
    """The lead scored as of ``as_of_ms``: its scoring moment moved there and (a folder of a CRM's
    tables) its declared features rolled up again from its activity until then."""
    spec = bundle.spec
    time_col = bundle.encoder.time_col or spec.time
    if not time_col:
        raise UserError(f"--as-of: model '{bundle.name}' has no time column to score a lead as of a day")
    moved = frame.assign(**{time_col: pd.Timestamp(int(as_of_ms), unit="ms")})
    if spec.definitions and is_declared_folder(data, spec):
        moved = with_declared_engagement(
            moved.drop(columns=[c for c in spec.definitions if c in moved]), Path(data), spec
        )
    return moved


# --- the MQL queue -----------------------------------------------------------------------------


def queue_context(
    bundle: ModelBundle, data: str | Path, *, day: date | None = None, window: int = 1, limit: int = 200
) -> dict[str, Any]:
    """MQLs among the leads scored on ``day`` (default: the latest day in the data) and the
    ``window - 1`` days before it, best first; all leads when the model has no time column."""
    frame = load_leads(data, bundle)
    time_col = bundle.encoder.time_col
    scope = "all leads in the file"
    if time_col and time_col in frame.columns:
        days = pd.Series(dates_ms(frame[time_col])).floordiv(86_400_000)
        if days.notna().any():
            epoch = date(1970, 1, 1).toordinal()
            last = day.toordinal() - epoch if day is not None else int(days.max())
            inside = ((days > last - window) & (days <= last)).fillna(False).to_numpy(dtype=bool)
            frame = frame[inside].reset_index(drop=True)
            end = date.fromordinal(last + epoch)
            first = date.fromordinal(last - window + 1 + epoch)
            scope = f"leads scored on {end}" if window == 1 else f"leads scored {first} to {end}"
    elif day is not None:
        raise UserError(f"{data}: --day needs a time column, and model '{bundle.name}' has none")
    scored = bundle.score_frame(frame)
    mql_rows = np.flatnonzero(scored.mql)
    order = mql_rows[np.argsort(-scored.p_sql[mql_rows], kind="stable")][:limit]
    top = frame.iloc[order].reset_index(drop=True)
    explained = bundle.score_frame(top, explain=3) if len(top) else None
    rows: list[dict[str, Any]] = []
    parts = score_parts(explained) if explained is not None else []
    for i, result in enumerate(parts):
        record = top.iloc[i].to_dict()
        rows.append(
            {
                "rank": i + 1,
                "lead_id": record.get(bundle.id_column) if bundle.id_column else i + 1,
                "display": display_line(bundle.spec.display, record),
                "result": result,
                "respond": bundle.respond_within(record),
            }
        )
    trends = _logged_trends([r["result"] for r in rows], [r["lead_id"] for r in rows])
    for i, (row, trend) in enumerate(zip(rows, trends, strict=True)):
        row["trend"] = trend
        row["segment"] = (
            explained.segment[i] if explained is not None and explained.segment is not None else None
        )
    return {
        "title": "MQL queue",
        "scope": scope,
        "n_leads": len(frame),
        "n_mql": len(mql_rows),
        "expected_sql": float(scored.p_sql[mql_rows].sum()),
        **_expected_soon(bundle, frame.iloc[mql_rows]),
        "shown": len(rows),
        "rows": rows,
        "fast": sum(r["respond"] == "1h" for r in rows),
        "segments": _queue_segments(bundle, scored),
        **model_ids(bundle),
    }


def _expected_soon(bundle: ModelBundle, mqls: pd.DataFrame) -> dict[str, float | None]:
    """What sales can plan with: the SQLs expected among the current MQLs within 7 and 30 days (the
    time head's horizons; None for a model without one)."""
    if bundle.time_head is None or mqls.empty:
        return {"expected_sql_7d": None, "expected_sql_30d": None}
    cum = bundle.time_head.cumulative(bundle.encode(mqls))  # one walk of the trees for both horizons
    return {
        "expected_sql_7d": float(cum[:, INTERVALS.index(7.0) - 1].sum()),
        "expected_sql_30d": float(cum[:, INTERVALS.index(30.0) - 1].sum()),
    }


def _queue_segments(bundle: ModelBundle, scored: Any) -> list[dict[str, Any]]:
    """A routing bundle's queue per segment: leads, MQLs, expected SQLs and MQL->SQL rate (mean
    P(SQL) of its MQLs) against what its cutoff promised at training."""
    routing = bundle.meta.segments
    if routing is None or scored.segment is None:
        return []
    promised = {m.name: m for m in routing.models.values()}
    names = pd.Series(scored.segment, dtype=object).fillna("(missing)").to_numpy(dtype=object)
    out = []
    for name in sorted(set(names.tolist())):
        rows = names == name
        mql = scored.mql & rows
        seg = promised.get(name)
        cut = seg.cutoff if seg is not None else None
        out.append(
            {
                "segment": name,
                "model": seg.model if seg is not None else "global",
                "leads": int(rows.sum()),
                "mql": int(mql.sum()),
                "mql_share": float(mql.sum() / rows.sum()),
                "expected_mql_share": cut.expected_mql_share if cut is not None else None,
                "expected_sql": float(scored.p_sql[mql].sum()),
                "expected_sql_rate": float(scored.p_sql[mql].mean()) if mql.any() else None,
                "promised_sql_rate": cut.promised_sql_rate if cut is not None else None,
            }
        )
    return out


def queue_report(
    bundle: ModelBundle, data: str | Path, *, day: date | None = None, window: int = 1, limit: int = 200
) -> str:
    return render("queue.html", **queue_context(bundle, data, day=day, window=window, limit=limit))


# --- the model card ----------------------------------------------------------------------------


def model_ids(bundle: ModelBundle) -> dict[str, Any]:
    registered = bundle.meta.registered
    version = f"{registered.name} v{registered.version}" if registered is not None else bundle.version
    return {
        "model_name": bundle.name,
        "model_version": version,
        "bundle_version": bundle.version,
        "cutoff_version": bundle.cutoff_version,
        "threshold": bundle.threshold,
    }


# --- the monitor -------------------------------------------------------------------------------


def monitor_report(bundle: ModelBundle, result: dict[str, Any]) -> str:
    top = result["fields"][:15]
    chart = svg.hbars([(f["field"], f["psi"]) for f in top], title="PSI per field (largest first)")
    return render(
        "monitor.html",
        title=f"Model monitor: {bundle.name}",
        r=result,
        psi_chart=chart,
        reasons=STANDARD_REASONS,
        **model_ids(bundle),
    )


def backtest_report(result: dict[str, Any]) -> str:
    """The month-by-month backtest as a page: would the model have worked, month after month?"""
    return render(
        "backtest.html",
        title=f"Backtest: {result['dataset']}",
        r=result,
        model_name=result["dataset"],
        model_version="one per month",
        bundle_version="backtest",
        cutoff_version=result["cutoff_version"],
        threshold=None,
    )
