"""The adapter store the settings name, built the same way on gateways, workers and engines."""

from __future__ import annotations

from serve.settings import StoreSettings
from serve.store.base import AdapterStore, LocalStore
from serve.store.cache import AdapterCache
from serve.store.s3 import S3Store


def open_store(settings: StoreSettings) -> AdapterStore:
    if settings.url is None:
        return LocalStore()
    cache = AdapterCache(settings.cache_dir, int(settings.cache_max_gib * 2**30))
    return S3Store(
        settings.url,
        cache,
        endpoint_url=settings.endpoint_url,
        region=settings.region,
        timeout_s=settings.timeout_s,
    )
