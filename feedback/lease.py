"""Leader election for the scheduler: a lease row with a heartbeat.

Any number of workers may run; the one holding the `scheduler` lease schedules, the others
wait. Taking the lease is one conditional UPDATE (the row is free, expired, or already
ours) or, for the very first holder, one INSERT; both are atomic on SQLite and PostgreSQL
alike, so two workers can never both win. The holder renews well before expiry; a holder
that dies stops renewing and another takes over once the lease has expired. A holder that
cannot renew in time (the database is unreachable) must stop scheduling by itself: it can
no longer prove that nobody else took over. Times are the workers' own clocks, which must
be kept in sync (NTP), as with any lease.
"""

import os
import socket
from datetime import datetime, timedelta

from sqlalchemy import Engine, delete, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Field, Session, SQLModel, col

from feedback.models import utcnow


class LeaderLease(SQLModel, table=True):
    __tablename__ = "leader_lease"

    name: str = Field(primary_key=True, max_length=64)
    owner: str = Field(max_length=128)
    acquired_at: datetime
    renewed_at: datetime
    expires_at: datetime


def default_owner() -> str:
    """host:pid, so that `jobs list` says which machine and process is the leader."""
    return f"{socket.gethostname()}:{os.getpid()}"


class Lease:
    """One contender for one named lease."""

    def __init__(self, db: Engine, name: str, owner: str, ttl_s: float) -> None:
        self.db = db
        self.name = name
        self.owner = owner
        self.ttl_s = ttl_s

    def acquire(self) -> bool:
        """Take or renew the lease; True while this contender holds it."""
        now = utcnow()
        expires = now + timedelta(seconds=self.ttl_s)
        table = LeaderLease.__table__  # type: ignore[attr-defined]
        with self.db.begin() as conn:
            renewed = conn.execute(
                update(table)
                .where(
                    table.c.name == self.name,
                    (table.c.owner == self.owner) | (table.c.expires_at < now),
                )
                .values(owner=self.owner, renewed_at=now, expires_at=expires)
            )
            if renewed.rowcount == 1:
                return True
        try:
            with Session(self.db) as session:
                session.add(
                    LeaderLease(
                        name=self.name,
                        owner=self.owner,
                        acquired_at=now,
                        renewed_at=now,
                        expires_at=expires,
                    )
                )
                session.commit()
        except IntegrityError:
            return False  # someone else holds it
        return True

    def mark_acquired(self) -> None:
        """Record when this holder took over (kept apart from renewals)."""
        with self.db.begin() as conn:
            table = LeaderLease.__table__  # type: ignore[attr-defined]
            conn.execute(
                update(table)
                .where(table.c.name == self.name, table.c.owner == self.owner)
                .values(acquired_at=utcnow())
            )

    def release(self) -> None:
        """Give the lease up at once (a clean shutdown), so a standby need not wait."""
        with Session(self.db) as session:
            session.exec(  # type: ignore[call-overload]
                delete(LeaderLease).where(
                    col(LeaderLease.name) == self.name, col(LeaderLease.owner) == self.owner
                )
            )
            session.commit()


def current_leader(session: Session, name: str) -> LeaderLease | None:
    """The lease row, expired or not (compare `expires_at` with now)."""
    return session.get(LeaderLease, name)
