"""The app factory: builds the gateway from settings and the objects it depends on."""

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from loraloop.db import SessionFactory, create_db_engine
from loraloop.settings import Settings
from serve.engine import EngineManager
from serve.routes import router as platform_router


def build_engine_manager(settings: Settings) -> EngineManager:
    return EngineManager(settings.engine, settings.model.model_dir(), settings.model.name)


def create_app(settings: Settings, engine: EngineManager | None = None) -> FastAPI:
    """The gateway app. A given engine manager that is already running is kept as is;
    otherwise the lifespan starts it (when settings say so) and stops it on shutdown."""
    manager = engine if engine is not None else build_engine_manager(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        db_engine = create_db_engine(settings.db.url.get_secret_value(), settings.db.echo)
        app.state.sessions = SessionFactory(db_engine)
        app.state.engine = manager
        if settings.serve.start_engine and manager.state == "stopped":
            await asyncio.to_thread(manager.start)
        try:
            yield
        finally:
            await asyncio.to_thread(manager.stop)
            db_engine.dispose()

    app = FastAPI(title="loraloop", version="0.1.0", lifespan=lifespan)
    app.include_router(platform_router)
    return app
