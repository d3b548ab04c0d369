"""The capture writer: interactions reach the database without the API waiting on it.

The gateway hands each record to `submit`, which only enqueues. One writer thread
inserts batches. When the database fails, batches go to an append-only spool file
(one JSON record per line) and are replayed once it answers again; replays insert
with ON CONFLICT DO NOTHING on the primary key, so a record lands once, never twice.

A record the database refuses while it answers (or a spool line that is not JSON) is
moved to a quarantine file beside the spool, counted, and never retried: one bad record
must not hold the spool back forever. When the spool cannot be written (disk full),
records are held in memory (up to the queue size; beyond that dropped and counted) and
written when it can be again; the API keeps answering throughout.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, insert, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import SQLAlchemyError

from feedback.models import Interaction

log = logging.getLogger(__name__)

_STOP = object()
BAD_RECORD = (ValueError, TypeError, KeyError)  # a record the row builder cannot take


class CaptureWriter:
    """Bounded queue + batch writer + spool. Thread-safe `submit`; `close` flushes."""

    def __init__(
        self,
        engine: Engine,
        spool_path: Path,
        *,
        queue_size: int = 10_000,
        batch_size: int = 500,
        flush_interval_s: float = 0.05,
        retry_interval_s: float = 2.0,
    ) -> None:
        self.engine = engine
        self.spool_path = spool_path
        self.batch_size = batch_size
        self.flush_interval_s = flush_interval_s
        self.retry_interval_s = retry_interval_s
        self.quarantine_path = spool_path.with_name(f"{spool_path.stem}.quarantine.jsonl")
        self.written = 0
        self.spooled = 0
        self.dropped = 0
        self.spool_error: str | None = None
        self.max_held = queue_size
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=queue_size)
        self._spool_lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="capture-writer", daemon=True)
        self._last_retry = 0.0
        self._held: list[dict[str, Any]] = []  # neither in the database nor in the spool
        self._pending: set[str] = set()  # submitted, not yet in the database
        spool_path.parent.mkdir(parents=True, exist_ok=True)
        self.spooled = self._count_lines(spool_path)
        self.quarantined = self._count_lines(self.quarantine_path)

    def start(self) -> None:
        self._thread.start()

    @property
    def depth(self) -> int:
        return self._queue.qsize()

    @property
    def held(self) -> int:
        return len(self._held)

    def submit(self, record: dict[str, Any]) -> None:
        """Never blocks: a full queue spills the record straight to the spool."""
        self._pending.add(record["id"])
        try:
            self._queue.put_nowait(record)
        except queue.Full:
            self._spool([record])

    def pending(self, record_id: str) -> bool:
        """Submitted to this writer and not in the database yet (queued, held or spooled)."""
        return record_id in self._pending

    def wait_written(self, record_id: str, timeout: float) -> bool:
        """Wait until a submitted record is in the database; False if it is not by then."""
        deadline = time.monotonic() + timeout
        while record_id in self._pending and time.monotonic() < deadline:
            time.sleep(0.01)
        return record_id not in self._pending

    def close(self, timeout: float = 30.0) -> None:
        """Write everything still queued (to the database or the spool), then stop."""
        if self._thread.is_alive():
            self._queue.put(_STOP)
            self._thread.join(timeout)

    def flush(self, timeout: float = 30.0) -> None:
        """Wait until every record submitted so far is in the database, or the timeout
        passes (records still spooled then stay spooled and are replayed later)."""
        deadline = time.monotonic() + timeout
        while (
            self._queue.unfinished_tasks or self.spooled or self._held
        ) and time.monotonic() < deadline:
            time.sleep(0.01)

    def _run(self) -> None:
        stopping = False
        while not stopping:
            batch: list[dict[str, Any]] = []
            try:
                item = self._queue.get(timeout=self.flush_interval_s)
                batch_done = 1
                if item is _STOP:
                    stopping = True
                else:
                    batch.append(item)
                while len(batch) < self.batch_size and not stopping:
                    try:
                        item = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    batch_done += 1
                    if item is _STOP:
                        stopping = True
                    else:
                        batch.append(item)
            except queue.Empty:
                batch_done = 0
            if batch:
                self._write_or_spool(batch)
            if time.monotonic() - self._last_retry >= self.retry_interval_s:
                self._retry()
            for _ in range(batch_done):
                self._queue.task_done()
        self._retry()

    def _retry(self) -> None:
        """Records held in memory go to the database (or the spool); the spool is replayed."""
        if self._held:
            with self._spool_lock:
                held, self._held = self._held, []
            self._write_or_spool(held)
        if self.spooled:
            self._replay()

    def _write_or_spool(self, batch: list[dict[str, Any]]) -> None:
        try:
            self._insert(batch, ignore_existing=False)
            self.written += len(batch)
            self._pending.difference_update(r["id"] for r in batch)
        except (SQLAlchemyError, *BAD_RECORD) as exc:
            log.warning(
                "capture: database unavailable (%s); spooling %d records",
                exc,
                len(batch),
            )
            self._spool(batch)
            self._last_retry = time.monotonic()

    def _insert(self, rows: list[dict[str, Any]], ignore_existing: bool) -> None:
        table = Interaction.__table__  # type: ignore[attr-defined]
        dialect = self.engine.dialect.name
        if ignore_existing and dialect == "postgresql":
            stmt = pg_insert(table).on_conflict_do_nothing(index_elements=["id"])
        elif ignore_existing and dialect == "sqlite":
            stmt = sqlite_insert(table).on_conflict_do_nothing(index_elements=["id"])
        else:
            stmt = insert(table)
        with self.engine.begin() as conn:
            conn.execute(stmt, [_to_row(r) for r in rows])

    def _spool(self, batch: list[dict[str, Any]]) -> None:
        try:
            with self._spool_lock, self.spool_path.open("a") as f:
                for record in batch:
                    f.write(json.dumps(record, default=str) + "\n")
                f.flush()
                os.fsync(f.fileno())
                self.spooled += len(batch)
            self.spool_error = None
        except OSError as exc:
            self.spool_error = f"cannot write the capture spool {self.spool_path}: {exc}"
            log.error("capture: %s; holding %d records in memory", self.spool_error, len(batch))
            self._hold(batch)

    def _hold(self, batch: list[dict[str, Any]]) -> None:
        with self._spool_lock:
            room = max(0, self.max_held - len(self._held))
            self._held.extend(batch[:room])
        if len(batch) > room:
            self.dropped += len(batch) - room
            self._pending.difference_update(r["id"] for r in batch[room:])
            log.error("capture: dropped %d records (no database, no spool)", len(batch) - room)

    def _replay(self) -> None:
        """Move the spool into the database; keep it if the database is still down."""
        self._last_retry = time.monotonic()
        with self._spool_lock:
            if not self.spool_path.is_file():
                self.spooled = 0
                return
            records, bad = self._read_spool()
            for start in range(0, len(records), self.batch_size):
                chunk = records[start : start + self.batch_size]
                try:
                    self._insert(chunk, ignore_existing=True)
                except SQLAlchemyError as exc:
                    if not self._database_up():
                        return
                    bad.extend(self._insert_one_by_one(chunk, exc))
                except BAD_RECORD as exc:
                    bad.extend(self._insert_one_by_one(chunk, exc))
            self._quarantine(bad)
            self.spool_path.unlink()
            self.written += len(records) - len(bad)
            self._pending.difference_update(r.get("id") for r in records)
            self.spooled = 0
        log.info("capture: replayed %d spooled records", len(records))

    def _read_spool(self) -> tuple[list[dict[str, Any]], list[tuple[dict[str, Any], str]]]:
        """The spool's records, and the lines that are not one (a torn write, say)."""
        records, bad = [], []
        for line in self.spool_path.read_text(errors="replace").splitlines():
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except ValueError as exc:
                bad.append(({"line": line}, f"not JSON: {exc}"))
                continue
            if isinstance(record, dict) and isinstance(record.get("id"), str):
                records.append(record)
            else:
                bad.append(({"line": line}, "not a capture record"))
        return records, bad

    def _insert_one_by_one(
        self, records: list[dict[str, Any]], first: Exception
    ) -> list[tuple[dict[str, Any], str]]:
        """The database answers but refused a batch: find the records it refuses."""
        bad = []
        for record in records:
            try:
                self._insert([record], ignore_existing=True)
            except (SQLAlchemyError, *BAD_RECORD) as exc:
                bad.append((record, f"{type(exc).__name__}: {str(exc)[:500]}"))
        log.error("capture: %d records refused by the database (%s)", len(bad), first)
        return bad

    def _quarantine(self, bad: list[tuple[dict[str, Any], str]]) -> None:
        if not bad:
            return
        with self.quarantine_path.open("a") as f:
            for record, error in bad:
                f.write(json.dumps({"error": error, "record": record}, default=str) + "\n")
        self.quarantined += len(bad)
        log.error("capture: %d records quarantined in %s", len(bad), self.quarantine_path)

    def _database_up(self) -> bool:
        try:
            with self.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            return True
        except SQLAlchemyError:
            return False

    @staticmethod
    def _count_lines(path: Path) -> int:
        if not path.is_file():  # absent, or a device (never read one: /dev/full is endless)
            return 0
        with path.open() as f:
            return sum(1 for line in f if line.strip())


def _to_row(record: dict[str, Any]) -> dict[str, Any]:
    """Every column, in every row: a batch insert needs the same keys in each row (a
    record that lacks one, say `alias` on a 400, must not make its batch fail), and a
    stray key must not either. Missing columns take the model's default."""
    row = {
        name: record[name] if name in record else field.get_default(call_default_factory=True)
        for name, field in Interaction.model_fields.items()
    }
    created = row.get("created_at")
    if isinstance(created, str):
        row["created_at"] = datetime.fromisoformat(created)
    return row
