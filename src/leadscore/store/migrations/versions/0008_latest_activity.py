"""A lead's recent activity beside its last answer: the lead page's timeline (the last events the CRM
sent with it, as sent: type, time and attributes).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("latest_scores") as batch:
        batch.add_column(sa.Column("activity", sa.JSON()))


def downgrade() -> None:
    with op.batch_alter_table("latest_scores") as batch:
        batch.drop_column("activity")
