"""Publishing a candidate that passed the gate: adapter store, lineage, promote or canary;
bad adapters are refused with production unchanged."""

from pathlib import Path

import pytest
from sqlmodel import Session

from loraloop import db
from retrain import GateDecision, Retrainer, RetrainError, RetrainSettings
from serve.registry import Registry
from serve.rollouts import RolloutController, recent
from serve.settings import RolloutSettings
from tests.utils.adapters import make_adapter_dir

GATE = GateDecision(True, "rouge_l", {"rouge_l": 0.8}, {"rouge_l": 0.2}, 0.01, 0.02, ["ok"])


def retrainer(url: str, tmp_path: Path, **settings: object) -> Retrainer:
    registry = Registry("base", tmp_path / "adapters", 16)
    engine = db.create_db_engine(url)
    with Session(engine) as session:
        registry.register(session, "support", make_adapter_dir(tmp_path / "adapters", "v1"))
        registry.promote(session, "support", 1)
    return Retrainer(
        engine,
        RetrainSettings(runs_dir=tmp_path / "runs", **settings),  # type: ignore[arg-type]
        registry,
        tmp_path / "base",
        "http://127.0.0.1:9",
        rollouts=RolloutController(engine, registry, RolloutSettings(steps=[10, 50])),
    )


def test_publish_registers_with_lineage_and_promotes(migrated_db: str, tmp_path: Path) -> None:
    r = retrainer(migrated_db, tmp_path)
    candidate = make_adapter_dir(tmp_path / "runs", "candidate", base="/models/base")
    lineage = {"run_id": "run-1", "parent_version": 1, "dataset_row_ids": ["a", "b"]}
    assert r.publish("support", candidate, GATE, lineage) == (2, "promoted")
    with Session(r.db) as session:
        alias = r.registry.alias(session, "support")
        version = r.registry.version(session, "support", 2)
    assert alias is not None and (alias.production_version, alias.previous_version) == (2, 1)
    assert Path(version.path) == (tmp_path / "adapters" / "support" / "run-1").resolve()
    assert version.lineage["dataset_row_ids"] == ["a", "b"]
    assert version.metrics == {"candidate": {"rouge_l": 0.8}, "production": {"rouge_l": 0.2}}


def test_publish_as_canary_when_configured(migrated_db: str, tmp_path: Path) -> None:
    r = retrainer(migrated_db, tmp_path, canary_share=0.25)
    candidate = make_adapter_dir(tmp_path / "runs", "candidate")
    assert r.publish("support", candidate, GATE, {"run_id": "run-2"}) == (2, "canary")
    with Session(r.db) as session:
        alias = r.registry.alias(session, "support")
    assert alias is not None
    assert (alias.production_version, alias.canary_version, alias.canary_share) == (1, 2, 0.25)


def test_publish_starts_a_rollout_when_configured(migrated_db: str, tmp_path: Path) -> None:
    r = retrainer(migrated_db, tmp_path, rollout=True)
    candidate = make_adapter_dir(tmp_path / "runs", "candidate")
    assert r.publish("support", candidate, GATE, {"run_id": "run-3"}) == (2, "rollout")
    with Session(r.db) as session:
        alias = r.registry.alias(session, "support")
        [rollout] = recent(session, "support")
    assert alias is not None
    assert (alias.production_version, alias.canary_version, alias.canary_share) == (1, 2, 0.1)
    assert (rollout.version, rollout.state, rollout.started_by) == (2, "running", "retrain")


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({"base": "/models/other-model"}, "is for base model '/models/other-model'"),
        ({"rank": 64}, "exceeds the engine's max_lora_rank"),
        (None, "adapter_config.json"),
    ],
)
def test_bad_adapters_change_nothing(
    migrated_db: str, tmp_path: Path, files: dict[str, object] | None, message: str
) -> None:
    r = retrainer(migrated_db, tmp_path)
    if files is None:  # not a peft adapter at all
        candidate = tmp_path / "runs" / "not-an-adapter"
        candidate.mkdir(parents=True)
        (candidate / "notes.txt").write_bytes(b"x")
    else:
        candidate = make_adapter_dir(tmp_path / "runs", "candidate", **files)  # type: ignore[arg-type]
    with pytest.raises(RetrainError, match=message):
        r.publish("support", candidate, GATE, {"run_id": "run-3"})
    with Session(r.db) as session:
        alias = r.registry.alias(session, "support")
        versions = r.registry.versions(session, "support")
    assert alias is not None and alias.production_version == 1 and len(versions) == 1
    assert not (tmp_path / "adapters" / "support" / "run-3").exists()  # the copy is gone too
