"""Capture writer throughput into SQLite, against a bare batched insert in the same run.

    .venv/bin/python bench/capture_writer.py [--records 50000]

Target (issue 3): >= 5,000 interactions/s sustained, none lost.
"""

import argparse
import tempfile
import time
from pathlib import Path

from sqlalchemy import func, insert
from sqlmodel import Session, select

from feedback.capture import CaptureWriter, _to_row
from feedback.models import Interaction, new_id
from loraloop import db


def records(n: int) -> list[dict[str, object]]:
    return [{
        "id": new_id(), "created_at": "2026-11-24T00:00:00+00:00", "endpoint": "chat",
        "request": {"model": "support", "messages": [{"role": "user", "content": f"question {i}"}]},
        "alias": "support", "adapter_version": 3, "engine_model": "support@3-abc",
        "response_text": "An answer of a typical length, a sentence or two. " * 3,
        "finish_reason": "stop", "prompt_tokens": 40, "completion_tokens": 30,
        "latency_ms": 123.4, "status_code": 200,
    } for i in range(n)]  # fmt: skip


def fresh_db(directory: Path, name: str) -> str:
    url = f"sqlite:///{directory / name}"
    db.upgrade(url)
    return url


def count(url: str) -> int:
    engine = db.create_db_engine(url)
    with Session(engine) as session:
        n = session.exec(select(func.count()).select_from(Interaction)).one()
    engine.dispose()
    return int(n)


def bare_insert(url: str, rows: list[dict[str, object]], batch: int) -> float:
    engine = db.create_db_engine(url)
    table = Interaction.__table__  # type: ignore[attr-defined]
    start = time.perf_counter()
    for i in range(0, len(rows), batch):
        with engine.begin() as conn:
            conn.execute(insert(table), [_to_row(r) for r in rows[i : i + batch]])
    elapsed = time.perf_counter() - start
    engine.dispose()
    return elapsed


def writer_run(url: str, spool: Path, rows: list[dict[str, object]], batch: int) -> float:
    engine = db.create_db_engine(url)
    writer = CaptureWriter(engine, spool, queue_size=len(rows) + 1, batch_size=batch)
    writer.start()
    start = time.perf_counter()
    for r in rows:
        writer.submit(r)
    writer.close(timeout=600)
    elapsed = time.perf_counter() - start
    engine.dispose()
    assert writer.spooled == 0
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=50_000)
    parser.add_argument("--batch", type=int, default=500)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        bare_url, writer_url = fresh_db(d, "bare.db"), fresh_db(d, "writer.db")
        bare = bare_insert(bare_url, records(args.records), args.batch)
        took = writer_run(writer_url, d / "spool.jsonl", records(args.records), args.batch)
        stored = count(writer_url)
    rate, bare_rate = args.records / took, args.records / bare
    print(f"records: {args.records}, batch {args.batch}, SQLite (WAL)")
    print(f"bare batched insert : {bare_rate:>9,.0f} rows/s")
    print(
        f"capture writer      : {rate:>9,.0f} interactions/s (stored {stored}, lost "
        f"{args.records - stored})"
    )
    print(f"ratio writer / bare : {rate / bare_rate:.2f}")
    print(
        f"target >= 5,000/s   : {'met' if rate >= 5000 and stored == args.records else 'NOT met'}"
    )


if __name__ == "__main__":
    main()
