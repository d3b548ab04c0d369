"""end-user feedback, review leases, reviews

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "user_feedback",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "interaction_id",
            sa.String(32),
            sa.ForeignKey("interaction.id"),
            nullable=False,
            index=True,
        ),
        sa.Column("end_user_id", sa.String(128), nullable=False),
        sa.Column("rating", sa.Integer(), nullable=False),
        sa.Column("scale", sa.String(8), nullable=False),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("current", sa.Boolean(), nullable=False),
    )
    op.create_table(
        "review_lease",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "interaction_id",
            sa.String(32),
            sa.ForeignKey("interaction.id"),
            nullable=False,
            index=True,
        ),
        sa.Column("reviewer_id", sa.String(64), nullable=False, index=True),
        sa.Column("leased_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("slot", sa.Integer(), nullable=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.UniqueConstraint("interaction_id", "slot"),
    )
    op.create_table(
        "review",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "interaction_id",
            sa.String(32),
            sa.ForeignKey("interaction.id"),
            nullable=False,
            index=True,
        ),
        sa.Column("reviewer_id", sa.String(64), nullable=False, index=True),
        sa.Column("score", sa.Integer(), nullable=False),
        sa.Column("labels", sa.JSON(), nullable=False),
        sa.Column("correction", sa.Text(), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("supersedes_id", sa.Integer(), sa.ForeignKey("review.id"), nullable=True),
    )


def downgrade() -> None:
    op.drop_table("review")
    op.drop_table("review_lease")
    op.drop_table("user_feedback")
