"""The capture writer: interactions reach the database without the API waiting on it.

The gateway hands each record to `submit`, which only enqueues. One writer thread
inserts batches. When the database fails, batches go to an append-only spool file
(one JSON record per line) and are replayed once it answers again; replays insert
with ON CONFLICT DO NOTHING on the primary key, so a record lands once, never twice.
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

from sqlalchemy import Engine, insert
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import SQLAlchemyError

from feedback.models import Interaction

log = logging.getLogger(__name__)

_STOP = object()


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
        self.written = 0
        self.spooled = 0
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=queue_size)
        self._spool_lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="capture-writer", daemon=True)
        self._last_retry = 0.0
        spool_path.parent.mkdir(parents=True, exist_ok=True)
        self.spooled = self._count_spooled()

    def start(self) -> None:
        self._thread.start()

    @property
    def depth(self) -> int:
        return self._queue.qsize()

    def submit(self, record: dict[str, Any]) -> None:
        """Never blocks: a full queue spills the record straight to the spool."""
        try:
            self._queue.put_nowait(record)
        except queue.Full:
            self._spool([record])

    def close(self, timeout: float = 30.0) -> None:
        """Write everything still queued (to the database or the spool), then stop."""
        if self._thread.is_alive():
            self._queue.put(_STOP)
            self._thread.join(timeout)

    def flush(self, timeout: float = 30.0) -> None:
        """Wait until every record submitted so far is in the database, or the timeout
        passes (records still spooled then stay spooled and are replayed later)."""
        deadline = time.monotonic() + timeout
        while (self._queue.unfinished_tasks or self.spooled) and time.monotonic() < deadline:
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
            if self.spooled and time.monotonic() - self._last_retry >= self.retry_interval_s:
                self._replay()
            for _ in range(batch_done):
                self._queue.task_done()
        if self.spooled:
            self._replay()

    def _write_or_spool(self, batch: list[dict[str, Any]]) -> None:
        try:
            self._insert(batch, ignore_existing=False)
            self.written += len(batch)
        except SQLAlchemyError as exc:
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
        with self._spool_lock, self.spool_path.open("a") as f:
            for record in batch:
                f.write(json.dumps(record, default=str) + "\n")
            f.flush()
            os.fsync(f.fileno())
            self.spooled += len(batch)

    def _replay(self) -> None:
        """Move the spool into the database; keep it if the database is still down."""
        self._last_retry = time.monotonic()
        with self._spool_lock:
            if not self.spool_path.exists():
                self.spooled = 0
                return
            records = [
                json.loads(line)
                for line in self.spool_path.read_text().splitlines()
                if line.strip()
            ]
            try:
                for start in range(0, len(records), self.batch_size):
                    self._insert(records[start : start + self.batch_size], ignore_existing=True)
            except SQLAlchemyError:
                return
            self.spool_path.unlink()
            self.written += len(records)
            self.spooled = 0
        log.info("capture: replayed %d spooled records", len(records))

    def _count_spooled(self) -> int:
        if not self.spool_path.exists():
            return 0
        with self.spool_path.open() as f:
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
