"""Migrations up and down, and the session factory, on SQLite and PostgreSQL."""

import sqlalchemy as sa
from sqlalchemy import inspect
from sqlmodel import Session, select

from feedback.models import Interaction
from loraloop import db


def tables(url: str) -> set[str]:
    engine = db.create_db_engine(url)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_migrations_up_down_up(db_url: str) -> None:
    assert db.current_revision(db_url) is None

    db.upgrade(db_url, "0001")
    assert db.current_revision(db_url) == "0001"
    assert "interaction" in tables(db_url)
    assert "adapter_version" not in tables(db_url)

    db.upgrade(db_url)
    assert db.current_revision(db_url) == db.head_revision() != "0001"
    assert {"interaction", "adapter_version", "alias", "api_key"} <= tables(db_url)

    db.downgrade(db_url, "0001")
    assert "alias" not in tables(db_url)

    db.downgrade(db_url, "base")
    assert db.current_revision(db_url) is None
    assert "interaction" not in tables(db_url)

    db.upgrade(db_url)
    assert db.current_revision(db_url) == db.head_revision()


def test_upgrade_is_idempotent(db_url: str) -> None:
    db.upgrade(db_url)
    db.upgrade(db_url)
    assert db.current_revision(db_url) == db.head_revision()


def test_sessions_round_trip_an_interaction(db_url: str) -> None:
    db.upgrade(db_url)
    engine = db.create_db_engine(db_url)
    sessions = db.SessionFactory(engine)
    record = Interaction(
        endpoint="/v1/chat/completions",
        request={"model": "base", "messages": [{"role": "user", "content": "hi"}]},
        response_text="hello",
        prompt_tokens=3,
        completion_tokens=1,
    )
    record_id = record.id
    try:
        for session in sessions():
            session.add(record)
            session.commit()
        with Session(engine) as session:
            stored = session.exec(select(Interaction)).one()
        assert stored.id == record_id
        assert stored.request["messages"][0]["content"] == "hi"
        assert stored.response_text == "hello"
    finally:
        engine.dispose()


def test_migrations_match_the_models(migrated_db: str) -> None:
    """Every table and column the code declares is what the migrations build, and no more."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext
    from sqlmodel import SQLModel

    from feedback.drift.tables import DriftReport
    from feedback.jobs import JobRun
    from serve.tables import Alias

    declared = set(SQLModel.metadata.tables)
    assert {DriftReport.__tablename__, JobRun.__tablename__, Alias.__tablename__} <= declared
    engine = db.create_db_engine(migrated_db)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), SQLModel.metadata)
    engine.dispose()
    assert diff == []


def test_call_only_answers_captured_before_0010_become_answers(db_url: str) -> None:
    """Rows captured with `response_text` NULL and real calls get "" (the review queue
    skipped them); an answer without calls, and an error, keep NULL."""
    db.upgrade(db_url, "0009")
    engine = db.create_db_engine(db_url)
    call = [{"id": "c", "type": "function", "function": {"name": "f", "arguments": "{}"}}]
    rows = {
        "call": Interaction(endpoint="chat", request={}, status_code=200, tool_calls=call),
        "none": Interaction(endpoint="chat", request={}, status_code=200),
        "error": Interaction(endpoint="chat", request={}, status_code=502, tool_calls=call),
    }
    ids = {name: row.id for name, row in rows.items()}
    # the table as it was at 0009: columns added later are not there to fill
    table = sa.Table("interaction", sa.MetaData(), autoload_with=engine)
    with engine.begin() as conn:
        for row in rows.values():
            values = row.model_dump()
            conn.execute(table.insert().values({c.name: values[c.name] for c in table.columns}))
    db.upgrade(db_url)
    with Session(engine) as session:
        texts = {name: session.get(Interaction, iid).response_text for name, iid in ids.items()}  # type: ignore[union-attr]
    engine.dispose()
    assert texts == {"call": "", "none": None, "error": None}
