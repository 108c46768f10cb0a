"""What the pages read beside each lead's last answer: the MQL queue and the lead page without
scanning the score log.

``mql_at`` is when the lead's current run over the cutoff began (sales' clock), ``due_at`` when it
must be accepted or rejected (1 hour for a demo or pricing request, else 24 hours; the earlier one if
a fast request arrives while it waits), both null under the cutoff; a partial index on ``due_at``
holds the open MQLs only, with what the queue sorts and filters them by (the queue reads it alone). ``top_reasons``, ``segment``, ``respond_within``, ``lead_source`` and
``display`` (the spec's display fields: names, company, owner) are the last answer's; ``previous_inputs``
the fields of the answer before it (what "why it changed" compares); ``history`` the last points of
P(SQL), fixed-width text appended by the upsert itself.

MQLs already waiting when this runs start their clock at their last answer.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

COLUMNS = (
    ("previous_inputs", sa.JSON()),
    ("top_reasons", sa.JSON()),
    ("segment", sa.String(200)),
    ("respond_within", sa.String(8)),
    ("lead_source", sa.String(200)),
    ("display", sa.JSON()),
    ("mql_at", sa.DateTime()),
    ("due_at", sa.DateTime()),
    ("history", sa.Text()),
)


def upgrade() -> None:
    with op.batch_alter_table("latest_scores") as batch:
        for name, kind in COLUMNS:
            batch.add_column(sa.Column(name, kind))
    sqlite = op.get_bind().dialect.name == "sqlite"
    later = "datetime(scored_at, '+24 hours')" if sqlite else "scored_at + interval '24 hours'"
    op.execute(f"UPDATE latest_scores SET mql_at = scored_at, due_at = {later} WHERE mql")  # noqa: S608
    op.create_index(
        "ix_latest_scores_due",
        "latest_scores",
        ["due_at", "p_sql", "lead_id", "mql_at", "segment", "grade", "lead_source"],
        sqlite_where=sa.text("due_at IS NOT NULL"),
        postgresql_where=sa.text("due_at IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_latest_scores_due", "latest_scores")
    with op.batch_alter_table("latest_scores") as batch:
        for name, _ in reversed(COLUMNS):
            batch.drop_column(name)
