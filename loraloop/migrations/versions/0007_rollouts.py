"""rollouts judged on live traffic, their decisions; shadow versions, answers and their
pairwise reviews

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("alias") as batch:
        batch.add_column(sa.Column("shadow_version", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("shadow_share", sa.Float(), nullable=False, server_default="0"))
    with op.batch_alter_table("interaction") as batch:
        batch.add_column(sa.Column("shadow_of", sa.String(32), nullable=True))
        batch.create_index("ix_interaction_shadow_of", ["shadow_of"])
    op.create_table(
        "rollout",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("alias", sa.String(128), nullable=False, index=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("baseline_version", sa.Integer(), nullable=False),
        sa.Column("policy", sa.JSON(), nullable=False),
        sa.Column("step", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False, index=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("step_started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_check", sa.JSON(), nullable=False),
        sa.Column("started_by", sa.String(64), nullable=True),
    )
    op.create_table(
        "rollout_decision",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "rollout_id", sa.Integer(), sa.ForeignKey("rollout.id"), nullable=False, index=True
        ),
        sa.Column("alias", sa.String(128), nullable=False),
        sa.Column("step", sa.Integer(), nullable=False),
        sa.Column("share", sa.Float(), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("comparisons", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )

    op.create_table(
        "pairwise_review",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "interaction_id",
            sa.String(32),
            sa.ForeignKey("interaction.id"),
            nullable=False,
            index=True,
        ),
        sa.Column("shadow_id", sa.String(32), sa.ForeignKey("interaction.id"), nullable=False),
        sa.Column("reviewer_id", sa.String(64), nullable=False),
        sa.Column("preferred", sa.String(16), nullable=False),
        sa.Column("correction", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("interaction_id", "reviewer_id"),
    )


def downgrade() -> None:
    op.drop_table("pairwise_review")
    op.drop_table("rollout_decision")
    op.drop_table("rollout")
    with op.batch_alter_table("alias") as batch:
        batch.drop_column("shadow_share")
        batch.drop_column("shadow_version")
    with op.batch_alter_table("interaction") as batch:
        batch.drop_index("ix_interaction_shadow_of")
        batch.drop_column("shadow_of")
