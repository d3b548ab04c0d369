"""What an adapter store does, and how it fails.

A version's files are published once, under a location that names their content hash, and
read back on every host that loads them. The content hash (sha256 over the peft config and
weights, the one the registry records) is checked again wherever the files are read, so a
missing or altered object is an error on that load, never a half-loaded version.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Protocol

HASHED = ("adapter_config.json", "adapter_model.safetensors")


def content_hash(directory: Path) -> str:
    """The registry's content hash of an adapter directory (config, then weights)."""
    digest = hashlib.sha256()
    for name in HASHED:
        with (directory / name).open("rb") as file:
            for block in iter(lambda: file.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


class StoreError(RuntimeError):
    """An adapter's files could not be published or read; `status` is the HTTP status."""

    status = 502
    code = "adapter_store_error"


class ObjectMissing(StoreError):
    status = 404
    code = "adapter_object_missing"


class ObjectCorrupt(StoreError):
    status = 422
    code = "adapter_object_corrupt"


class StoreUnavailable(StoreError):
    status = 503
    code = "adapter_store_unavailable"


class CacheFull(StoreError):
    status = 507
    code = "adapter_cache_full"


class AdapterStore(Protocol):
    """Publishes a checked adapter directory and gives a local copy of a published one."""

    remote: bool

    def publish(self, directory: Path, name: str, digest: str) -> str:
        """Make the files available to every engine host; the location to load from."""
        ...

    def local(self, location: str, keep: frozenset[Path] = frozenset()) -> Path:
        """A directory on this host holding the files at `location`, hash-checked."""
        ...


class LocalStore:
    """The default: a directory every engine sees at the same path (one host, or NFS).

    Publishing is the directory itself; the gateway checks the files before each load.
    """

    remote = False

    def publish(self, directory: Path, name: str, digest: str) -> str:
        return str(directory)

    def local(self, location: str, keep: frozenset[Path] = frozenset()) -> Path:
        return Path(location)
