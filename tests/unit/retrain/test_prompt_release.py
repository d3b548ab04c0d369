"""A run whose prompt won ships it: a new version of the data's template carrying the
fixed arm's examples, served by the base model, on a canary that a rollout judges; a run
whose data came through no template ships nothing and says why."""

from pathlib import Path

from sqlmodel import Session

from loraloop import db
from retrain.dataset import Example
from retrain.fewshot import Shot
from retrain.prompt_release import ship_prompt
from serve.registry import Registry
from serve.rollouts import RolloutController, recent
from serve.settings import RolloutSettings
from serve.template_releases import TemplateReleases
from serve.templates import TemplateSpec, TemplateStore, sync_templates
from tests.utils import REPO

SHOTS = [Shot("How do I export {{ data }}?", "Settings, then Export.", 20), Shot("Hi", "Hello!", 9)]


def example(i: int, template: str | None) -> Example:
    turns = ({"role": "user", "content": f"q{i}"}, {"role": "assistant", "content": f"a{i}"})
    return Example(f"row-{i}", turns, "reviewed", template)


def test_a_winning_prompt_goes_out_as_a_template_canary(migrated_db: str) -> None:
    engine = db.create_db_engine(migrated_db)
    registry = Registry("base", Path("/nonexistent"), 16)
    rollouts = RolloutController(engine, registry, RolloutSettings(steps=[10, 50]))
    with Session(engine) as session:
        sync_templates(session, REPO / "prompt_templates")
    train = [example(i, "support-agent") for i in range(5)] + [example(9, None)]

    shipped = ship_prompt(engine, rollouts, train, SHOTS, "base", "run-7")

    assert shipped["outcome"] == "prompt-rollout", shipped
    assert (shipped["template"], shipped["version"], shipped["baseline_version"]) == (
        "support-agent", 2, 1,
    )  # fmt: skip
    assert "on a canary at 10.0%" in shipped["reason"]
    with Session(engine) as session:
        release = TemplateReleases().release(session, "support-agent")
        assert release is not None
        assert (release.production_version, release.canary_version) == (1, 2)
        assert release.canary_share == 0.1
        [rollout] = recent(session, kind="template")
        assert (rollout.alias, rollout.version, rollout.state) == ("support-agent", 2, "running")
        found = TemplateStore().get(session, "support-agent", 2)
        assert found is not None and found[0].origin == "retrain"
        spec: TemplateSpec = found[1]
        assert spec.default_alias == "base"
        # the template's own example first, then the shots; braces stay text
        rendered = TemplateStore().render(spec, {"customer_name": "Ada"}, [])
        users = [m["content"] for m in rendered if m["role"] == "user"]
        assert users[1:] == ["How do I export {{ data }}?", "Hi"]
        # a file sync after it adds nothing: the file did not change
        assert sync_templates(session, REPO / "prompt_templates") == []

    again = ship_prompt(engine, rollouts, train, SHOTS, "base", "run-8")
    assert again["outcome"] is None and "already has a rollout running" in again["reason"]
    nothing = ship_prompt(engine, rollouts, [example(1, None)], SHOTS, "base", "run-9")
    assert nothing["outcome"] is None and "no template" in nothing["reason"]
    engine.dispose()
