"""The long-lived collaborators every entry point builds the same way from settings."""

from loraloop.settings import Settings
from serve.engine import EngineManager
from serve.registry import Registry
from serve.store import open_store


def build_engine_manager(settings: Settings) -> EngineManager:
    return EngineManager(
        settings.engine, settings.model.model_dir(), settings.model.name, settings.tracing
    )


def build_registry(settings: Settings) -> Registry:
    return Registry(
        settings.model.name,
        settings.serve.adapter_store,
        settings.engine.max_lora_rank,
        open_store(settings.store),
    )
