"""loraloop wiring: settings, database, app factory and CLI."""

from loraloop.app import create_app
from loraloop.settings import Settings, get_settings

__all__ = ["Settings", "create_app", "get_settings"]
