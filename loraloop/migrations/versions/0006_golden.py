"""golden evaluation sets per alias

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-24
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "golden_item",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("alias", sa.String(128), nullable=False, index=True),
        sa.Column("key", sa.String(256), nullable=False),
        sa.Column("messages", sa.JSON(), nullable=False),
        sa.Column("template", sa.String(128), nullable=True),
        sa.Column("labels", sa.JSON(), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("pinned_by", sa.String(64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("alias", "key"),
    )


def downgrade() -> None:
    op.drop_table("golden_item")
