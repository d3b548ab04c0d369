"""The adapter registry: immutable versions, aliases, canary shares, in the database.

This module holds only database state and its rules; loading adapters onto engines is
`serve.adapters`. A version's engine name joins its reference and a hash of its
weights, so an engine never sees one name with two different sets of weights.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlmodel import Session, col, func, or_, select

from serve.store import AdapterStore, LocalStore, StoreError, content_hash
from serve.tables import AdapterVersion, Alias, utcnow


class RegistryError(ValueError):
    """A registry operation was refused; `status` is the HTTP status it maps to."""

    def __init__(self, message: str, status: int = 400, code: str = "invalid_request") -> None:
        super().__init__(message)
        self.status = status
        self.code = code


@dataclass(frozen=True)
class AdapterFiles:
    """What a peft adapter directory says about itself."""

    path: Path
    base_model: str | None
    rank: int
    content_hash: str


UNSAFE_WEIGHTS = (".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt")  # pickle: runs code


def inspect_adapter(path: Path, store: Path, max_rank: int) -> AdapterFiles:
    """Check an adapter directory before it is registered; refuse what vLLM cannot serve
    and what it should not load: a path (or a symlink in it) leading out of the store,
    pickled weights (loading them runs code; safetensors only), a config that is not one."""
    try:
        resolved = path.resolve()
        root = store.resolve()
    except (OSError, ValueError) as exc:
        raise RegistryError(f"adapter path {str(path)[:200]!r} is not usable: {exc}") from None
    if not resolved.is_relative_to(root) or resolved == root:
        raise RegistryError(f"adapter path {path} is outside the adapter store {store}")
    if not resolved.is_dir():
        raise RegistryError(f"{path} is not a peft adapter: not a directory")
    files = sorted(resolved.rglob("*"))
    for file in files:
        if not file.resolve().is_relative_to(root):
            raise RegistryError(f"{file.relative_to(resolved)} in {path} links out of the store")
        if file.suffix.lower() in UNSAFE_WEIGHTS:
            raise RegistryError(
                f"{file.name} in {path} is a pickle file, which runs code when loaded: "
                "save the adapter with safetensors (peft's default)"
            )
    config_path = resolved / "adapter_config.json"
    try:
        config = json.loads(config_path.read_text())
    except (OSError, ValueError):
        raise RegistryError(
            f"{path} is not a peft adapter: no readable adapter_config.json"
        ) from None
    if not isinstance(config, dict):
        raise RegistryError(f"{path}: adapter_config.json is not a JSON object")
    weights = resolved / "adapter_model.safetensors"
    if not weights.is_file():
        raise RegistryError(f"{path} is not a peft adapter: no adapter_model.safetensors")
    if config.get("modules_to_save"):
        raise RegistryError(
            f"adapter {path} has modules_to_save {config['modules_to_save']}, which vLLM "
            "cannot serve: train it without modules_to_save"
        )
    rank = config.get("r", 0)
    if not isinstance(rank, int) or isinstance(rank, bool) or rank < 1:
        raise RegistryError(f"adapter {path}: rank r must be a positive integer, got {rank!r}")
    if rank > max_rank:
        raise RegistryError(
            f"adapter rank {rank} exceeds the engine's max_lora_rank {max_rank} "
            "(LORALOOP_ENGINE_MAX_LORA_RANK)"
        )
    base = config.get("base_model_name_or_path")
    return AdapterFiles(
        resolved, base if isinstance(base, str) else None, rank, content_hash(resolved)
    )


class Registry:
    """Adapter versions and aliases; every method takes the caller's session.

    `store` is the directory adapters are registered from; `objects` is where a registered
    version's files are published for the engines (the same directory by default).
    """

    def __init__(
        self, base_model: str, store: Path, max_rank: int, objects: AdapterStore | None = None
    ) -> None:
        self.base_model = base_model
        self.store = store
        self.max_rank = max_rank
        self.objects: AdapterStore = objects or LocalStore()

    def register(
        self,
        session: Session,
        name: str,
        path: Path,
        *,
        base_model: str | None = None,
        metrics: dict[str, Any] | None = None,
        lineage: dict[str, Any] | None = None,
    ) -> AdapterVersion:
        files = inspect_adapter(path, self.store, self.max_rank)
        for claimed in (base_model, files.base_model):
            if claimed and not _same_base(claimed, self.base_model):
                raise RegistryError(
                    f"adapter {path} is for base model {claimed!r}, "
                    f"but this platform serves {self.base_model!r}"
                )
        latest = session.exec(
            select(func.max(AdapterVersion.version)).where(AdapterVersion.name == name)
        ).one()
        number = (latest or 0) + 1
        try:
            location = self.objects.publish(files.path, name, files.content_hash)
        except StoreError as exc:
            raise RegistryError(str(exc), exc.status, exc.code) from None
        row = AdapterVersion(
            name=name,
            version=number,
            engine_name=f"{name}@{number}-{files.content_hash[:12]}",
            path=location,
            base_model=self.base_model,
            rank=files.rank,
            content_hash=files.content_hash,
            metrics=metrics or {},
            lineage={"parent_version": latest, **(lineage or {})},
        )
        session.add(row)
        session.commit()
        session.refresh(row)
        return row

    def version(self, session: Session, name: str, number: int) -> AdapterVersion:
        row = session.exec(
            select(AdapterVersion).where(
                AdapterVersion.name == name, AdapterVersion.version == number
            )
        ).first()
        if row is None:
            raise RegistryError(f"no version {number} of adapter '{name}'", 404, "model_not_found")
        return row

    def versions(self, session: Session, name: str | None = None) -> list[AdapterVersion]:
        query = select(AdapterVersion).order_by(
            col(AdapterVersion.name), col(AdapterVersion.version)
        )
        if name is not None:
            query = query.where(AdapterVersion.name == name)
        return list(session.exec(query))

    def versions_since(
        self, session: Session, after_id: int, recent_s: float = 300.0
    ) -> list[AdapterVersion]:
        """Versions with an id above `after_id`, and every version made in the last
        `recent_s` seconds again: a registration whose transaction began earlier may commit
        after a later id was read (versions never change once written)."""
        since = utcnow() - timedelta(seconds=recent_s)
        query = select(AdapterVersion).where(
            or_(col(AdapterVersion.id) > after_id, col(AdapterVersion.created_at) >= since)
        )
        return list(session.exec(query.order_by(col(AdapterVersion.id))))

    def aliases(self, session: Session) -> list[Alias]:
        return list(session.exec(select(Alias).order_by(col(Alias.name))))

    def alias(self, session: Session, name: str) -> Alias | None:
        return session.get(Alias, name)

    def promote(self, session: Session, name: str, number: int) -> Alias:
        """Point the alias's production at `number`; the old one is kept for rollback."""
        self.version(session, name, number)
        alias = session.get(Alias, name) or Alias(name=name)
        if alias.production_version != number:
            alias.previous_version = alias.production_version
            alias.production_version = number
        if alias.canary_version == number:
            alias.canary_version, alias.canary_share = None, 0.0
        if alias.shadow_version == number:
            alias.shadow_version, alias.shadow_share = None, 0.0
        return self._save(session, alias)

    def set_canary(self, session: Session, name: str, number: int | None, share: float) -> Alias:
        alias = self._beside_production(session, name, number, share, "canary")
        alias.canary_version = number
        alias.canary_share = share if number is not None else 0.0
        return self._save(session, alias)

    def set_shadow(self, session: Session, name: str, number: int | None, share: float) -> Alias:
        alias = self._beside_production(session, name, number, share, "shadow")
        if number is not None and number == alias.production_version:
            raise RegistryError(f"{name}@{number} is production; it cannot shadow itself")
        alias.shadow_version = number
        alias.shadow_share = share if number is not None else 0.0
        return self._save(session, alias)

    def _beside_production(
        self, session: Session, name: str, number: int | None, share: float, role: str
    ) -> Alias:
        """The alias a canary or shadow version is set on, after checking the share, that
        the alias serves a production version, and that the version exists."""
        if not 0.0 <= share <= 1.0:
            raise RegistryError(f"{role} share must be between 0 and 1, got {share}")
        alias = session.get(Alias, name)
        if alias is None or alias.production_version is None:
            against = "canary against" if role == "canary" else "shadow"
            raise RegistryError(f"alias '{name}' has no production version to {against}")
        if number is not None:
            self.version(session, name, number)
        return alias

    def rollback(self, session: Session, name: str) -> Alias:
        alias = session.get(Alias, name)
        if alias is None or alias.previous_version is None:
            raise RegistryError(f"alias '{name}' has no previous version to roll back to")
        alias.production_version, alias.previous_version = (
            alias.previous_version,
            alias.production_version,
        )
        alias.canary_version, alias.canary_share = None, 0.0
        return self._save(session, alias)

    def _save(self, session: Session, alias: Alias) -> Alias:
        alias.revision += 1
        alias.updated_at = utcnow()
        session.add(alias)
        session.commit()
        session.refresh(alias)
        return alias


def _same_base(recorded: str, served: str) -> bool:
    """peft records the base model as a path or hub id; compare its last component."""
    return Path(recorded.rstrip("/")).name == Path(served.rstrip("/")).name
