"""interactions keep the assistant's tool calls and a template's tools; reviews may correct
tool calls

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("interaction") as batch:
        batch.add_column(sa.Column("tool_calls", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("rendered_tools", sa.JSON(), nullable=True))
    with op.batch_alter_table("review") as batch:
        batch.add_column(sa.Column("correction_tool_calls", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("review") as batch:
        batch.drop_column("correction_tool_calls")
    with op.batch_alter_table("interaction") as batch:
        batch.drop_column("rendered_tools")
        batch.drop_column("tool_calls")
