"""Which version of a prompt template serves: production, plus a canary at a share.

Without a release row a template serves its latest version, as it always has: a changed
file is a deploy. A version made by retraining (a prompt that won the run's decision) must
earn its place instead, so adding one pins production to what serves now first, and a
rollout then moves the canary share as it does for adapters (serve/rollouts/). Unpinned
requests draw canary-or-production from a hash of the sticky id, so one user stays on one
version; a request naming `template_version` gets that version and is not rollout traffic.
"""

from __future__ import annotations

from sqlmodel import Session, col, select

from serve.registry import RegistryError
from serve.tables import PromptTemplateVersion, TemplateRelease, utcnow
from serve.templates import TemplateSpec, content_hash


class ReleaseError(RegistryError):
    """A template release change was refused (handled where registry refusals are)."""


class TemplateReleases:
    """Reads and changes the release row of a template name."""

    def release(self, session: Session, name: str) -> TemplateRelease | None:
        return session.get(TemplateRelease, name)

    def latest(self, session: Session, name: str) -> PromptTemplateVersion | None:
        return session.exec(
            select(PromptTemplateVersion)
            .where(PromptTemplateVersion.name == name)
            .order_by(col(PromptTemplateVersion.version).desc())
        ).first()

    def version(self, session: Session, name: str, number: int) -> PromptTemplateVersion:
        row = session.exec(
            select(PromptTemplateVersion).where(
                PromptTemplateVersion.name == name, PromptTemplateVersion.version == number
            )
        ).first()
        if row is None:
            raise ReleaseError(f"template {name} version {number} does not exist", 404, "not_found")
        return row

    def production(self, session: Session, name: str) -> int | None:
        """What unpinned requests get outside the canary: the pinned production, else the
        latest version."""
        release = self.release(session, name)
        if release is not None and release.production_version is not None:
            return release.production_version
        latest = self.latest(session, name)
        return latest.version if latest else None

    def pin(self, session: Session, name: str) -> TemplateRelease:
        """The release row, created with production pinned to what serves now."""
        release = self.release(session, name)
        if release is None:
            current = self.production(session, name)
            if current is None:
                raise ReleaseError(f"template '{name}' does not exist", 404, "not_found")
            release = TemplateRelease(name=name, production_version=current)
            session.add(release)
            session.flush()
        return release

    def set_canary(self, session: Session, name: str, version: int | None, share: float) -> None:
        release = self.pin(session, name)
        if version is not None:
            self.version(session, name, version)
        release.canary_version, release.canary_share = version, share if version else 0.0
        release.updated_at = utcnow()
        session.add(release)
        session.commit()

    def promote(self, session: Session, name: str, version: int) -> None:
        release = self.pin(session, name)
        self.version(session, name, version)
        release.production_version = version
        if release.canary_version == version:
            release.canary_version, release.canary_share = None, 0.0
        release.updated_at = utcnow()
        session.add(release)
        session.commit()

    def add_version(
        self, session: Session, spec: TemplateSpec, origin: str
    ) -> PromptTemplateVersion:
        """A new version that does not serve yet: production is pinned first."""
        self.pin(session, spec.name)
        latest = self.latest(session, spec.name)
        row = PromptTemplateVersion(
            name=spec.name,
            version=(latest.version + 1) if latest else 1,
            content_hash=content_hash(spec),
            spec=spec.model_dump(mode="json"),
            origin=origin,
        )
        session.add(row)
        session.commit()
        session.refresh(row)
        return row

    def overview(self, session: Session) -> list[dict[str, object]]:
        """Every template with what serves it: production (pinned, or the latest), the
        canary and its share, and how many versions it has."""
        rows = session.exec(
            select(PromptTemplateVersion).order_by(
                col(PromptTemplateVersion.name), col(PromptTemplateVersion.version)
            )
        ).all()
        releases = {r.name: r for r in session.exec(select(TemplateRelease)).all()}
        names: dict[str, list[PromptTemplateVersion]] = {}
        for row in rows:
            names.setdefault(row.name, []).append(row)
        out = []
        for name, versions in names.items():
            release = releases.get(name) or TemplateRelease(name=name)
            pinned = release.production_version
            out.append(
                {
                    "name": name,
                    "versions": len(versions),
                    "production": pinned if pinned is not None else versions[-1].version,
                    "pinned": pinned is not None,
                    "canary": release.canary_version,
                    "share": release.canary_share,
                    "latest_origin": versions[-1].origin,
                }
            )
        return out
