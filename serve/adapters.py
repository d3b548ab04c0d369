"""Hot swap: which adapter versions are loaded on which engine, and what a `model` means.

The swap order is what makes it safe under load: a new version is loaded on every
engine that is its alias's home first (all of them unless `adapter_replicas` says how many;
the replicas ranked for the alias by rendezvous hashing, so each holds a stable share of many
adapters); only then does the alias switch (in the database, then in this cache);
the old version is unloaded once no request is still running on it. Gateways that did
not make the change pick it up in `reconcile`, which follows the same order.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import random
import time
from collections import defaultdict
from pathlib import Path

import httpx
from sqlalchemy import Engine
from sqlmodel import Session

from serve.errors import EngineLoadError, EngineUnreachable
from serve.metrics import GatewayMetrics
from serve.registry import Registry, RegistryError, inspect_adapter
from serve.replicas import ReplicaPool
from serve.tables import AdapterVersion, Alias
from serve.target import Target, bucket

log = logging.getLogger(__name__)


class AdapterRouter:
    """Resolves `model`, loads and unloads adapters on engines, counts in-flight requests."""

    def __init__(
        self,
        registry: Registry,
        db: Engine,
        client: httpx.AsyncClient,
        replicas: ReplicaPool,
        base_model: str,
        drain_timeout_s: float = 300.0,
        miss_refresh_s: float = 1.0,
        adapter_replicas: int = 0,
        metrics: GatewayMetrics | None = None,
    ) -> None:
        """`adapter_replicas`: how many replicas load an alias's versions ahead of its
        requests (0: every one); others load one on demand when a request spills over."""
        self.registry = registry
        self.adapter_replicas = adapter_replicas
        self.metrics = metrics
        self.db = db
        self.client = client
        self.replicas = replicas
        self.base_model = base_model
        self.drain_timeout_s = drain_timeout_s
        self.miss_refresh_s = miss_refresh_s
        self._last_miss_refresh = -miss_refresh_s
        self._newest_id = 0  # the highest version id read so far
        self.aliases: dict[str, Alias] = {}
        self.versions: dict[tuple[str, int], AdapterVersion] = {}
        self.newest: dict[str, int] = {}  # alias -> its highest version number
        self.loaded: dict[str, set[str]] = defaultdict(set)  # engine url -> engine names
        self.load_count: dict[str, int] = defaultdict(int)  # engine url -> loads made
        self.load_seconds: dict[str, float] = defaultdict(float)
        self.inflight: dict[str, int] = defaultdict(int)
        if metrics is not None:
            for url in replicas.urls:
                metrics.watch_held(url, functools.partial(self._held, url))
        self._load_locks: dict[str, asyncio.Lock] = defaultdict(asyncio.Lock)
        self._reconcile_lock = asyncio.Lock()
        self._background: set[asyncio.Task[None]] = set()

    def holding(self, target: Target) -> set[str]:
        """Engines that have the target's model loaded already (the base model: all)."""
        if target.version is None:
            return set(self.replicas.urls)
        return {url for url, names in self.loaded.items() if target.engine_model in names}

    def load_summary(self, url: str) -> dict[str, float | int | None]:
        """What this gateway has loaded on a replica: versions held now, loads made, mean
        seconds per load (cold starts included), for the ops overview."""
        count = self.load_count[url]
        return {
            "adapters": len(self.loaded[url]),
            "loads": count,
            "load_ms": 1000 * self.load_seconds[url] / count if count else None,
        }

    def _held(self, url: str) -> int:
        return len(self.loaded[url])

    def key(self, target: Target) -> str | None:
        """What affinity routing hashes: the alias for an adapter (its versions share their
        homes, so a swap or a canary stays on the same replicas); None for the base model."""
        return target.alias if target.version is not None else None

    def homes(self, alias: str) -> list[str]:
        """The healthy replicas an alias's versions are loaded on ahead of requests, in rank
        order; when every home is down, the first healthy replica in the alias's rank."""
        healthy = set(self.replicas.healthy())
        homes = [u for u in self.replicas.homes(alias, self.adapter_replicas) if u in healthy]
        return homes or [u for u in self.replicas.homes(alias, 0) if u in healthy][:1]

    def serving(self, target: Target) -> bool:
        """The target is its alias's production, canary or shadow version (or no adapter)."""
        alias = self.aliases.get(target.alias or "")
        if target.version is None:
            return True
        return alias is not None and target.version in (
            alias.production_version,
            alias.canary_version,
            alias.shadow_version,
        )

    def model_names(self) -> list[str]:
        names = [
            self.base_model,
            *sorted(a.name for a in self.aliases.values() if a.production_version is not None),
        ]
        return names + sorted(v.ref for v in self.versions.values())

    async def resolve(self, model: str, sticky: str | None = None) -> Target:
        """What `model` means for this request. With a `sticky` id (the end user or the
        session), the canary-or-production choice is a hash of it, so one person stays on
        one version (and, as the canary's share grows, those on it stay on it)."""
        if model == self.base_model:
            return Target(self.base_model)
        name, _, pinned = model.partition("@")
        if pinned:
            if not pinned.isdigit():
                raise RegistryError(
                    f"model '{model}': a version must be a number", 404, "model_not_found"
                )
            version = await self._version(name, int(pinned))
            return Target(version.engine_name, name, version.version, pinned=True)
        alias = self.aliases.get(name)
        if alias is None:
            await self._refresh_on_miss()
            alias = self.aliases.get(name)
        if alias is None:
            raise RegistryError(f"the model '{model}' does not exist", 404, "model_not_found")
        if alias.production_version is None:
            raise RegistryError(f"alias '{name}' has no production version", 404, "model_not_found")
        number = alias.production_version
        if alias.canary_version is not None and alias.canary_share > 0:
            draw = random.random() if sticky is None else bucket(name, alias.canary_version, sticky)
            if draw < alias.canary_share:
                number = alias.canary_version
        version = await self._version(name, number)
        return Target(version.engine_name, name, number)

    def shadow_for(self, target: Target) -> Target | None:
        """The shadow that should also answer this production request, if any (drawn at
        the alias's shadow share; canary and pinned requests are never shadowed)."""
        alias = self.aliases.get(target.alias or "")
        if (
            alias is None
            or target.pinned
            or alias.shadow_version is None
            or target.version != alias.production_version
            or random.random() >= alias.shadow_share
        ):
            return None
        version = self.versions.get((alias.name, alias.shadow_version))
        if version is None:
            return None
        return Target(version.engine_name, alias.name, alias.shadow_version)

    async def acquire(self, target: Target, engine_url: str) -> None:
        """Count the request as in flight on its version and make sure it is loaded there.

        Every acquire is paired with one `release`, also when this raises (then the
        request is not counted any more).
        """
        self.inflight[target.engine_model] += 1
        self.replicas.begin(engine_url)
        if target.version is not None:
            try:
                await self._load(engine_url, self.versions[(target.alias or "", target.version)])
            except BaseException:
                self.release(target, engine_url)
                raise

    def release(self, target: Target, engine_url: str) -> None:
        self.inflight[target.engine_model] -= 1
        self.replicas.end(engine_url)

    async def load_everywhere(self, version: AdapterVersion) -> None:
        """Load on every healthy home of the version's alias; raise if one refuses (nothing
        is switched then).

        An engine that does not answer leaves rotation instead of blocking the switch: it
        gets every version it is home to before it comes back (`reload_engine`).
        """
        self._remember([version])
        urls = self.homes(version.name)
        if not urls:
            raise EngineLoadError(f"no engine replica is healthy to load {version.ref} on")
        results = await asyncio.gather(
            *(self._load(url, version) for url in urls), return_exceptions=True
        )
        loaded = 0
        for url, result in zip(urls, results, strict=True):
            if isinstance(result, EngineUnreachable):
                self.replicas.mark_down(url, str(result))
            elif isinstance(result, BaseException):
                raise result
            else:
                loaded += 1
        if not loaded:
            raise EngineLoadError(f"no engine replica answered to load {version.ref}")

    async def reconcile(self) -> None:
        """Bring the cache and the engines in line with the database."""
        async with self._reconcile_lock:
            versions, aliases = await asyncio.to_thread(self._read_state)
            self._remember(versions)
            for alias in aliases:
                cached = self.aliases.get(alias.name)
                if cached is not None and cached.revision == alias.revision:
                    continue
                for number in (
                    alias.production_version,
                    alias.canary_version,
                    alias.shadow_version,
                ):
                    if number is not None:
                        await self.load_everywhere(self.versions[(alias.name, number)])
                self.aliases[alias.name] = alias
            self.schedule_unload()

    async def _refresh_on_miss(self) -> None:
        """A name not in the cache may have just been registered on another gateway: read
        the database again, but at most once per `miss_refresh_s`, so that a flood of
        requests for unknown models does not cost the database a query each."""
        now = time.monotonic()
        if now - self._last_miss_refresh < self.miss_refresh_s:
            return
        self._last_miss_refresh = now
        await self.reconcile()

    def engine_restarted(self, url: str) -> None:
        """An engine came back empty: forget what it had; referenced versions load again."""
        self.loaded[url].clear()

    async def reload_engine(self, url: str) -> None:
        self.engine_restarted(url)
        for version in self._referenced():
            if url in self.replicas.homes(version.name, self.adapter_replicas):
                await self._load(url, version)

    def schedule_unload(self) -> None:
        """Unload, in the background, loaded versions no alias points at any more."""
        task = asyncio.get_running_loop().create_task(self._unload_unreferenced())
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def drain(self) -> None:
        if self._background:
            await asyncio.gather(*self._background, return_exceptions=True)

    async def _unload_unreferenced(self) -> None:
        keep = self._keep()
        stale = {name for names in self.loaded.values() for name in names} - keep
        loop = asyncio.get_running_loop()
        for name in stale:
            deadline = loop.time() + self.drain_timeout_s
            while self.inflight[name] > 0 and loop.time() < deadline:
                await asyncio.sleep(0.05)
            for url, names in self.loaded.items():
                if name in names and self.inflight[name] == 0 and name not in self._keep():
                    async with self._load_locks[f"{url}|{name}"]:
                        names.discard(name)
                        try:
                            await self._post(url, "/v1/unload_lora_adapter", {"lora_name": name})
                        except EngineLoadError as exc:
                            log.warning("could not unload %s: %s", name, exc)
                            continue
                    if self.metrics is not None:
                        self.metrics.adapter_unloads.labels(url).inc()
                    log.info("unloaded %s from %s", name, url)

    def _keep(self) -> set[str]:
        """What is never unloaded: the versions aliases point at, and each alias's newest
        version while it is newer than production. A version is registered to be promoted
        or tried next; keeping it loaded is what lets that switch skip a load under load."""
        keep = {v.engine_name for v in self._referenced()}
        for name, number in self.newest.items():
            alias = self.aliases.get(name)
            if alias is None or number > (alias.production_version or 0):
                keep.add(self.versions[(name, number)].engine_name)
        return keep

    def _remember(self, versions: list[AdapterVersion]) -> None:
        for v in versions:
            self.versions[(v.name, v.version)] = v
            if v.version > self.newest.get(v.name, 0):
                self.newest[v.name] = v.version

    def _referenced(self) -> list[AdapterVersion]:
        refs = []
        for alias in self.aliases.values():
            for number in (alias.production_version, alias.canary_version, alias.shadow_version):
                if number is not None and (alias.name, number) in self.versions:
                    refs.append(self.versions[(alias.name, number)])
        return refs

    async def _version(self, name: str, number: int) -> AdapterVersion:
        version = self.versions.get((name, number))
        if version is None:
            await self._refresh_on_miss()
            version = self.versions.get((name, number))
        if version is None:
            raise RegistryError(
                f"the model '{name}@{number}' does not exist", 404, "model_not_found"
            )
        return version

    async def _load(self, url: str, version: AdapterVersion) -> None:
        name = version.engine_name
        if name in self.loaded[url]:
            return
        async with self._load_locks[f"{url}|{name}"]:
            if name in self.loaded[url]:
                return
            began = time.perf_counter()
            await asyncio.to_thread(self._verify, version)
            response = await self._post(
                url, "/v1/load_lora_adapter", {"lora_name": name, "lora_path": version.path}
            )
            if response.status_code != 200 and "already been loaded" not in response.text:
                self._refused(url, version, response)
            self.loaded[url].add(name)
            took = time.perf_counter() - began
            self.load_count[url] += 1
            self.load_seconds[url] += took
            if self.metrics is not None:
                self.metrics.adapter_loaded(version.name, url, took)
            log.info("loaded %s (%s) on %s", version.ref, name, url)

    def _refused(self, url: str, version: AdapterVersion, response: httpx.Response) -> None:
        """Count and log a refused load, then raise it with the engine's reason."""
        try:
            reason = str(response.json()["error"]["type"])
        except (ValueError, KeyError, TypeError):
            reason = "engine_refused"
        if not reason.startswith("adapter_"):
            reason = "engine_refused"
        if self.metrics is not None:
            self.metrics.adapter_load_failures.labels(version.name, url, reason).inc()
        message = f"engine {url} could not load {version.ref}: {response.status_code} "
        log.warning("%s%s", message, response.text[:500])
        status = 503 if reason == "adapter_store_unavailable" else 400
        raise EngineLoadError(message + response.text[:500], status)

    def _verify(self, version: AdapterVersion) -> None:
        """The files are still the ones registered (same checks, same content hash): an
        adapter swapped on disk after registration is never loaded. Published to an object
        store, the files are checked by the engine host that fetches them instead."""
        if self.registry.objects.remote:
            return
        try:
            files = inspect_adapter(Path(version.path), self.registry.store, self.registry.max_rank)
        except RegistryError as exc:
            raise EngineLoadError(f"{version.ref} is no longer loadable: {exc}") from None
        if files.content_hash != version.content_hash:
            raise EngineLoadError(
                f"{version.ref} changed on disk since it was registered (content hash "
                f"{files.content_hash[:12]}, registered {version.content_hash[:12]}): not loaded"
            )

    async def _post(self, url: str, path: str, body: dict[str, str]) -> httpx.Response:
        try:
            return await self.client.post(f"{url}{path}", json=body, timeout=120)
        except httpx.HTTPError as exc:
            raise EngineUnreachable(f"engine {url} did not answer {path}: {exc!r}") from None

    def _read_state(self) -> tuple[list[AdapterVersion], list[Alias]]:
        """Every alias, and only the versions this gateway has not read yet: a reconcile
        stays as cheap at ten thousand versions as at ten."""
        with Session(self.db) as session:
            versions = self.registry.versions_since(session, self._newest_id)
            aliases = self.registry.aliases(session)
            for row in [*versions, *aliases]:
                session.expunge(row)
        self._newest_id = max([self._newest_id, *(v.id or 0 for v in versions)])
        return versions, aliases
