"""Prompt templates: YAML files in prompt_templates/, versioned in the database.

A template sets what fine-tuning does not: persona, tone, output format, few-shot
examples. It is rendered with a sandboxed Jinja2 environment (template files are data,
and must not reach Python objects). A changed file becomes a new version at sync and
serves at once (a file edit is a deploy); old versions stay addressable with
`template_version`. A version made by retraining serves only through a release: a
production version plus a canary share (serve/template_releases.py, serve/rollouts/).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import random
import time
from pathlib import Path
from typing import Any, Literal

import yaml
from jinja2 import StrictUndefined, TemplateError
from jinja2.sandbox import SandboxedEnvironment
from pydantic import BaseModel, Field, ValidationError
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from feedback.tool_calls import ToolDef, tool_names
from serve.tables import PromptTemplateVersion, TemplateRelease
from serve.target import bucket

VarType = Literal["string", "integer", "number", "boolean", "list"]
PY_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "list": (list,),
}


class TemplateSpecError(ValueError):
    """A template file is not valid; the message names the file and the field."""


class VariableError(ValueError):
    """A request's variables do not match the template; `problems` names each one."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


class Variable(BaseModel):
    type: VarType = "string"
    required: bool = False
    default: Any = None
    description: str = ""


class Example(BaseModel):
    user: str
    assistant: str


class TemplateSpec(BaseModel):
    """The contents of one template file."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,127}$")
    description: str = ""
    system: str = ""
    output_format: str = ""
    examples: list[Example] = Field(default_factory=list)
    variables: dict[str, Variable] = Field(default_factory=dict)
    default_alias: str | None = None
    sampling: dict[str, Any] = Field(default_factory=dict)
    tools: list[ToolDef] = Field(default_factory=list)

    def request_tools(self, given: list[dict[str, Any]] | None) -> list[dict[str, Any]] | None:
        """The tools a request is served with: the template's when it sends none; its own
        when they are among the template's (a template that declares tools is the contract
        of what its agent may call). Raises VariableError naming any other."""
        declared = [tool.model_dump(exclude_none=True) for tool in self.tools]
        if not given:
            return declared or None
        undeclared = sorted(set(tool_names(given)) - set(tool_names(declared)))
        if declared and undeclared:
            raise VariableError(
                [f"tool '{name}' is not declared by template '{self.name}'" for name in undeclared]
            )
        return given


Found = tuple[PromptTemplateVersion, TemplateSpec]


def load_spec(path: Path) -> TemplateSpec:
    try:
        data = yaml.safe_load(path.read_text())
        return TemplateSpec.model_validate(data)
    except (yaml.YAMLError, ValidationError) as exc:
        raise TemplateSpecError(f"{path}: {exc}") from None


def content_hash(spec: TemplateSpec) -> str:
    return hashlib.sha256(spec.model_dump_json().encode()).hexdigest()


def sync_templates(session: Session, directory: Path) -> list[PromptTemplateVersion]:
    """Record every template file; a file whose content changed since its last synced
    version gets a new version, which becomes production where a release pins one."""
    added = []
    for path in sorted(directory.glob("*.y*ml")):
        spec = load_spec(path)
        digest = content_hash(spec)
        versions = session.exec(
            select(PromptTemplateVersion)
            .where(PromptTemplateVersion.name == spec.name)
            .order_by(col(PromptTemplateVersion.version).desc())
        ).all()
        synced = next((v for v in versions if v.origin == "file"), None)
        if synced is not None and synced.content_hash == digest:
            continue
        row = PromptTemplateVersion(
            name=spec.name,
            version=(versions[0].version + 1) if versions else 1,
            content_hash=digest,
            spec=json.loads(spec.model_dump_json()),
        )
        session.add(row)
        release = session.get(TemplateRelease, spec.name)
        if release is not None:
            release.production_version = row.version
            session.add(release)
        added.append(row)
    session.commit()
    return added


def pick_version(release: TemplateRelease | None, sticky: str | None) -> int | None:
    """The version an unpinned request gets (None: the latest). Canary or production is
    a hash of the sticky id, so one user stays on one version."""
    if release is None:
        return None
    if release.canary_version is not None and release.canary_share > 0:
        key = f"template:{release.name}"
        draw = random.random() if sticky is None else bucket(key, release.canary_version, sticky)
        if draw < release.canary_share:
            return release.canary_version
    return release.production_version


class TemplateStore:
    """Looks templates up by name (latest or a given version) and renders them.

    `lookup` serves the inference path: a pinned version never changes, so it is cached
    for good; the latest version of a name, its release (production and canary), and a
    name that does not exist are cached for `ttl_s`, and read in a worker thread, never on
    the event loop.
    """

    def __init__(self, ttl_s: float = 5.0) -> None:
        self._env = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False)
        self.ttl_s = ttl_s
        self._cache: dict[tuple[str, int | None], tuple[float, Found | None]] = {}
        self._releases: dict[str, tuple[float, TemplateRelease | None]] = {}

    async def lookup(
        self, db: Engine, name: str, version: int | None, sticky: str | None = None
    ) -> Found | None:
        """`version` None: what the template's release serves this `sticky` id."""
        if version is None:
            version = pick_version(await self._release(db, name), sticky)
        key = (name, version)
        hit = self._cache.get(key)
        if hit is not None:
            fixed = version is not None and hit[1] is not None
            if fixed or time.monotonic() - hit[0] < self.ttl_s:
                return hit[1]
        found = await asyncio.to_thread(self._read, db, name, version)
        if len(self._cache) > 10_000:  # many made-up names must not grow it forever
            self._cache.clear()
        self._cache[key] = (time.monotonic(), found)
        return found

    async def _release(self, db: Engine, name: str) -> TemplateRelease | None:
        hit = self._releases.get(name)
        if hit is not None and time.monotonic() - hit[0] < self.ttl_s:
            return hit[1]
        release = await asyncio.to_thread(self._read_release, db, name)
        if len(self._releases) > 10_000:
            self._releases.clear()
        self._releases[name] = (time.monotonic(), release)
        return release

    def _read_release(self, db: Engine, name: str) -> TemplateRelease | None:
        with Session(db) as session:
            release = session.get(TemplateRelease, name)
            if release is not None:
                session.expunge(release)
            return release

    def _read(self, db: Engine, name: str, version: int | None) -> Found | None:
        with Session(db) as session:
            return self.get(session, name, version)

    def get(self, session: Session, name: str, version: int | None = None) -> Found | None:
        query = select(PromptTemplateVersion).where(PromptTemplateVersion.name == name)
        if version is not None:
            query = query.where(PromptTemplateVersion.version == version)
        row = session.exec(query.order_by(col(PromptTemplateVersion.version).desc())).first()
        if row is None:
            return None
        return row, TemplateSpec.model_validate(row.spec)

    def list(self, session: Session) -> list[PromptTemplateVersion]:
        query = select(PromptTemplateVersion).order_by(
            col(PromptTemplateVersion.name), col(PromptTemplateVersion.version)
        )
        return list(session.exec(query))

    def render(
        self, spec: TemplateSpec, variables: dict[str, Any], messages: list[dict[str, Any]]
    ) -> list[dict[str, Any]]:
        """System + few-shot turns + the request's own messages, variables filled in."""
        values = check_variables(spec, variables)
        system = "\n\n".join(
            part
            for part in (self._fill(spec.system, values), self._fill(spec.output_format, values))
            if part
        )
        rendered: list[dict[str, Any]] = [{"role": "system", "content": system}] if system else []
        for example in spec.examples:
            rendered.append({"role": "user", "content": self._fill(example.user, values)})
            rendered.append({"role": "assistant", "content": self._fill(example.assistant, values)})
        return rendered + messages

    def _fill(self, text: str, values: dict[str, Any]) -> str:
        try:
            return self._env.from_string(text).render(**values).strip()
        except TemplateError as exc:
            raise VariableError([f"template error: {exc}"]) from None


def check_variables(spec: TemplateSpec, given: dict[str, Any]) -> dict[str, Any]:
    """Defaults applied; every missing, unknown or mistyped variable named."""
    problems = []
    values: dict[str, Any] = {}
    for name, var in spec.variables.items():
        if name not in given:
            if var.required:
                problems.append(f"variable '{name}' is required ({var.type})")
            else:
                values[name] = var.default
            continue
        value = given[name]
        wrong_bool = isinstance(value, bool) and var.type in ("integer", "number")
        if not isinstance(value, PY_TYPES[var.type]) or wrong_bool:
            problems.append(f"variable '{name}' must be {var.type}, got {type(value).__name__}")
        values[name] = value
    for name in given.keys() - spec.variables.keys():
        problems.append(f"variable '{name}' is not declared by template '{spec.name}'")
    if problems:
        raise VariableError(problems)
    return values
