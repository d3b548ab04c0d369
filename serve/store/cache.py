"""An engine host's copies of remote adapters: size-bounded, least recently used first out.

Each version lives in a directory named by its content hash, written under a temporary name
and renamed into place only after the hash matched, so a reader never sees a partial copy.
Every use re-checks the hash (a copy altered on this disk is fetched again) and marks the
directory used; eviction skips the directories the engine still loads from (`keep`): vLLM
reads an adapter's path again when it was pushed out of its CPU cache.
"""

from __future__ import annotations

import errno
import logging
import os
import shutil
import tempfile
import threading
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

from serve.store.base import CacheFull, ObjectCorrupt, StoreError, content_hash

log = logging.getLogger(__name__)

Fetch = Callable[[Path], None]  # writes the remote files into the given empty directory


class AdapterCache:
    def __init__(self, root: Path, max_bytes: int) -> None:
        self.root = root
        self.max_bytes = max_bytes
        self._locks: dict[str, threading.Lock] = defaultdict(threading.Lock)
        self._evicting = threading.Lock()
        self.fetches = 0  # copies made (cold loads on this host), for tests and logs

    def get(self, digest: str, fetch: Fetch, keep: frozenset[Path] = frozenset()) -> Path:
        """The checked directory for `digest`, fetched when absent or altered."""
        self.root.mkdir(parents=True, exist_ok=True)
        place = self.root / digest
        with self._locks[digest]:
            if place.is_dir() and _matches(place, digest):
                os.utime(place)
            else:
                shutil.rmtree(place, ignore_errors=True)
                self._fetch_with_room(place, digest, fetch, keep)
        self.evict(keep | {place})
        return place

    def _fetch_with_room(
        self, place: Path, digest: str, fetch: Fetch, keep: frozenset[Path]
    ) -> None:
        """A full disk first costs the copies nothing loads from, then the fetch is retried
        once; still full, it is an error that names the disk (nothing partial is left)."""
        for attempt in (1, 2):
            try:
                return self._fetch(place, digest, fetch)
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise StoreError(
                        f"cannot write the adapter cache at {self.root}: {exc}"
                    ) from None
                if attempt == 2:
                    raise CacheFull(
                        f"no space left for adapter {digest[:12]} in the cache at {self.root}, "
                        "even after evicting every copy not in use: free disk space or lower "
                        "LORALOOP_STORE_CACHE_MAX_GIB below the disk's size"
                    ) from None
                log.warning("adapter cache disk full at %s: evicting copies not in use", self.root)
                self.evict(keep, limit=0)

    def _fetch(self, place: Path, digest: str, fetch: Fetch) -> None:
        partial = Path(tempfile.mkdtemp(prefix=f".partial-{digest[:12]}-", dir=self.root))
        try:
            fetch(partial)
            found = content_hash(partial)
            if found != digest:
                raise ObjectCorrupt(
                    f"adapter files hash to {found[:12]}, expected {digest[:12]}: "
                    "the stored object was altered after it was published"
                )
            partial.rename(place)
            self.fetches += 1
        finally:
            shutil.rmtree(partial, ignore_errors=True)

    def evict(self, keep: frozenset[Path], limit: int | None = None) -> None:
        """Remove least recently used copies until the cache fits in `limit` (`max_bytes`)."""
        limit = self.max_bytes if limit is None else limit
        with self._evicting:
            entries = sorted(
                (p for p in self.root.iterdir() if p.is_dir() and not p.name.startswith(".")),
                key=lambda p: p.stat().st_mtime,
            )
            sizes = {p: _size(p) for p in entries}
            total = sum(sizes.values())
            for entry in entries:
                if total <= limit:
                    break
                if entry in keep:
                    continue
                shutil.rmtree(entry, ignore_errors=True)
                total -= sizes[entry]
                log.info("evicted adapter copy %s (%d bytes)", entry.name[:12], sizes[entry])


def _matches(place: Path, digest: str) -> bool:
    try:
        return content_hash(place) == digest
    except OSError:
        return False


def _size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
