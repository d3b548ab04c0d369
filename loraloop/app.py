"""The app factory: builds the gateway from settings and the objects it depends on."""

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import httpx
from fastapi import FastAPI
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from feedback.api import build_router as feedback_router
from feedback.capture import CaptureWriter
from feedback.drift import DriftReport
from feedback.drift.api import build_router as drift_router
from feedback.pages import PageRefusal, page_refusal
from feedback.pages import build_pages as feedback_pages
from loraloop.builders import build_engine_manager, build_registry
from loraloop.console import build_console
from loraloop.db import SessionFactory, create_db_engine
from loraloop.settings import Settings
from loraloop.worker import DriftJobs, Worker
from serve.adapters import AdapterRouter
from serve.admin import router as admin_router
from serve.auth import Authenticator, public, require, signed_in
from serve.engine import EngineManager
from serve.errors import install_error_handlers
from serve.gateway import router as gateway_router
from serve.keys import router as keys_router
from serve.limits import BodyLimit, RequestLimits
from serve.metrics import GatewayMetrics
from serve.protocol import ErrorResponse
from serve.proxy import Proxy
from serve.ratelimit import InFlight, RateLimiter
from serve.replicas import ReplicaPool
from serve.rollouts import RolloutController
from serve.rollouts import overview as rollouts_overview
from serve.rollouts.api import router as rollouts_router
from serve.routes import router as platform_router
from serve.security import RequestGuard, is_loopback
from serve.shadow import ShadowSender
from serve.templates import TemplateStore, sync_templates
from serve.tracing import Tracing

log = logging.getLogger(__name__)


def open_access(settings: Settings, bound_host: str | None = None) -> bool:
    """Open mode is an explicit opt-in (`LORALOOP_SERVE_REQUIRE_KEYS=false`), allowed only
    when the address actually bound is loopback; even then only requests straight from
    this machine skip the key (serve/security.py)."""
    host = bound_host or settings.serve.host
    if settings.serve.require_keys:
        return False
    if not is_loopback(host):
        raise ValueError(
            f"LORALOOP_SERVE_REQUIRE_KEYS=false is allowed on a loopback address only; the "
            f"gateway would bind {host}: require keys, or bind 127.0.0.1"
        )
    return True


def access_line(settings: Settings, bound_host: str) -> str:
    """The truth about access, said once at start."""
    if open_access(settings, bound_host):
        return (
            f"open mode: requests from this machine need no API key (bound to {bound_host}); "
            "anything relayed or remote does. LORALOOP_SERVE_REQUIRE_KEYS=true turns it off"
        )
    return f"API keys required on every request (bound to {bound_host})"


def create_app(
    settings: Settings,
    engine: EngineManager | None = None,
    bound_host: str | None = None,
    tracing: Tracing | None = None,
) -> FastAPI:
    """The gateway app. A given engine manager that is already running is kept as is;
    otherwise the lifespan starts it (when settings say so) and stops it on shutdown.
    `bound_host` is the address uvicorn listens on (default: the settings' host);
    `tracing` replaces the one built from settings."""
    manager = engine if engine is not None else build_engine_manager(settings)
    host = bound_host or settings.serve.host
    unauthenticated = open_access(settings, host)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        s = app.state
        if settings.serve.start_engine and manager.state == "stopped":
            await asyncio.to_thread(manager.start)  # first: it may make the engine's key
        engine_auth = settings.engine.headers()
        s.db = create_db_engine(settings.db.url.get_secret_value(), settings.db.echo)
        s.sessions = SessionFactory(s.db)
        s.engine = manager
        serve = settings.serve
        s.auth = Authenticator(
            s.db,
            open_access=unauthenticated,
            cache_ttl_s=serve.reconcile_interval_s,
            session_ttl_s=serve.session_ttl_s,
            failures=RateLimiter(serve.auth_failures_per_min / 60, serve.auth_failures_burst),
        )
        s.limiter = RateLimiter(serve.rate_limit_per_s, serve.rate_limit_burst)
        (log.warning if unauthenticated else log.info)(access_line(settings, host))
        fb = settings.feedback
        s.capture = CaptureWriter(
            s.db,
            fb.capture_spool_path,
            queue_size=fb.capture_queue_size,
            batch_size=fb.capture_batch_size,
            retry_interval_s=fb.capture_retry_interval_s,
        )
        s.capture.start()
        s.metrics = GatewayMetrics()
        s.metrics.watch_capture(s.capture)
        s.metrics.watch_loop(s.db)
        s.templates = TemplateStore(ttl_s=settings.serve.reconcile_interval_s)
        s.client = httpx.AsyncClient(
            headers=engine_auth,
            timeout=httpx.Timeout(600, connect=10),
            limits=httpx.Limits(max_connections=1024, max_keepalive_connections=256),
        )
        s.replicas = ReplicaPool(
            manager.urls,
            s.client,
            settings.serve.replica_check_interval_s,
            settings.serve.replica_check_timeout_s,
            settings.serve.affinity_load_factor if settings.serve.routing == "affinity" else None,
            settings.serve.affinity_min_load,
        )
        s.router = AdapterRouter(
            build_registry(settings),
            s.db,
            s.client,
            s.replicas,
            settings.model.name,
            settings.serve.drain_timeout_s,
            adapter_replicas=settings.serve.adapter_replicas,
            metrics=s.metrics,
        )
        s.replicas.on_recover = s.router.reload_engine
        s.replicas.on_change = s.metrics.replica_changed
        # The hot path uses aiohttp: measurably less per-request overhead than httpx here.
        s.http = aiohttp.ClientSession(
            headers=engine_auth,
            timeout=aiohttp.ClientTimeout(
                total=600, connect=10, sock_read=settings.serve.first_byte_timeout_s
            ),
            connector=aiohttp.TCPConnector(limit=1024, ttl_dns_cache=300),
        )
        s.tracing = tracing or Tracing.from_settings(settings.tracing, "loraloop-gateway")
        s.shadow = ShadowSender(s.router, s.replicas, s.http, s.capture)
        s.metrics.watch_shadow(lambda: s.shadow.sent, lambda: s.shadow.dropped)
        s.proxy = Proxy(
            s.router,
            s.replicas,
            s.http,
            s.templates,
            s.db,
            s.capture,
            s.metrics,
            RequestLimits(
                max_body_bytes=settings.serve.max_body_bytes,
                max_json_depth=settings.serve.max_json_depth,
                max_n=settings.serve.max_n,
                max_tokens=settings.engine.max_model_len,
                max_messages=settings.serve.max_messages,
            ),
            s.shadow,
            InFlight(settings.serve.max_concurrent_per_key),
            s.tracing,
        )
        loop = asyncio.get_running_loop()
        manager.on_ready(lambda m: _reload_after_restart(loop, s.router, m))
        await s.replicas.check_all()
        for url in s.replicas.urls:  # exported from the start, not only after a change
            s.metrics.replica_changed(url, url in s.replicas.healthy())
        sync = StateSync(s.db, s.router, settings.serve.templates_dir)
        await sync.once()
        background = [
            loop.create_task(sync.forever(settings.serve.reconcile_interval_s)),
            loop.create_task(s.replicas.watch()),
        ]
        s.drift = DriftJobs(s.db, settings, tracing=s.tracing)
        s.rollouts = RolloutController(s.db, build_registry(settings), settings.rollout)
        s.worker = Worker(s.db, settings, jobs=s.drift) if settings.worker.in_gateway else None
        if s.worker is not None:
            await asyncio.to_thread(s.worker.start)
        try:
            yield
        finally:
            if s.worker is not None:
                await asyncio.to_thread(s.worker.stop)
            for task in background:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await s.shadow.close()
            await asyncio.to_thread(manager.stop)
            await s.client.aclose()
            await s.http.close()
            await asyncio.to_thread(s.capture.close)
            await asyncio.to_thread(s.tracing.shutdown)
            s.db.dispose()

    errors = {"model": ErrorResponse, "description": "An OpenAI-style error object"}
    app = FastAPI(
        title="loraloop",
        version="0.1.0",
        lifespan=lifespan,
        openapi_url=None,  # served by serve/routes.py, to this machine and keys only
        docs_url=None,
        redoc_url=None,
        responses={"4XX": errors, "5XX": errors},
    )
    install_error_handlers(app)
    app.add_exception_handler(PageRefusal, page_refusal)
    app.add_middleware(
        BodyLimit,
        max_body_bytes=settings.serve.max_body_bytes,
        own_check=("/v1/chat/completions", "/v1/completions"),
    )
    app.add_middleware(RequestGuard, allowed_hosts=settings.serve.allowed_hosts)
    if settings.serve.trusted_proxies:  # outermost: the guard and routes see the real client
        app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=settings.serve.trusted_proxies)
    app.include_router(platform_router)
    app.include_router(gateway_router)
    app.include_router(admin_router)
    app.include_router(keys_router)
    app.include_router(rollouts_router)

    def recent() -> set[tuple[str, int]]:
        return new_versions(app.state.router, settings.feedback.sample_new_version_days)

    app.include_router(feedback_router(require, settings.feedback, recent))
    app.include_router(
        feedback_pages(settings.feedback, recent, signed_in, public, rollouts_overview)
    )
    app.include_router(build_console(settings, signed_in))

    def run_drift(alias: str, template: str | None) -> DriftReport:
        return app.state.drift.run(alias, template, "manual")

    app.include_router(drift_router(require, run_drift))
    return app


def new_versions(router: AdapterRouter, days: float) -> set[tuple[str, int]]:
    """Adapter versions young enough for the review queue to oversample."""
    cutoff = datetime.now(UTC) - timedelta(days=days)
    return {(v.name, v.version) for v in router.versions.values() if v.created_at > cutoff}


def _reload_after_restart(
    loop: asyncio.AbstractEventLoop, router: AdapterRouter, manager: EngineManager
) -> None:
    """Runs on the engine supervisor's thread: reload adapters on the app's loop."""
    for url in manager.urls:
        asyncio.run_coroutine_threadsafe(router.reload_engine(url), loop)


class StateSync:
    """Keeps templates and adapter aliases in line with files and the database.

    A database that is down at start does not stop the gateway (capture spools meanwhile);
    the sync is retried on every interval until it succeeds.
    """

    def __init__(self, db: Engine, router: AdapterRouter, templates_dir: Path) -> None:
        self.db = db
        self.router = router
        self.templates_dir = templates_dir
        self.templates_synced = False

    async def once(self) -> None:
        try:
            if not self.templates_synced:
                await asyncio.to_thread(self._sync_templates)
                self.templates_synced = True
            await self.router.reconcile()
        except SQLAlchemyError as exc:
            log.warning("database unavailable (%s); retrying", type(exc).__name__)
        except Exception:
            log.exception("could not bring adapters in line with the database; retrying")

    async def forever(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            await self.once()

    def _sync_templates(self) -> None:
        with Session(self.db) as session:
            sync_templates(session, self.templates_dir)
