"""scheduler lease, APScheduler's job store under Alembic, the replica of each interaction

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-24
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=True)
JOBS = "apscheduler_jobs"


def upgrade() -> None:
    op.create_table(
        "leader_lease",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("owner", sa.String(128), nullable=False),
        sa.Column("acquired_at", TS, nullable=False),
        sa.Column("renewed_at", TS, nullable=False),
        sa.Column("expires_at", TS, nullable=False),
    )
    # APScheduler 3 creates this table itself when absent; databases migrated before it was
    # under Alembic already have it, in exactly this shape (SQLAlchemyJobStore.jobs_t).
    if not sa.inspect(op.get_bind()).has_table(JOBS):
        op.create_table(
            JOBS,
            sa.Column("id", sa.Unicode(191), primary_key=True),
            sa.Column("next_run_time", sa.Float(25), index=True),
            sa.Column("job_state", sa.LargeBinary(), nullable=False),
        )
    with op.batch_alter_table("interaction") as batch:
        batch.add_column(sa.Column("engine_url", sa.String(256), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("interaction") as batch:
        batch.drop_column("engine_url")
    op.drop_table(JOBS)
    op.drop_table("leader_lease")
