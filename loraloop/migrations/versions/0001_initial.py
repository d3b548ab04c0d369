"""initial schema: interactions

Revision ID: 0001
Revises:
Create Date: 2026-11-24
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "interaction",
        sa.Column("id", sa.String(length=32), primary_key=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("client_key_id", sa.String(length=64), nullable=True),
        sa.Column("endpoint", sa.String(length=64), nullable=False),
        sa.Column("request", sa.JSON(), nullable=False),
        sa.Column("rendered_messages", sa.JSON(), nullable=True),
        sa.Column("template", sa.String(length=128), nullable=True),
        sa.Column("template_version", sa.Integer(), nullable=True),
        sa.Column("alias", sa.String(length=128), nullable=True),
        sa.Column("adapter_version", sa.Integer(), nullable=True),
        sa.Column("engine_model", sa.String(length=256), nullable=True),
        sa.Column("response_text", sa.Text(), nullable=True),
        sa.Column("finish_reason", sa.String(length=32), nullable=True),
        sa.Column("prompt_tokens", sa.Integer(), nullable=True),
        sa.Column("completion_tokens", sa.Integer(), nullable=True),
        sa.Column("latency_ms", sa.Float(), nullable=True),
        sa.Column("ttft_ms", sa.Float(), nullable=True),
        sa.Column("status_code", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
    )
    op.create_index("ix_interaction_created_at", "interaction", ["created_at"])
    op.create_index("ix_interaction_template", "interaction", ["template"])
    op.create_index("ix_interaction_alias", "interaction", ["alias"])


def downgrade() -> None:
    op.drop_index("ix_interaction_alias", table_name="interaction")
    op.drop_index("ix_interaction_template", table_name="interaction")
    op.drop_index("ix_interaction_created_at", table_name="interaction")
    op.drop_table("interaction")
