"""What was last written back to each CRM, per lead (``leadscore writeback --changed-only``).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "writebacks",
        sa.Column("crm", sa.String(16), nullable=False),
        sa.Column("lead_id", sa.String(200), nullable=False),
        sa.Column("p_sql", sa.Float(), nullable=False),
        sa.Column("mql", sa.Boolean(), nullable=False),
        sa.Column("grade", sa.String(4)),
        sa.Column("written_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("crm", "lead_id", name="pk_writebacks"),
    )


def downgrade() -> None:
    op.drop_table("writebacks")
