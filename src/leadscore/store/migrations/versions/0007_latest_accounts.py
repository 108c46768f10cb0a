"""Each account's last logged answer: what the account queue page (``/app/queue?level=account``) reads.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "latest_accounts",
        sa.Column("account_id", sa.String(200), primary_key=True),
        sa.Column("scored_at", sa.DateTime(), nullable=False),
        sa.Column("logged_at", sa.DateTime(), nullable=False),
        sa.Column("p_opportunity", sa.Float(), nullable=False),
        sa.Column("qualified", sa.Boolean(), nullable=False),
        sa.Column("grade", sa.String(4), nullable=False),
        sa.Column("reasons", sa.JSON()),
        sa.Column("contacts_engaged", sa.Integer()),
        sa.Column("roles_engaged", sa.JSON()),
        sa.Column("roles_missing", sa.JSON()),
        sa.Column("model_version", sa.String(64), nullable=False),
        sa.Column("source", sa.String(8), nullable=False),
        sa.Column("qualified_since", sa.DateTime()),
    )
    op.create_index(
        "ix_latest_accounts_qualified",
        "latest_accounts",
        ["qualified_since", "p_opportunity", "grade"],
        sqlite_where=sa.text("qualified_since IS NOT NULL"),
        postgresql_where=sa.text("qualified_since IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_latest_accounts_qualified", "latest_accounts")
    op.drop_table("latest_accounts")
