"""prompt template versions roll out like adapter versions: a release per template
(production and a canary share), rollouts of either kind, requests that named their
template version kept out of rollout evidence, and where a template version came from

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "template_release",
        sa.Column("name", sa.String(128), primary_key=True),
        sa.Column("production_version", sa.Integer(), nullable=True),
        sa.Column("canary_version", sa.Integer(), nullable=True),
        sa.Column("canary_share", sa.Float(), nullable=False, server_default="0"),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    with op.batch_alter_table("rollout") as batch:
        batch.add_column(sa.Column("kind", sa.String(16), nullable=False, server_default="adapter"))
    with op.batch_alter_table("interaction") as batch:
        batch.add_column(
            sa.Column("template_pinned", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    with op.batch_alter_table("prompt_template_version") as batch:
        batch.add_column(sa.Column("origin", sa.String(16), nullable=False, server_default="file"))


def downgrade() -> None:
    with op.batch_alter_table("prompt_template_version") as batch:
        batch.drop_column("origin")
    with op.batch_alter_table("interaction") as batch:
        batch.drop_column("template_pinned")
    with op.batch_alter_table("rollout") as batch:
        batch.drop_column("kind")
    op.drop_table("template_release")
