"""The object store against a real S3 API server: publish, fetch, check, evict, fail clearly."""

import uuid
from pathlib import Path

import boto3
import pytest
from sqlmodel import Session, select

from loraloop import db
from loraloop.launch import free_port
from serve.registry import Registry, RegistryError
from serve.store import (
    AdapterCache,
    ObjectCorrupt,
    ObjectMissing,
    S3Store,
    StoreUnavailable,
    content_hash,
)
from serve.tables import AdapterVersion
from tests.utils.adapters import make_adapter_dir
from tests.utils.s3 import CREDENTIALS, S3Server

MIB = 2**20


@pytest.fixture(autouse=True)
def credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in CREDENTIALS.items():
        monkeypatch.setenv(name, value)


def store(server: S3Server, cache: Path, max_bytes: int = 64 * MIB) -> S3Store:
    bucket = f"adapters-{uuid.uuid4().hex[:8]}"
    return S3Store(f"s3://{bucket}/fleet", AdapterCache(cache, max_bytes), endpoint_url=server.url)


def adapter(root: Path, name: str, size: int = 1000) -> tuple[Path, str]:
    path = make_adapter_dir(root, name)
    (path / "adapter_model.safetensors").write_bytes(name.encode() * (size // len(name)))
    return path, content_hash(path)


def test_published_files_come_back_checked_and_once(s3_server: S3Server, tmp_path: Path) -> None:
    s3 = store(s3_server, tmp_path / "cache")
    path, digest = adapter(tmp_path / "src", "support")
    location = s3.publish(path, "support", digest)
    assert location == f"s3://{s3.bucket}/fleet/support/{digest}"
    assert s3.publish(path, "support", digest) == location  # same bytes, same place
    local = s3.local(location)
    assert local.parent == tmp_path / "cache"
    for name in ("adapter_config.json", "adapter_model.safetensors"):
        assert (local / name).read_bytes() == (path / name).read_bytes()
    assert s3.local(location) == local
    assert s3.cache.fetches == 1  # the second load is a cache hit


def test_an_altered_object_is_refused_and_leaves_nothing(
    s3_server: S3Server, tmp_path: Path
) -> None:
    s3 = store(s3_server, tmp_path / "cache")
    path, digest = adapter(tmp_path / "src", "support")
    location = s3.publish(path, "support", digest)
    s3.client.put_object(
        Bucket=s3.bucket, Key=f"fleet/support/{digest}/adapter_model.safetensors", Body=b"evil"
    )
    with pytest.raises(ObjectCorrupt, match=r"adapter_model\.safetensors does not match"):
        s3.local(location)
    assert list((tmp_path / "cache").iterdir()) == []  # no copy, no partial one


def test_a_manifest_that_lies_about_the_hash_is_refused(
    s3_server: S3Server, tmp_path: Path
) -> None:
    s3 = store(s3_server, tmp_path / "cache")
    _, digest = adapter(tmp_path / "src", "support")
    other, _ = adapter(tmp_path / "src", "other")
    s3.publish(other, "support", digest)  # files that are not the ones the hash names
    with pytest.raises(ObjectCorrupt, match="expected"):
        s3.local(f"s3://{s3.bucket}/fleet/support/{digest}")


def test_a_missing_version_is_named(s3_server: S3Server, tmp_path: Path) -> None:
    s3 = store(s3_server, tmp_path / "cache")
    path, digest = adapter(tmp_path / "src", "support")
    s3.publish(path, "support", digest)
    missing = f"s3://{s3.bucket}/fleet/support/{'0' * 64}"
    with pytest.raises(ObjectMissing, match=missing):
        s3.local(missing)


def test_a_copy_altered_on_this_disk_is_fetched_again(s3_server: S3Server, tmp_path: Path) -> None:
    s3 = store(s3_server, tmp_path / "cache")
    path, digest = adapter(tmp_path / "src", "support")
    location = s3.publish(path, "support", digest)
    local = s3.local(location)
    (local / "adapter_model.safetensors").write_bytes(b"bit rot")
    assert content_hash(s3.local(location)) == digest
    assert s3.cache.fetches == 2


def test_the_cache_evicts_least_recently_used_but_never_kept(
    s3_server: S3Server, tmp_path: Path
) -> None:
    s3 = store(s3_server, tmp_path / "cache", max_bytes=2 * MIB + MIB // 2)
    locations = []
    for name in ("a", "b", "c", "d"):
        path, digest = adapter(tmp_path / "src", name, size=MIB)
        locations.append(s3.publish(path, name, digest))
    a = s3.local(locations[0])
    b = s3.local(locations[1])
    s3.local(locations[0])  # a is now more recent than b
    s3.local(locations[2])
    assert a.exists() and not b.exists()
    d = s3.local(locations[3], keep=frozenset({a}))  # c is older than a, but a is kept
    assert a.exists() and d.exists() and not (tmp_path / "cache" / locations[2][-64:]).exists()


def test_a_store_that_is_down_is_a_clear_error_and_registers_nothing(
    tmp_path: Path, sqlite_url: str
) -> None:
    down = S3Store(
        "s3://adapters/fleet",
        AdapterCache(tmp_path / "cache", MIB),
        endpoint_url=f"http://127.0.0.1:{free_port()}",
        timeout_s=0.5,
    )
    path, digest = adapter(tmp_path / "adapters", "support")
    with pytest.raises(StoreUnavailable, match="did not answer"):
        down.publish(path, "support", digest)
    with pytest.raises(StoreUnavailable, match="did not answer"):
        down.local(f"s3://adapters/fleet/support/{digest}")
    registry = Registry("base", tmp_path / "adapters", 16, down)
    with Session(db.create_db_engine(sqlite_url)) as session:
        with pytest.raises(RegistryError) as refused:
            registry.register(session, "support", path)
        assert refused.value.status == 503
        assert session.exec(select(AdapterVersion)).all() == []


def test_registering_publishes_and_records_the_location(
    s3_server: S3Server, tmp_path: Path, sqlite_url: str
) -> None:
    s3 = store(s3_server, tmp_path / "cache")
    path, digest = adapter(tmp_path / "adapters", "support")
    registry = Registry("base", tmp_path / "adapters", 16, s3)
    with Session(db.create_db_engine(sqlite_url)) as session:
        row = registry.register(session, "support", path)
    assert row.path == f"s3://{s3.bucket}/fleet/support/{digest}"
    assert row.content_hash == digest
    keys = boto3.client("s3", endpoint_url=s3_server.url).list_objects_v2(Bucket=s3.bucket)
    assert {o["Key"].rsplit("/", 1)[-1] for o in keys["Contents"]} == {
        "adapter_config.json",
        "adapter_model.safetensors",
        "manifest.json",
    }
