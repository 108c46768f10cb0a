"""The store's tables (SQLAlchemy Core). Changing them needs a migration in ``migrations/versions``."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData()

# Sales' accept/reject decisions. A decision is identified by (lead, decision, time): importing the
# same export twice, or two exports at once, adds each decision exactly once.
decisions = Table(
    "decisions",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("lead_id", String(200), nullable=False),
    Column("decision", String(16), nullable=False),
    Column("reason", String(32)),
    Column("decided_at", DateTime(), nullable=False),
    Column("mql_at", DateTime()),
    Column("rep", String(200)),
    Column("imported_at", DateTime(), nullable=False),
    UniqueConstraint("lead_id", "decision", "decided_at", name="uq_decisions_key"),
)
Index("ix_decisions_decided_at", decisions.c.decided_at)

# Every answer handed out: ids and scores, never names or emails. ``inputs`` keeps the model's own
# fields (the spec's fit and engagement fields, excluded columns left out) for drift on served traffic.
scores = Table(
    "scores",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("lead_id", String(200), nullable=False),
    Column("scored_at", DateTime(), nullable=False),
    Column("model_name", String(200), nullable=False),
    Column("model_version", String(64), nullable=False),
    Column("cutoff_version", String(64)),
    Column("p_sql", Float, nullable=False),
    Column("mql", Boolean, nullable=False),
    Column("grade", String(4), nullable=False),
    Column("fit", Float),
    Column("engagement", Float),
    Column("reasons", JSON),
    Column("inputs", JSON),
    Column("request_id", String(64)),
    Column("source", String(8), nullable=False),  # api or batch
)
Index("ix_scores_scored_at", scores.c.scored_at)

# Each lead's last logged answer: one row per lead, so ``previous`` is one key lookup.
latest_scores = Table(
    "latest_scores",
    metadata,
    Column("lead_id", String(200), primary_key=True),
    Column("scored_at", DateTime(), nullable=False),
    Column("p_sql", Float, nullable=False),
    Column("mql", Boolean, nullable=False),
    Column("grade", String(4), nullable=False),
    Column("model_version", String(64), nullable=False),
    Column("inputs", JSON),  # the model's fields as then: what ``changes`` compares the next answer with
    # What the pages read (migration 0006): the answer before's fields, the last answer's top reasons,
    # segment, respond-within, lead source and display fields (the spec's names, company, owner: kept
    # here only, one row per lead, never in ``scores``), the current run over the cutoff (``mql_at``,
    # ``due_at``: null under it) and the last points of P(SQL) (``history``, fixed-width text).
    Column("previous_inputs", JSON),
    Column("top_reasons", JSON),
    Column("segment", String(200)),
    Column("respond_within", String(8)),
    Column("lead_source", String(200)),
    Column("display", JSON),
    Column("mql_at", DateTime()),
    Column("due_at", DateTime()),
    Column("history", Text()),
    Column("activity", JSON),  # the last events sent with its last answer (migration 0008)
)
# The open MQLs only, covering what the queue sorts and filters by: it reads this index alone.
Index(
    "ix_latest_scores_due",
    latest_scores.c.due_at,
    latest_scores.c.p_sql,
    latest_scores.c.lead_id,
    latest_scores.c.mql_at,
    latest_scores.c.segment,
    latest_scores.c.grade,
    latest_scores.c.lead_source,
    sqlite_where=latest_scores.c.due_at.isnot(None),
    postgresql_where=latest_scores.c.due_at.isnot(None),
)

# What ``leadscore writeback`` last wrote for each CRM and lead: ``--changed-only`` writes a lead again
# only when its MQL flag, grade or P(SQL) (by more than a step) moved since.
writebacks = Table(
    "writebacks",
    metadata,
    Column("crm", String(16), nullable=False),
    Column("lead_id", String(200), nullable=False),
    Column("p_sql", Float, nullable=False),
    Column("mql", Boolean, nullable=False),
    Column("grade", String(4)),
    Column("written_at", DateTime(), nullable=False),
    PrimaryKeyConstraint("crm", "lead_id", name="pk_writebacks"),
)

# Alerts for the CRM and chat (``LEADSCORE_WEBHOOKS``): each event is written here before it is sent,
# and each (event, URL) delivery is tried until the receiver takes it, so a restart or a receiver
# down for a while loses none. ``event_id`` is the idempotency key the receiver sees.
webhook_events = Table(
    "webhook_events",
    metadata,
    Column("event_id", String(64), primary_key=True),
    Column("kind", String(40), nullable=False),
    Column("lead_id", String(200), nullable=False),
    Column("payload", JSON, nullable=False),
    Column("created_at", DateTime(), nullable=False),
)
Index("ix_webhook_events_created_at", webhook_events.c.created_at)

webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    Column("event_id", String(64), nullable=False),
    Column("url", String(500), nullable=False),
    Column("status", String(10), nullable=False),  # pending, delivered or failed
    Column("attempts", Integer, nullable=False),
    Column("next_at", DateTime(), nullable=False),
    Column("last_error", String(300)),
    Column("delivered_at", DateTime()),
    PrimaryKeyConstraint("event_id", "url", name="pk_webhook_deliveries"),
)
Index("ix_webhook_deliveries_due", webhook_deliveries.c.status, webhook_deliveries.c.next_at)

# Each account's last logged answer (the account model's, from the service or `score --log`): what
# the account queue page reads. ``qualified_since`` is when its current run over the account cutoff
# began (null under it); the partial index holds the qualified accounts only.
latest_accounts = Table(
    "latest_accounts",
    metadata,
    Column("account_id", String(200), primary_key=True),
    Column("scored_at", DateTime(), nullable=False),  # the moment it was scored as of
    Column("logged_at", DateTime(), nullable=False),
    Column("p_opportunity", Float, nullable=False),
    Column("qualified", Boolean, nullable=False),
    Column("grade", String(4), nullable=False),
    Column("reasons", JSON),
    Column("contacts_engaged", Integer),
    Column("roles_engaged", JSON),
    Column("roles_missing", JSON),
    Column("model_version", String(64), nullable=False),
    Column("source", String(8), nullable=False),  # api or batch
    Column("qualified_since", DateTime()),
)
Index(
    "ix_latest_accounts_qualified",
    latest_accounts.c.qualified_since,
    latest_accounts.c.p_opportunity,
    latest_accounts.c.grade,
    sqlite_where=latest_accounts.c.qualified_since.isnot(None),
    postgresql_where=latest_accounts.c.qualified_since.isnot(None),
)
