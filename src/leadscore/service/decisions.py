"""A rep's accept or reject through the API (``POST /v1/leads/{id}/decision``): checked as ``feedback
import`` checks an export's row (the standard reasons and their spellings, a rejection needs one) and
written into the same table with the same key (lead, decision, time), so sending it twice records it
once, the SLA report and the next training see it at once, and an MQL alert stops waiting for it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import pandas as pd

from leadscore.features import clean_text, parse_date
from leadscore.features.values import id_problem, lead_key
from leadscore.store.db import open_store
from leadscore.store.decisions import add_decisions, decision_of, reasons_said, standard_reason

MAX_REP = 200


class DecisionError(ValueError):
    """A decision the store cannot take; ``field`` names where (a 422)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


def checked_decision(lead_id: str, body: Any, rep: str | None, own: Sequence[str] = ()) -> dict[str, Any]:
    """The decision as the store keeps it (``rep``: the name a rep's key carries; else the body's;
    ``own``: the spec's own reasons, taken beside the standard ones)."""
    if not isinstance(body, Mapping):
        raise DecisionError("body", "must be a JSON object with 'decision' (and 'reason' to reject)")
    key = lead_key(lead_id)
    problem = id_problem(key) if key else "an empty lead id"
    if problem:
        raise DecisionError("lead_id", problem)
    decision = decision_of(body.get("decision"))
    if decision is None:
        raise DecisionError("decision", f"'{body.get('decision')}' is not accepted or rejected")
    reason = None
    if decision == "rejected":
        reason = standard_reason(body.get("reason"), own)
        if reason in (None, "?"):
            shown = body.get("reason")
            why = "a rejection needs a reason" if reason is None else f"'{shown}' is not a standard reason"
            raise DecisionError("reason", f"{why} ({reasons_said(own)})")
    who = rep or clean_text(body.get("rep"))
    if not who:
        raise DecisionError("rep", "who decided: a rep's key names them, or send 'rep' with the CRM's key")
    if len(who) > MAX_REP:
        raise DecisionError("rep", f"longer than {MAX_REP} characters")
    return {
        "lead_id": key,
        "decision": decision,
        "reason": reason,
        "decided_at": _time(body.get("decided_at"), "decided_at") or datetime.now(UTC).replace(tzinfo=None),
        "mql_at": _time(body.get("mql_at"), "mql_at"),
        "rep": who,
    }


def _time(value: Any, field: str) -> datetime | None:
    if value is None:
        return None
    ms = parse_date(value) if isinstance(value, str) else float("nan")
    if ms != ms:
        raise DecisionError(field, f"'{value}' is not a date and time (ISO 8601)")
    return pd.Timestamp(int(ms), unit="ms").to_pydatetime()


def record_decision(database_url: str, decision: dict[str, Any]) -> bool:
    """Write it (True: new; False: the same decision was recorded before)."""
    new, _ = add_decisions(open_store(database_url), pd.DataFrame([decision]))
    return new > 0
