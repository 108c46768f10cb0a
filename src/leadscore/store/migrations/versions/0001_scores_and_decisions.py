"""The store's first tables: sales decisions, the score log and each lead's latest score.

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "decisions",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("lead_id", sa.String(200), nullable=False),
        sa.Column("decision", sa.String(16), nullable=False),
        sa.Column("reason", sa.String(32)),
        sa.Column("decided_at", sa.DateTime(), nullable=False),
        sa.Column("mql_at", sa.DateTime()),
        sa.Column("rep", sa.String(200)),
        sa.Column("imported_at", sa.DateTime(), nullable=False),
        sa.UniqueConstraint("lead_id", "decision", "decided_at", name="uq_decisions_key"),
    )
    op.create_index("ix_decisions_decided_at", "decisions", ["decided_at"])
    op.create_table(
        "scores",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("lead_id", sa.String(200), nullable=False),
        sa.Column("scored_at", sa.DateTime(), nullable=False),
        sa.Column("model_name", sa.String(200), nullable=False),
        sa.Column("model_version", sa.String(64), nullable=False),
        sa.Column("cutoff_version", sa.String(64)),
        sa.Column("p_sql", sa.Float(), nullable=False),
        sa.Column("mql", sa.Boolean(), nullable=False),
        sa.Column("grade", sa.String(4), nullable=False),
        sa.Column("fit", sa.Float()),
        sa.Column("engagement", sa.Float()),
        sa.Column("reasons", sa.JSON()),
        sa.Column("inputs", sa.JSON()),
        sa.Column("request_id", sa.String(64)),
        sa.Column("source", sa.String(8), nullable=False),
    )
    op.create_index("ix_scores_lead_time", "scores", ["lead_id", "scored_at"])
    op.create_index("ix_scores_scored_at", "scores", ["scored_at"])
    op.create_table(
        "latest_scores",
        sa.Column("lead_id", sa.String(200), primary_key=True),
        sa.Column("scored_at", sa.DateTime(), nullable=False),
        sa.Column("p_sql", sa.Float(), nullable=False),
        sa.Column("mql", sa.Boolean(), nullable=False),
        sa.Column("grade", sa.String(4), nullable=False),
        sa.Column("model_version", sa.String(64), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("latest_scores")
    op.drop_index("ix_scores_scored_at", "scores")
    op.drop_index("ix_scores_lead_time", "scores")
    op.drop_table("scores")
    op.drop_index("ix_decisions_decided_at", "decisions")
    op.drop_table("decisions")
