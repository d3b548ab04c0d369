"""drift reports, job history and job locks

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "drift_report",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("created_at", TS, nullable=False, index=True),
        sa.Column("alias", sa.String(128), nullable=False, index=True),
        sa.Column("template", sa.String(128), nullable=True),
        sa.Column("reference_kind", sa.String(16), nullable=False),
        sa.Column("reference_from", TS, nullable=True),
        sa.Column("reference_to", TS, nullable=True),
        sa.Column("current_from", TS, nullable=True),
        sa.Column("current_to", TS, nullable=True),
        sa.Column("reference_rows", sa.Integer(), nullable=False),
        sa.Column("current_rows", sa.Integer(), nullable=False),
        sa.Column("drift_share", sa.Float(), nullable=True),
        sa.Column("drifted_columns", sa.Integer(), nullable=False),
        sa.Column("columns", sa.JSON(), nullable=False),
        sa.Column("verdict", sa.String(16), nullable=False, index=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("decision", sa.JSON(), nullable=False),
        sa.Column("evidently", sa.JSON(), nullable=True),
        sa.Column("duration_s", sa.Float(), nullable=False),
        sa.Column("trigger", sa.String(16), nullable=False),
    )
    op.create_table(
        "drift_report_html",
        sa.Column("report_id", sa.Integer(), sa.ForeignKey("drift_report.id"), primary_key=True),
        sa.Column("html_gz", sa.LargeBinary(), nullable=False),
    )
    op.create_table(
        "job_run",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("job", sa.String(32), nullable=False, index=True),
        sa.Column("target", sa.String(160), nullable=False, index=True),
        sa.Column("trigger", sa.String(16), nullable=False),
        sa.Column("started_at", TS, nullable=False, index=True),
        sa.Column("finished_at", TS, nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("result", sa.String(256), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
    )
    op.create_table(
        "job_lock",
        sa.Column("name", sa.String(200), primary_key=True),
        sa.Column("owner", sa.String(64), nullable=False),
        sa.Column("acquired_at", TS, nullable=False),
        sa.Column("expires_at", TS, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("job_lock")
    op.drop_table("job_run")
    op.drop_table("drift_report_html")
    op.drop_table("drift_report")
