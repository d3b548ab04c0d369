"""The closed loop on the real engine: `loraloop demo` against the running platform, then
`loraloop retrain run` / `runs` for a rejected candidate (gated on a golden set, with
slices and the LLM judge on the real engine) and for bad input."""

import json
import re
import subprocess
import time
from pathlib import Path

import httpx
import pytest
from sqlmodel import Session, col, select

from feedback.models import Interaction, Review
from loraloop import db
from loraloop.demo import SCENARIO
from retrain.evaluate import chat_many
from retrain.metrics import rouge_l
from serve.tables import AdapterVersion, Alias
from tests.integration.conftest import Platform
from tests.utils.platform import cli

pytestmark = pytest.mark.integration
FLAWED_TRAFFIC = 56  # enough thumbs for KTO; each question costs production and traffic time
LOOP_ENV = {
    "LORALOOP_RETRAIN_MIN_EXAMPLES": "30",
    "LORALOOP_RETRAIN_EVAL_FRACTION": "0.2",
    "LORALOOP_RETRAIN_MAX_EPOCHS": "2",
}


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("runs")


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
    page = (run_dir / "report.html").read_text()
    assert "Evaluation gate" in page and "retention drop (50 general prompts)" in page
    # the prompting arms and the forgetting check answered through the same real engine
    assert record["arms"]["sides"] == ["production", "candidate", "fixed", "retrieved"]
    cost = record["arms"]["cost"]
    assert cost["fixed"]["prompt_tokens"] > cost["production"]["prompt_tokens"] > 0
    assert set(record["evaluations"][0]["arms"]) == {"fixed", "retrieved"}
    shots = record["arms"]["template_shots"]
    assert 0 < len(shots) <= 4 and sum(s["tokens"] for s in shots) <= 1024
    # production is the base model here: it answers as itself; the adapter rewords
    assert record["retention"]["items"] == 50 and record["retention"]["drop"]["production"] == 0
    assert 0 < record["retention"]["drop"]["candidate"] <= 1
    assert record["decision"]["ship"] in ("adapter", "prompt") and record["decision"]["reason"]
    assert not record["prompt"], "the decision is reported; shipping prompts is opt-in"
    predictions = (run_dir / "eval_predictions.jsonl").read_text()
    kinds = [json.loads(line)["set"] for line in predictions.splitlines()]
    assert kinds.count("retention") == 50 and "retrieved" in predictions

    import mlflow

    mlflow.set_tracking_uri(f"sqlite:///{runs / 'mlflow.db'}")
    [logged] = mlflow.search_runs(experiment_names=["loraloop-retrain"], output_format="list")
    assert logged.data.tags["outcome"] == "promoted"
    # one or two passes (the demo's budget for two cores) end before a plateau could
    assert logged.data.tags["stop_rule"] == record["train"]["stop_rule"] == "step budget"
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


def ordered_by_reviewers(platform: Platform) -> None:
    """Two answers of lumen to one question, one cut short, scored 1 and 5 by reviewers:
    the pair the judge's agreement is measured on."""
    question = [{"role": "user", "content": "How much does the Aurora desk lamp cost?"}]
    ids = []
    for max_tokens in (2, 24):
        reply = httpx.post(
            f"{platform.gateway_url}/v1/chat/completions",
            json={"model": "lumen", "messages": question, "max_tokens": max_tokens},
            timeout=120,
        )
        assert reply.status_code == 200, reply.text
        ids.append(reply.json()["interaction_id"])
    engine = db.create_db_engine(platform.db_url)
    deadline = time.monotonic() + 30
    with Session(engine) as session:
        while len(session.exec(select(Interaction).where(col(Interaction.id).in_(ids))).all()) < 2:
            assert time.monotonic() < deadline, "the interactions were not captured"
            time.sleep(0.2)
        for iid, score in zip(ids, (1, 5), strict=True):
            session.add(Review(interaction_id=iid, reviewer_id="r1", score=score))
        session.commit()
    engine.dispose()


def test_rejected_and_failed_runs_leave_production_alone(
    demo: subprocess.CompletedProcess[str], platform: Platform, runs: Path, tmp_path: Path
) -> None:
    assert demo.returncode == 0
    lines = [line for line in SCENARIO.read_text().splitlines() if line.strip()]
    rows = lines[100:140]
    seed = tmp_path / "seed.jsonl"
    seed.write_text("\n".join(rows) + "\n")
    golden = tmp_path / "golden.jsonl"
    held = [json.loads(line) for line in lines if json.loads(line)["heldout"]][:6]
    labelled = [r | {"labels": ["price"] if i < 3 else []} for i, r in enumerate(held)]
    golden.write_text("".join(json.dumps(r) + "\n" for r in labelled))
    imported = cli(platform, runs, "golden", "import", "lumen", str(golden))
    assert imported.returncode == 0 and "6 added" in imported.stdout, imported.stderr
    ordered_by_reviewers(platform)
    rejected = retrain_lumen(
        platform,
        runs,
        seed,
        LORALOOP_RETRAIN_MIN_EXAMPLES="20",
        LORALOOP_RETRAIN_MAX_EPOCHS="0.5",
        LORALOOP_RETRAIN_MIN_STEPS="0",
        LORALOOP_RETRAIN_MARGIN="1.0",
        LORALOOP_RETRAIN_METRICS='["rouge_l","token_f1","exact_match","judge"]',
        LORALOOP_RETRAIN_SLICE_MIN_EXAMPLES="3",
        LORALOOP_RETRAIN_EVAL_MAX_TOKENS="32",  # rejected by the margin whatever the answers
        LORALOOP_RETRAIN_FEWSHOT_K="0",  # the demo's run has the arms and the forgetting check
        LORALOOP_RETRAIN_RETENTION_SET="",
    )
    assert rejected.returncode == 0, rejected.stderr[-3000:]
    assert "rejected" in rejected.stdout and "below the margin 1.0" in rejected.stdout
    assert "gated on the golden set (6 items)" in rejected.stdout
    run_id = re.search(r"report: \S+/lumen/(\S+)/report.html", rejected.stdout)
    assert run_id, rejected.stdout
    record = json.loads((runs / "lumen" / run_id[1] / "run.json").read_text())
    assert [e["name"] for e in record["evaluations"]] == ["held_out", "golden"]
    assert record["gate"]["eval_set"] == "golden" and record["golden"]["items"] == 6
    golden_scores = record["evaluations"][1]
    assert golden_scores["candidate"]["judge"] + golden_scores["production"]["judge"] == 1
    slices = {(s["kind"], s["value"]): s for s in record["gate"]["slices"]}
    assert slices[("label", "price")]["size"] == 3 and slices[("label", "price")]["counted"]
    assert slices[("template", "support-desk")]["size"] == 6
    agreement = record["judge"]["human_agreement"]
    assert agreement["pairs"] == 1 and agreement["agreed"] + agreement["ties"] <= 1
    assert record["judge"]["rubric"].startswith("judge-pairwise@")  # the synced template
    plan = record["train"]["plan"]
    # at least the 8-example floor; whole answer groups may add a few, never half the data
    assert 8 <= plan["validation_examples"] < plan["train_examples"] and record["validation"]
    assert record["arms"]["sides"] == ["production", "candidate"] and not record["retention"]
    assert record["decision"]["ship"] == "production"  # nothing clears a margin of 1.0
    assert "adapter or prompt" in rejected.stdout and "keep production" in rejected.stdout
    page = (runs / "lumen" / run_id[1] / "report.html").read_text()
    for words in (
        "Slices (rouge_l)",
        "LLM judge",
        "Agreement with reviewers",
        "golden (6 items)",
        "Adapter or prompt",
    ):
        assert words in page

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


def thumbs_on_lumen(platform: Platform, rows: list[dict[str, object]]) -> dict[str, int]:
    """End users ask lumen and rate what they saw: up for the better half of the answers
    (Rouge-L against the scenario's answer), down for the rest."""
    asked = [r["messages"][-2:-1] for r in rows]  # type: ignore[index]
    bodies = chat_many(platform.gateway_url, "lumen", asked, 24, 8)  # type: ignore[arg-type]
    ids = [b["interaction_id"] for b in bodies]
    closeness = [
        rouge_l(b["choices"][0]["message"]["content"] or "", r["messages"][-1]["content"])  # type: ignore[index]
        for b, r in zip(bodies, rows, strict=True)
    ]
    median = sorted(closeness)[len(closeness) // 2]
    engine = db.create_db_engine(platform.db_url)
    deadline = time.monotonic() + 60
    with Session(engine) as session:
        while len(
            session.exec(select(Interaction.id).where(col(Interaction.id).in_(ids))).all()
        ) < len(ids):
            assert time.monotonic() < deadline, "the interactions were not captured"
            time.sleep(0.2)
    engine.dispose()
    counts = {"up": 0, "down": 0}
    for iid, close in zip(ids, closeness, strict=True):
        rating = "up" if close >= median else "down"
        reply = httpx.post(
            f"{platform.gateway_url}/v1/feedback",
            json={"interaction_id": iid, "rating": rating},
            timeout=30,
        )
        assert reply.status_code in (200, 201), reply.text
        counts[rating] += 1
    return counts


def lumen_versions(platform: Platform) -> int:
    engine = db.create_db_engine(platform.db_url)
    with Session(engine) as session:
        count = len(
            session.exec(select(AdapterVersion).where(AdapterVersion.name == "lumen")).all()
        )
    engine.dispose()
    return count


def test_end_user_thumbs_reach_a_runs_plan(
    demo: subprocess.CompletedProcess[str], platform: Platform, runs: Path
) -> None:
    """Thumbs on lumen's own answers: `--dry-run` shows auto picking KTO from them (after
    SFT on lumen's reviewed answers) and why, training nothing; asking for DPO without
    pairs fails clearly and changes nothing. (Training on thumbs: the flawed-production
    demo below.)"""
    assert demo.returncode == 0
    rows = [json.loads(line) for line in SCENARIO.read_text().splitlines() if line.strip()]
    counts = thumbs_on_lumen(platform, [r for r in rows if not r["heldout"]][180:220])
    assert min(counts.values()) >= 10, counts
    needs = {"LORALOOP_RETRAIN_MIN_JUDGED": "24", "LORALOOP_RETRAIN_MIN_JUDGED_CLASS": "8"}
    before = lumen_versions(platform)
    run_dirs = sorted((runs / "lumen").iterdir())

    no_pairs = cli(
        platform, runs, "retrain", "run", "--alias", "lumen", "--objective", "dpo", **needs
    )
    assert no_pairs.returncode == 1
    assert "dpo needs preference pairs" in no_pairs.stderr, no_pairs.stderr[-2000:]

    planned = cli(
        platform,
        runs,
        "retrain",
        "run",
        "--alias",
        "lumen",
        "--objective",
        "auto",
        "--dry-run",
        **needs,
    )
    assert planned.returncode == 0, planned.stdout[-3000:] + planned.stderr[-3000:]
    out = planned.stdout
    assert "dry run: nothing trained" in out, out
    chat = re.search(r"data:\s+(\d+)\s+chat\s+examples", out)
    assert chat, out
    # SFT goes first whenever there are 10 chat examples (lumen's reviewed answers)
    picked = "sft+kto" if int(chat[1]) >= 10 else "kto"
    assert f"objective: {picked} " in out or f"objective: {picked}\n" in out, out
    assert "too few pairs for DPO" in out
    judged = re.search(
        r"judged: (\d+) train / (\d+) held out \(.*end_user (\d+).*\); "
        r"(\d+) desirable, (\d+) undesirable",
        out,
    )
    assert judged, out
    assert int(judged[3]) >= 20 and int(judged[5]) >= 8

    assert lumen_versions(platform) == before
    # the refused run is recorded (as every run is); the plan is not
    assert len(sorted((runs / "lumen").iterdir())) == len(run_dirs) + 1


def test_demo_learns_from_thumbs_to_drop_productions_flaw(
    demo: subprocess.CompletedProcess[str], platform: Platform, runs: Path
) -> None:
    """`loraloop demo --objective kto`: a flawed production adapter (the curt brush-off),
    thumbs on all its answers, 20 corrections; a KTO run trained on them is gated on
    held-out preference evidence, and the flaw rate is measured before and after."""
    assert demo.returncode == 0
    ran = cli(
        platform,
        runs,
        "demo",
        "--gateway",
        platform.gateway_url,
        "--limit",
        str(FLAWED_TRAFFIC),
        "--alias",
        "flawed",
        "--objective",
        "kto",
        LORALOOP_RETRAIN_FEWSHOT_K="0",  # judged on preferences here; the arms are the first demo's
        LORALOOP_RETRAIN_RETENTION_SET="",
    )
    assert ran.returncode == 0, ran.stdout[-3000:] + ran.stderr[-3000:]
    out = ran.stdout
    judged = re.search(r"(\d+) answers, (\d+) flawed · end users: (\d+) thumbs down", out)
    assert judged, out[-2000:]
    answers, flawed, down = map(int, judged.groups())
    assert answers == FLAWED_TRAFFIC and flawed >= answers // 2, "production learned its habit"
    assert abs(down - flawed) < answers / 3, "thumbs follow the flaw, with noise"
    assert "reviewer: 20 corrections" in out and "objective: asked for kto" in out
    rate = re.search(r"held-out flaw rate: production ([\d.]+) \(Rouge-L ([\d.]+)\) -> (.*)", out)
    assert rate, out[-2000:]
    assert float(rate[1]) >= 0.5
    run_id = re.search(r"report: \S+/flawed/(\S+)/report.html", out)
    assert run_id, out[-2000:]
    record = json.loads((runs / "flawed" / run_id[1] / "run.json").read_text())
    assert record["objective"]["objective"] == "kto"
    sources = record["preference"]["data"]["judged"]["by_source"]
    assert sources["end_user"] > answers // 2 and sources["correction"] >= 10
    assert record["preference"]["evidence"]["items"] > 0
    if record["outcome"] == "promoted":
        after = re.match(r"flawed@(\d+) ([\d.]+)", rate[3])
        assert after and int(after[1]) == record["version"], rate[3]
        assert float(after[2]) < float(rate[1]), "the promoted adapter is less flawed"
    else:
        assert rate[3].startswith("not promoted") and record["gate"]["reasons"]
