"""A run whose prompt beat its adapter ships the prompt: a new version of the template the
alias's traffic comes through, carrying the fixed few-shot arm's examples, served by the
model that arm was measured on (the base), and rolled out on a canary judged on live
evidence like any adapter version. Nothing serves it to everyone until the rollout
promotes it, because the decision was made on held-out data only.
"""

from collections import Counter
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Engine
from sqlmodel import Session

from retrain.dataset import Example
from retrain.fewshot import Shot
from serve.registry import RegistryError
from serve.rollouts import RolloutController, RolloutError
from serve.template_releases import TemplateReleases
from serve.templates import Example as TemplateExample
from serve.templates import TemplateSpec

ORIGIN = "retrain"


def template_of(train: Sequence[Example]) -> str | None:
    """The template most of the training data came through, if any did."""
    names = Counter(ex.template for ex in train if ex.template)
    return names.most_common(1)[0][0] if names else None


def literal(text: str) -> str:
    """Text Jinja renders as it is (a shot may hold `{{`)."""
    return f"{{% raw %}}{text}{{% endraw %}}" if "{" in text else text


def with_examples(spec: TemplateSpec, shots: Sequence[Shot], model: str) -> TemplateSpec:
    """The template with the shots after its own examples, served by `model` unless a
    request names another."""
    added = [TemplateExample(user=literal(s.user), assistant=literal(s.assistant)) for s in shots]
    return spec.model_copy(update={"examples": [*spec.examples, *added], "default_alias": model})


def ship_prompt(
    db: Engine,
    rollouts: RolloutController,
    train: Sequence[Example],
    shots: Sequence[Shot],
    base_model: str,
    run_id: str,
) -> dict[str, Any]:
    """Adds the template version and starts its rollout; says what it did, or why not
    (`outcome` is then None and production stays as it is)."""
    name = template_of(train)
    if name is None:
        why = "no template carries this alias's training data, so no template can carry a prompt"
        return {"outcome": None, "reason": why}
    if not shots or any("endraw" in s.user + s.assistant for s in shots):
        return {"outcome": None, "reason": "the fixed arm's examples cannot go in a template"}
    releases = TemplateReleases()
    with Session(db) as session:
        try:
            current = releases.production(session, name)
            if current is None:
                return {"outcome": None, "reason": f"template '{name}' is not in the database"}
            spec = TemplateSpec.model_validate(releases.version(session, name, current).spec)
            added = releases.add_version(session, with_examples(spec, shots, base_model), ORIGIN)
            policy = rollouts.policy({})
            rollout = rollouts.start(session, name, added.version, policy, f"retrain {run_id}",
                                     "template")  # fmt: skip
        except (RegistryError, RolloutError) as exc:
            return {"outcome": None, "reason": f"template '{name}': {exc}"}
        return {
            "outcome": "prompt-rollout",
            "template": name,
            "version": added.version,
            "baseline_version": current,
            "rollout_id": rollout.id,
            "examples": len(shots),
            "reason": f"{name} version {added.version} ({len(shots)} examples, served by "
            f"{base_model}) is on a canary at {policy['steps'][0]}% over version {current}",
        }
