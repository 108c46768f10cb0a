"""Request and response models of the API, named by role."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field


class ReasonOut(BaseModel):
    """One field's push on the score, in plain language, with its weight in percentage points."""

    field: str
    text: str
    weight: float = Field(description="Percentage points of P(SQL) this field adds (+) or removes (-).")
    group: str = Field(description="fit or engagement")


class ReasonsOut(BaseModel):
    positive: list[ReasonOut]
    negative: list[ReasonOut]


class PartOut(BaseModel):
    band: str = Field(description="Fit band A-D or engagement band 1-4 (A and 1 are best).")
    log_odds: float = Field(
        description="The part's contribution to the score, in log-odds around the average lead."
    )


class PreviousOut(BaseModel):
    """The lead's last logged answer (from the store's score log)."""

    p_sql: float
    grade: str
    mql: bool
    scored_at: str = Field(description="When it was logged (UTC, ISO 8601).")


class AccountScoreOut(BaseModel):
    """A scored account (``POST /v1/accounts/score``)."""

    account_id: str = Field(description="The account's id as sent.")
    scored_at: str = Field(description="The moment it was scored as of (UTC).")
    p_opportunity: float = Field(description="Calibrated P(an opportunity within the label window).")
    qualified: bool = Field(description="Whether the contract's account cutoff makes it a qualified account.")
    grade: str = Field(description="Fit band and engagement band, e.g. A2.")
    reasons: list[str] = Field(description="The strongest reasons, with their weight in percentage points.")
    contacts_engaged: int = Field(description="The account's people with activity in the last 30 days.")
    roles_engaged: list[str] = Field(description="The spec's buying-group roles with activity in 30 days.")
    roles_missing: list[str] = Field(description="The spec's roles without any.")
    model_version: str


class ChangeOut(BaseModel):
    """A field whose weight in P(SQL) moved since the previous answer."""

    field: str
    label: str
    before: str = Field(description="Its value then, as a person reads it ('not given' when missing).")
    after: str
    points: float = Field(description="How far its weight moved, in percentage points of P(SQL).")
    text: str = Field(description="e.g. 'Pricing page visits in the last 7 days: 0 -> 3, +12 points'.")


class ScoreOut(BaseModel):
    """A scored lead."""

    lead_id: Any = Field(description="The lead's id as sent (null when the lead had none).")
    p_sql: float = Field(
        description="Calibrated probability that the lead reaches SQL within the label window."
    )
    mql: bool = Field(description="Whether the agreed cutoff makes this lead an MQL.")
    grade: str = Field(description="Fit band and engagement band, e.g. B2.")
    fit: PartOut
    engagement: PartOut
    reasons: ReasonsOut
    segment: str | None = Field(
        None,
        description="The lead's segment (a segmented model's routing value, e.g. its region); null for a "
        "model without segments or a lead without the segment's value.",
    )
    segment_model: str = Field(
        "global",
        description="The sub-model that scored the lead: the segment's own name, or 'global' (the global "
        "model: one model, a small or unknown segment, or a segment the global model serves better).",
    )
    p_sql_7d: float | None = Field(
        None, description="Calibrated P(SQL within 7 days) from the time-to-SQL head; null without one."
    )
    p_sql_30d: float | None = Field(None, description="P(SQL within 30 days); null without a time head.")
    expected_days_to_sql: float | Literal["over 90"] | None = Field(
        None,
        description="The day by which P(SQL) reaches one half, or 'over 90' when it stays below one half "
        "within 90 days; null without a time head.",
    )
    respond_within: str = Field(description="Service level: 1h for demo or pricing requests, else 24h.")
    model_version: str
    cutoff_version: str
    warnings: list[str]
    previous: PreviousOut | None = Field(
        None, description="The lead's last logged answer; null for a lead never scored before (or no log)."
    )
    trend: Literal["improving", "steady", "declining"] | None = Field(
        None,
        description="P(SQL) against the previous answer: a change of at least LEADSCORE_TREND_THRESHOLD "
        "is improving or declining, else steady; null without a previous answer.",
    )
    crossed_cutoff: bool | None = Field(
        None, description="Whether the MQL flag changed since the previous answer."
    )
    changes: list[ChangeOut] | None = Field(
        None,
        description="Why the score moved since the lead's previous logged answer: the fields whose "
        "weight moved most (at least half a point), null without a previous answer.",
    )
    account: AccountScoreOut | None = Field(
        None,
        description="The lead's account's answer, when the lead was sent with its 'account' (the body "
        "/v1/accounts/score takes) and an account model is loaded (serve --accounts-model).",
    )


class LeadErrorOut(BaseModel):
    """A lead in a batch that could not be scored."""

    index: int
    error: dict[str, Any]


class BatchScoreOut(BaseModel):
    results: list[ScoreOut | LeadErrorOut]


class FieldOut(BaseModel):
    name: str
    type: str = Field(description="number, category or date")
    group: str
    categories: list[str] | None = None
    range: list[float | None] | None = None


class ScoreLogOut(BaseModel):
    enabled: bool = Field(description="Answers are logged to the store (LEADSCORE_LOG_SCORES).")
    connected: bool = Field(description="The store is reachable; when not, scoring goes on unlogged.")
    trend_threshold: float = Field(description="The change in P(SQL) that counts as improving or declining.")
    written: int = Field(description="Answers this worker has written to the log.")
    dropped: int = Field(description="Answers this worker could not log.")


class ModelOut(BaseModel):
    """The model answering requests, its evidence and its contract."""

    name: str
    model_version: str
    bundle_version: str
    registered: dict[str, Any] | None
    metrics: dict[str, Any]
    baselines: dict[str, Any]
    cutoff: dict[str, Any]
    cutoff_overdue: bool
    threshold: float
    id_field: str | None
    time_field: str | None
    fields: list[FieldOut]
    excluded_columns: dict[str, str]
    warnings: list[str]
    learned_from: dict[str, Any] | None = Field(
        None,
        description="What the shipped model learned from: every labelled lead when finalized ('rows', "
        "'positives', 'method', 'trees', 'out_of_fold' figures; 'seeds': fits averaged into a cross-fitted "
        "booster), else the split's training rows ('why').",
    )
    events: dict[str, list[str]] | None = Field(
        None, description="Declared engagement: the event types and attributes read from a lead's 'events'."
    )
    score_log: ScoreLogOut | None = Field(None, description="The score log behind previous and trend.")
    segments: dict[str, Any] | None = Field(
        None,
        description="A segmented model: the routing columns ('by') and, per segment, its sub-model, "
        "threshold, held-out ROC AUCs and the cutoff's promise; null for a single model.",
    )


class ErrorOut(BaseModel):
    detail: str


class ReloadOut(BaseModel):
    status: str
    model_version: str
    previous_version: str | None
    generation: int | None = Field(None, description="Several workers: the reload generation they follow.")


class WorkerOut(BaseModel):
    pid: int
    model_version: str | None
    generation: int
    error: str | None
    updated_at: float | None = None


class ReloadStatusOut(BaseModel):
    """Whether the last reload reached every worker, and what each one serves."""

    generation: int
    complete: bool = Field(description="Every worker serves the last reload's model.")
    failed: bool = Field(description="At least one worker could not load it (and kept its old model).")
    workers: list[WorkerOut]


class WebhooksOut(BaseModel):
    """The alerts' deliveries (``GET /v1/admin/webhooks``)."""

    enabled: bool = Field(description="Whether LEADSCORE_WEBHOOKS names any URL.")
    pending: int = Field(description="Deliveries not yet taken by their receiver (retrying with back-off).")
    delivered: int
    failed: int = Field(description="Deliveries given up after LEADSCORE_WEBHOOK_GIVE_UP_HOURS.")
    urls: dict[str, dict[str, int]] = Field(description="The same counts per receiving URL.")
    troubled: list[dict[str, Any]] = Field(
        description="The latest deliveries retrying or failed, with their error."
    )
    queued_dropped: int | None = Field(
        None, description="Events dropped because the in-memory queue was full."
    )


class DecisionOut(BaseModel):
    """A decision recorded (``POST /v1/leads/{id}/decision``)."""

    lead_id: str
    decision: str = Field(description="accepted or rejected.")
    reason: str | None = Field(description="The standard reason of a rejection.")
    decided_at: str
    mql_at: str | None
    rep: str = Field(description="Who decided: the rep's key's name, or the body's 'rep'.")
    recorded: bool = Field(
        description="False when the same decision (lead, decision, time) was recorded before."
    )
