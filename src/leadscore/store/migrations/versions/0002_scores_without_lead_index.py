"""The score log loses its per-lead index.

``ix_scores_lead_time`` (lead, time) was the log's costliest part: leads arrive in no order, so a
batch of 1,000 answers touched about 1,000 of the index's pages, each written again in full (most
of a SQLite write's CPU went there, and several MB of WAL per batch). No query on the request path
uses it: ``previous`` reads ``latest_scores``; the log is read by time (monitoring, retention: the
``scored_at`` index, appended at its end) and by lead only for a deletion request (``purge --lead``)
and the feedback report's first MQL answers, both offline jobs that now scan.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_scores_lead_time", "scores")


def downgrade() -> None:
    op.create_index("ix_scores_lead_time", "scores", ["lead_id", "scored_at"])
