"""Prompt template versions roll out like adapter versions, on a live gateway with its
worker: a version that end users rate worse is rolled back by itself, a better one is
promoted through every step; canary assignment sticks to the end user; requests naming
their version are served it and are not rollout evidence; a changed file still deploys."""

import time
from collections.abc import Callable

import httpx
from sqlalchemy import create_engine
from sqlmodel import Session
from typer.testing import CliRunner

from loraloop.cli import app as cli
from loraloop.settings import Settings
from serve.template_releases import TemplateReleases
from serve.templates import Example, TemplateSpec
from tests.utils.adapters import make_adapter_dir
from tests.utils.users import simulate

TEMPLATE = "support-agent"
VARIABLES = {"customer_name": "Ada"}


def new_version(db_url: str, note: str) -> int:
    """What a retraining run's prompt decision adds: the template with more examples,
    served by the base model (the fake engine's `[base]` answers tell it apart)."""
    releases = TemplateReleases()
    engine = create_engine(db_url)
    with Session(engine) as session:
        current = releases.production(session, TEMPLATE)
        assert current is not None
        spec = TemplateSpec.model_validate(releases.version(session, TEMPLATE, current).spec)
        examples = [*spec.examples, Example(user=f"a {note} question", assistant="ok")]
        changed = spec.model_copy(update={"examples": examples, "default_alias": "base"})
        version = releases.add_version(session, changed, "retrain").version
    engine.dispose()
    return version


def rollout(http: httpx.Client, rollout_id: int) -> dict[str, object]:
    listed = http.get("/admin/rollouts", params={"kind": "template"}).json()
    return next(r for r in listed if r["id"] == rollout_id)


def test_template_versions_roll_out_on_live_evidence(
    sqlite_url: str, make_live_gateway: Callable[..., Settings]
) -> None:
    live = make_live_gateway(sqlite_url, worker=True, rollout={"check_interval_s": 0.3})
    base = f"http://127.0.0.1:{live.serve.port}"
    store = live.serve.adapter_store
    with httpx.Client(base_url=base, timeout=60) as http:
        path = str(make_adapter_dir(store, "v1"))
        added = http.post("/admin/adapters", json={"name": "support", "path": path})
        assert added.status_code == 201, added.text
        version, engine_name = added.json()["version"], added.json()["engine_name"]
        assert http.post("/admin/aliases/support/promote", json={"version": version}).is_success
        worse = new_version(sqlite_url, "worse")
        # adding a version serves nobody: production is pinned to what served before
        pinned = {"template": TEMPLATE, "variables": VARIABLES, "user": "someone",
                  "messages": [{"role": "user", "content": "hi"}]}  # fmt: skip
        reply = http.post("/v1/chat/completions", json=pinned).json()
        assert reply["choices"][0]["message"]["content"].startswith(f"[{engine_name}]")

        missing = http.post(f"/admin/templates/{TEMPLATE}/rollouts", json={"version": 99})
        assert missing.status_code == 404 and "does not exist" in missing.json()["error"]["message"]
        policy = {"steps": [10, 50], "min_requests": 30, "min_ratings": 20,
                  "latency_slack_ms": 5000}  # fmt: skip
        started = http.post(
            f"/admin/templates/{TEMPLATE}/rollouts", json={"version": worse, **policy}
        )
        assert started.status_code == 201, started.text
        assert started.json()["kind"] == "template" and started.json()["baseline_version"] == 1
        again = http.post(f"/admin/templates/{TEMPLATE}/rollouts", json={"version": worse})
        assert again.status_code == 409

        # naming the version gets it, whatever the split, and is not the canary's evidence
        chosen = {**pinned, "template_version": worse}
        for _ in range(40):
            answer = http.post("/v1/chat/completions", json=chosen).json()
            assert answer["choices"][0]["message"]["content"].startswith("[base]")

        models = {engine_name: 1, "base": worse}
        body = {"template": TEMPLATE, "variables": VARIABLES}
        bad = started.json()["id"]
        run = simulate(base, None, models, {1: 0.05, worse: 0.6},
                       lambda: rollout(http, bad)["state"] != "running", body=body)  # fmt: skip
        rolled = rollout(http, bad)
        assert rolled["state"] == "rolled_back", rolled["last_check"]
        assert "thumbs_down_rate worse" in rolled["decisions"][-1]["reason"]
        assert run.failed == [] and run.served[worse] > 0
        errors = next(
            c for c in rolled["decisions"][-1]["comparisons"] if c["metric"] == "error_rate"
        )
        assert 0 < errors["samples"][0] <= run.served[worse], "chosen-version requests left out"

        better = new_version(sqlite_url, "better")
        started = http.post(f"/admin/templates/{TEMPLATE}/rollouts",
                            json={"version": better, **policy})  # fmt: skip
        good = started.json()["id"]
        time.sleep(3 * live.serve.reconcile_interval_s)  # gateways see a release within it
        seen: dict[str, set[str]] = {}
        for i in range(160):  # 80 users, twice each, while the canary is at 10 %
            ask = {**body, "user": f"u{i % 80}", "messages": [{"role": "user", "content": "hi"}]}
            content = http.post("/v1/chat/completions", json=ask).json()["choices"][0]
            seen.setdefault(f"u{i % 80}", set()).add(content["message"]["content"].split("]")[0])
        assert all(len(models) == 1 for models in seen.values()), "sticky per user"
        assert 0 < sum("[base" in models for models in seen.values()) < 40
        run = simulate(base, None, {engine_name: 1, "base": better}, {1: 0.3, better: 0.0},
                       lambda: rollout(http, good)["state"] != "running", body=body)  # fmt: skip
        promoted = rollout(http, good)
        assert promoted["state"] == "promoted", promoted["last_check"]
        assert [d["share"] for d in promoted["decisions"]] == [10, 50, 100]
        assert run.failed == []

    engine = create_engine(sqlite_url)
    with Session(engine) as session:
        release = TemplateReleases().release(session, TEMPLATE)
        assert release is not None and release.production_version == better
        assert release.canary_version is None
    engine.dispose()

    env = {"LORALOOP_DB_URL": sqlite_url, "LORALOOP_CLI_GATEWAY_URL": base, "COLUMNS": "200"}
    third = new_version(sqlite_url, "third")
    args = ["rollouts", "start", TEMPLATE, str(third), "--template", "--steps", "5"]
    started_cli = CliRunner().invoke(cli, args, env=env)
    assert f"canary {TEMPLATE}@{third} at 5.0%" in started_cli.output, started_cli.output
    listed = CliRunner().invoke(cli, ["rollouts"], env=env)
    assert f"template {TEMPLATE}@{third} (over v{better})" in listed.output, listed.output
