"""an answer made of tool calls alone is an answer: its text is "" rather than NULL, so the
review queue, ratings and drift see it (captured before this, such answers were skipped);
an empty correction beside tool calls is the call alone

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # a JSON column may hold SQL NULL or the JSON value null: only real calls count
    op.execute(
        "UPDATE interaction SET response_text = '' "
        "WHERE response_text IS NULL AND status_code = 200 AND tool_calls IS NOT NULL "
        "AND CAST(tool_calls AS TEXT) NOT IN ('null', '[]')"
    )
    # an empty correction now means "the call alone"; the ones stored before meant nothing
    op.execute("UPDATE review SET correction = NULL WHERE correction = ''")


def downgrade() -> None:
    """Nothing to undo: "" is what a streamed call-only answer was always captured as."""
