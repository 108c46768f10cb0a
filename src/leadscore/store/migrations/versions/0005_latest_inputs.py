"""Each lead's last logged fields beside its last answer: what an answer's ``changes`` compare with.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("latest_scores") as batch:
        batch.add_column(sa.Column("inputs", sa.JSON()))


def downgrade() -> None:
    with op.batch_alter_table("latest_scores") as batch:
        batch.drop_column("inputs")
