"""The online path: engine manager (vLLM), model store, gateway routes."""

from serve.engine import EngineError, EngineManager, port_in_use
from serve.model_store import ModelError, ModelPuller, check_model_dir, list_models
from serve.settings import EngineSettings, ModelSettings, ServeSettings, StoreSettings

__all__ = [
    "EngineError",
    "EngineManager",
    "EngineSettings",
    "ModelError",
    "ModelPuller",
    "ModelSettings",
    "ServeSettings",
    "StoreSettings",
    "check_model_dir",
    "list_models",
    "port_in_use",
]
