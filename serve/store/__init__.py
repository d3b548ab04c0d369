"""Adapter stores: a local directory (default) or S3-compatible object storage."""

from serve.store.base import (
    AdapterStore,
    CacheFull,
    LocalStore,
    ObjectCorrupt,
    ObjectMissing,
    StoreError,
    StoreUnavailable,
    content_hash,
)
from serve.store.cache import AdapterCache
from serve.store.configured import open_store
from serve.store.s3 import S3Store

__all__ = [
    "AdapterCache",
    "AdapterStore",
    "CacheFull",
    "LocalStore",
    "ObjectCorrupt",
    "ObjectMissing",
    "S3Store",
    "StoreError",
    "StoreUnavailable",
    "content_hash",
    "open_store",
]
