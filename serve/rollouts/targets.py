"""What a rollout moves: an adapter version over its alias, or a prompt template version
over its template's production. The controller judges both the same way; each kind says
where its canary share lives and which captured traffic is its own.
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from sqlmodel import Session

from feedback.live import Traffic, template_traffic, version_traffic
from feedback.pairwise import win_loss
from serve.registry import Registry
from serve.template_releases import TemplateReleases

KINDS = ("adapter", "template")


class Releases(Protocol):
    """The release state of one kind of artefact, by name (an alias, a template)."""

    def production(self, session: Session, name: str) -> int | None: ...
    def canary(self, session: Session, name: str) -> int | None: ...
    def check(self, session: Session, name: str, version: int) -> None: ...
    def set_canary(
        self, session: Session, name: str, version: int | None, share: float
    ) -> None: ...
    def promote(self, session: Session, name: str, version: int) -> None: ...
    def traffic(self, session: Session, name: str, version: int, since: datetime) -> Traffic: ...
    def pairs(
        self, session: Session, name: str, version: int, baseline: int
    ) -> tuple[int, int]: ...


class AdapterReleases:
    """Adapter versions of an alias, through the registry."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry

    def production(self, session: Session, name: str) -> int | None:
        alias = self.registry.alias(session, name)
        return alias.production_version if alias else None

    def canary(self, session: Session, name: str) -> int | None:
        alias = self.registry.alias(session, name)
        return alias.canary_version if alias else None

    def check(self, session: Session, name: str, version: int) -> None:
        self.registry.version(session, name, version)

    def set_canary(self, session: Session, name: str, version: int | None, share: float) -> None:
        self.registry.set_canary(session, name, version, share)

    def promote(self, session: Session, name: str, version: int) -> None:
        self.registry.promote(session, name, version)

    def traffic(self, session: Session, name: str, version: int, since: datetime) -> Traffic:
        return version_traffic(session, name, version, since)

    def pairs(self, session: Session, name: str, version: int, baseline: int) -> tuple[int, int]:
        return win_loss(session, name, version, baseline)


class PromptReleases:
    """Prompt template versions of a template name. Shadow reviews compare adapter
    versions only, so a template step has no pairwise evidence."""

    def __init__(self, releases: TemplateReleases | None = None) -> None:
        self.releases = releases or TemplateReleases()

    def production(self, session: Session, name: str) -> int | None:
        return self.releases.production(session, name)

    def canary(self, session: Session, name: str) -> int | None:
        release = self.releases.release(session, name)
        return release.canary_version if release else None

    def check(self, session: Session, name: str, version: int) -> None:
        self.releases.version(session, name, version)

    def set_canary(self, session: Session, name: str, version: int | None, share: float) -> None:
        self.releases.set_canary(session, name, version, share)

    def promote(self, session: Session, name: str, version: int) -> None:
        self.releases.promote(session, name, version)

    def traffic(self, session: Session, name: str, version: int, since: datetime) -> Traffic:
        return template_traffic(session, name, version, since)

    def pairs(self, session: Session, name: str, version: int, baseline: int) -> tuple[int, int]:
        return (0, 0)
