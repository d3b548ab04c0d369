"""The closed loop on the real engine: `loraloop demo` against the running platform, then
`loraloop retrain run` / `runs` for a rejected candidate and for bad input."""

import json
import re
import subprocess
from pathlib import Path

import httpx
import pytest
from sqlmodel import Session, select

from feedback.models import Interaction, Review
from loraloop import db
from loraloop.demo import SCENARIO
from loraloop.launch import LORALOOP
from serve.tables import AdapterVersion, Alias
from tests.integration.conftest import Platform

pytestmark = pytest.mark.integration
LOOP_ENV = {
    "LORALOOP_RETRAIN_MIN_EXAMPLES": "30",
    "LORALOOP_RETRAIN_EVAL_FRACTION": "0.2",
    "LORALOOP_RETRAIN_EPOCHS": "2",
}


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("runs")


def cli(platform: Platform, runs: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    full = {
        **platform.env,
        "LORALOOP_RETRAIN_RUNS_DIR": str(runs),
        "LORALOOP_RETRAIN_MLFLOW_URI": f"sqlite:///{runs / 'mlflow.db'}",
        "COLUMNS": "250",
        **env,
    }
    return subprocess.run([LORALOOP, *args], env=full, capture_output=True, text=True, timeout=1200)


def retrain_lumen(
    platform: Platform, runs: Path, seed: Path, **env: str
) -> subprocess.CompletedProcess[str]:
    seeds = json.dumps([str(seed)])
    return cli(
        platform,
        runs,
        "retrain",
        "run",
        "--alias",
        "lumen",
        LORALOOP_RETRAIN_SEED_FILES=seeds,
        **env,
    )


@pytest.fixture(scope="module")
def demo(platform: Platform, runs: Path) -> subprocess.CompletedProcess[str]:
    return cli(
        platform, runs, "demo", "--gateway", platform.gateway_url, "--limit", "60", **LOOP_ENV
    )


def test_demo_closes_the_loop(
    demo: subprocess.CompletedProcess[str], platform: Platform, runs: Path
) -> None:
    assert demo.returncode == 0, demo.stdout[-3000:] + demo.stderr[-3000:]
    held = re.search(r"held-out Rouge-L: base ([\d.]+) -> lumen ([\d.]+)", demo.stdout)
    assert held, demo.stdout[-2000:]
    assert float(held[2]) > float(held[1])

    engine = db.create_db_engine(platform.db_url)
    with Session(engine) as session:
        alias = session.get(Alias, "lumen")
        assert alias is not None and alias.production_version == 1
        version = session.exec(select(AdapterVersion).where(AdapterVersion.name == "lumen")).one()
        corrections = session.exec(select(Review).where(Review.correction != None)).all()  # noqa: E711
    engine.dispose()
    lineage = version.lineage
    assert lineage["parent_version"] is None and lineage["base_model"] == platform.model
    assert len(lineage["dataset_row_ids"]) == lineage["training_config"]["examples"] >= 30
    assert set(lineage["dataset_row_ids"]).isdisjoint(lineage["eval_row_ids"])
    assert version.metrics["candidate"]["rouge_l"] > version.metrics["production"]["rouge_l"]
    assert len(corrections) > 0

    run_dir = runs / "lumen" / lineage["run_id"]
    record = json.loads((run_dir / "run.json").read_text())
    assert record["outcome"] == "promoted" and record["version"] == 1
    assert "<polyline" in (run_dir / "loss.svg").read_text()
    assert "Evaluation gate" in (run_dir / "report.html").read_text()

    import mlflow

    mlflow.set_tracking_uri(f"sqlite:///{runs / 'mlflow.db'}")
    [logged] = mlflow.search_runs(experiment_names=["loraloop-retrain"], output_format="list")
    assert logged.data.tags["outcome"] == "promoted"
    assert logged.data.metrics["candidate_rouge_l"] == pytest.approx(
        version.metrics["candidate"]["rouge_l"]
    )

    reply = httpx.post(
        f"{platform.gateway_url}/v1/chat/completions",
        json={"model": "lumen", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 8},
        timeout=120,
    )
    assert reply.status_code == 200, reply.text
    assert reply.json()["model"] == "lumen"


def test_rejected_and_failed_runs_leave_production_alone(
    demo: subprocess.CompletedProcess[str], platform: Platform, runs: Path, tmp_path: Path
) -> None:
    assert demo.returncode == 0
    rows = [line for line in SCENARIO.read_text().splitlines() if line.strip()][100:140]
    seed = tmp_path / "seed.jsonl"
    seed.write_text("\n".join(rows) + "\n")
    rejected = retrain_lumen(
        platform,
        runs,
        seed,
        LORALOOP_RETRAIN_MIN_EXAMPLES="20",
        LORALOOP_RETRAIN_EPOCHS="0.25",
        LORALOOP_RETRAIN_MARGIN="1.0",
    )
    assert rejected.returncode == 0, rejected.stderr[-3000:]
    assert "rejected" in rejected.stdout and "below the margin 1.0" in rejected.stdout

    unknown = cli(platform, runs, "retrain", "run", "--alias", "nobody")
    assert unknown.returncode == 1
    assert "alias 'nobody' has no production version" in unknown.stderr

    bad = tmp_path / "bad.jsonl"
    bad.write_text(rows[0] + "\n{not json\n")
    broken = retrain_lumen(platform, runs, bad)
    assert broken.returncode == 1
    assert f"{bad}:2: not JSON" in broken.stderr

    engine = db.create_db_engine(platform.db_url)
    with Session(engine) as session:
        alias = session.get(Alias, "lumen")
        versions = session.exec(select(AdapterVersion).where(AdapterVersion.name == "lumen")).all()
        assert session.exec(select(Interaction).where(Interaction.alias == "lumen")).first()
    engine.dispose()
    assert alias is not None and alias.production_version == 1 and len(versions) == 1

    listed = cli(platform, runs, "retrain", "runs", "--alias", "lumen")
    assert listed.returncode == 0
    for word in ("promoted", "rejected", "failed", "DatasetError"):
        assert word in listed.stdout, listed.stdout
