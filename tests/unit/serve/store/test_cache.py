"""The engine host's adapter cache when its disk is full: room is made from copies nothing
loads from, and a disk that stays full is a clear error with nothing partial left."""

import errno
from pathlib import Path

import pytest

from serve.store import AdapterCache, CacheFull, content_hash
from tests.utils.adapters import make_adapter_dir


def copier(source: Path, full_times: int) -> tuple[list[int], object]:
    """A fetch that copies `source`, failing with ENOSPC mid-write `full_times` times first."""
    calls = [0]

    def fetch(dest: Path) -> None:
        calls[0] += 1
        for name in ("adapter_config.json", "adapter_model.safetensors"):
            (dest / name).write_bytes((source / name).read_bytes())
            if calls[0] <= full_times:
                raise OSError(errno.ENOSPC, "No space left on device")

    return calls, fetch


def test_a_full_disk_evicts_copies_not_in_use_and_retries(tmp_path: Path) -> None:
    cache = AdapterCache(tmp_path / "cache", 2**30)
    old, used, new = (make_adapter_dir(tmp_path / "src", n) for n in ("old", "used", "new"))
    kept = cache.get(content_hash(used), copier(used, 0)[1])
    cache.get(content_hash(old), copier(old, 0)[1])
    calls, fetch = copier(new, full_times=1)
    place = cache.get(content_hash(new), fetch, keep=frozenset({kept}))  # type: ignore[arg-type]
    assert calls == [2] and content_hash(place) == content_hash(new)
    assert kept.exists(), "a copy the engine loads from is never evicted"
    assert not (tmp_path / "cache" / content_hash(old)).exists()


def test_a_disk_that_stays_full_is_a_clear_error(tmp_path: Path) -> None:
    cache = AdapterCache(tmp_path / "cache", 2**30)
    source = make_adapter_dir(tmp_path / "src", "a")
    with pytest.raises(CacheFull, match="no space left") as full:
        cache.get(content_hash(source), copier(source, full_times=2)[1])  # type: ignore[arg-type]
    assert full.value.status == 507
    assert list((tmp_path / "cache").iterdir()) == [], "nothing partial is left"
