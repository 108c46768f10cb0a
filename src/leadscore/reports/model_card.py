"""The model card: what a quarterly review reads about a model, from its bundle alone."""

from __future__ import annotations

import math
from datetime import date
from typing import Any

from leadscore.modeling.finalize import learned_line
from leadscore.reports import svg
from leadscore.reports.html import model_ids, render
from leadscore.scoring.bundle import ModelBundle
from leadscore.scoring.meta import CardFacts
from leadscore.scoring.segment_keys import segment_rows
from leadscore.spec import MIN_SEGMENT_CLASS

__all__ = ["card_context", "model_card"]


# What a card calls its rows, its positive class, its score and its flag: a lead model's leads and
# SQLs, an account model's account moments and opportunities.
LEAD_WORDS = {
    "rows": "leads",
    "positive": "SQL",
    "positives": "SQLs",
    "score": "P(SQL)",
    "flag": "MQL",
    "rate": "MQL→SQL",
}
ACCOUNT_WORDS = {
    "rows": "account moments",
    "positive": "opportunity",
    "positives": "Opportunities",
    "score": "P(opportunity)",
    "flag": "qualified account",
    "rate": "qualified→opportunity",
}


# The pipeline's own sentences (the contract's policy, its warnings, the run's notes) speak of leads;
# an account model's card says them in its words, longest phrases first.
ACCOUNT_PHRASES = (
    ("MQL->SQL", "qualified->opportunity"),
    ("MQL→SQL", "qualified→opportunity"),
    ("P(SQL)", "P(opportunity)"),
    ("MQLs", "qualified accounts"),
    ("MQL", "qualified"),
    ("SQLs", "opportunities"),
    ("SQL", "opportunity"),
    ("leads", "account moments"),
)


def said(text: str | None, account: bool) -> str | None:
    """``text`` in the card's words (an account model's, or unchanged for a lead model)."""
    if text is None or not account:
        return text
    for lead_words, account_words in ACCOUNT_PHRASES:
        text = text.replace(lead_words, account_words)
    return text


def model_card(bundle: ModelBundle, today: date | None = None) -> str:
    return render("model.html", **card_context(bundle, today))


def card_context(bundle: ModelBundle, today: date | None = None) -> dict[str, Any]:
    meta = bundle.meta
    card, cutoff = meta.card, meta.cutoff
    contract = cutoff.contract
    metrics = meta.metrics
    account = bundle.spec.account_of is not None
    vocab = ACCOUNT_WORDS if account else LEAD_WORDS
    models = [("LightGBM (this model)", metrics)] + [
        (name.replace("_", " "), m) for name, m in meta.baselines.items()
    ]
    return {
        "title": f"Model card: {bundle.name}",
        "card": card,
        "data": card.data,
        "metrics": metrics,
        "models": models,
        "cutoff": cutoff,
        "contract": contract,
        "review_by": contract.review_by.isoformat(),
        "overdue": cutoff.review_warning(today) is not None,
        **_charts(bundle, card, vocab),
        "excluded": meta.excluded_columns,
        "suspects": meta.leakage_suspects,
        "leakage": card.leakage,
        "fields": [
            {"name": f.name, "kind": f.kind, "group": f.group, "label": bundle.phraser.label(f.name)}
            for f in bundle.encoder.fields
        ],
        "shape": "group-pure (fit and engagement trees apart)" if bundle.group_pure else "mixed trees",
        "segments": _segments(bundle),
        "time_head": _time_head(bundle.meta.time_head),
        "learned": learned_line(meta.learned_from, vocab["rows"], vocab["positive"])
        if meta.learned_from
        else None,
        "vocab": vocab,
        "said": {
            "policy": said(cutoff.policy, account),
            "measured_on": said(cutoff.measured_on, account),
            "warnings": [said(w, account) for w in cutoff.warnings],
            "notes": [said(n, account) for n in card.notes],
        },
        "score_label": vocab["score"],
        "finalized": bool(meta.learned_from and meta.learned_from.get("finalized")),
        **model_ids(bundle),
    }


def _charts(bundle: ModelBundle, card: CardFacts, vocab: dict[str, str]) -> dict[str, str]:
    """Reliability and gains on the test rows, and each field's share of the attribution (SVG)."""
    reliability = card.reliability
    rel_chart = (
        svg.line_chart(
            [
                (
                    "model",
                    [r["predicted"] for r in reliability],
                    [r["observed"] for r in reliability],
                    svg.NEUTRAL,
                )
            ],
            x_label=f"predicted {vocab['score']}",
            y_label=f"observed {vocab['positive']} rate",
            diagonal=True,
            x_max=_axis_max(reliability),
            y_max=_axis_max(reliability),
            title=f"Reliability on test {vocab['rows']}",
        )
        if reliability
        else ""
    )
    gains = card.gains
    gain_series = [("model", gains.get("share_contacted", []), gains.get("model", []), svg.NEUTRAL)]
    if gains.get("points_model"):
        gain_series.append(("points model", gains["share_contacted"], gains["points_model"], "#b54708"))
    gains_chart = (
        svg.line_chart(
            gain_series,
            x_label=f"share of {vocab['rows']} contacted, best first",
            y_label=f"share of {vocab['positives'].lower()} found",
            diagonal=True,
            title=f"Gains on test {vocab['rows']}",
        )
        if gains
        else ""
    )
    importance = sorted(card.importance.items(), key=lambda kv: -kv[1])
    shap_chart = svg.hbars(
        [(bundle.phraser.label(k), v * 100) for k, v in importance],
        unit="%",
        title="Share of mean |SHAP| per field",
    )
    return {"rel_chart": rel_chart, "gains_chart": gains_chart, "shap_chart": shap_chart}


def _time_head(facts: dict[str, Any] | None) -> dict[str, Any] | None:
    """The time head's evidence with its horizons in order (7, 30, 90 days)."""
    if facts is None:
        return None
    horizons = sorted(facts.get("horizons", {}).items(), key=lambda kv: int(kv[0]))
    return {**facts, "horizons": dict(horizons)}


def _segments(bundle: ModelBundle) -> dict[str, Any] | None:
    meta = bundle.meta
    if meta.segments is None:
        return None
    return {
        "by": meta.segments.by,
        "min_sql": bundle.spec.segments.min_sql if bundle.spec.segments else MIN_SEGMENT_CLASS,
        "rows": segment_rows(meta.segments),
    }


def _axis_max(rows: list[dict[str, float]]) -> float:
    top = max([r["predicted"] for r in rows] + [r["observed"] for r in rows] + [0.05])
    return float(min(1.0, math.ceil(top * 10 + 0.5) / 10))
