"""Adapter versions on S3-compatible object storage (AWS S3, MinIO, R2, GCS's S3 API).

boto3 is the client: the reference implementation of the S3 API, with the standard
credential chain (environment, profile, the pod's IAM role on EKS) that ops teams already
configure, and it speaks to any S3-compatible endpoint. A version lives under
`s3://bucket/prefix/<alias>/<content hash>/`: its files, then `manifest.json` (each file's
sha256 and the content hash), written last, so a version without a manifest was never
published. The same bytes published twice land in the same place once.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit

from serve.model_store import sha256
from serve.store.base import ObjectCorrupt, ObjectMissing, StoreError, StoreUnavailable
from serve.store.cache import AdapterCache

MANIFEST = "manifest.json"
DIGEST = re.compile(r"^[0-9a-f]{64}$")


def split(url: str) -> tuple[str, str]:
    """`s3://bucket/some/prefix` -> (bucket, "some/prefix")."""
    parts = urlsplit(url)
    if parts.scheme != "s3" or not parts.netloc:
        raise StoreError(f"{url!r} is not an s3://bucket/prefix URL")
    return parts.netloc, parts.path.strip("/")


class S3Store:
    remote = True

    def __init__(
        self,
        url: str,
        cache: AdapterCache,
        *,
        endpoint_url: str | None = None,
        region: str | None = None,
        timeout_s: float = 5.0,
    ) -> None:
        import boto3
        from botocore.config import Config

        self.url = url.rstrip("/")
        self.bucket, self.prefix = split(self.url)
        self.cache = cache
        self.endpoint = endpoint_url or "AWS S3"
        self.client: Any = boto3.session.Session().client(
            "s3",
            endpoint_url=endpoint_url,
            region_name=region,
            config=Config(
                connect_timeout=timeout_s,
                read_timeout=6 * timeout_s,
                retries={"max_attempts": 2, "mode": "standard"},
                s3={"addressing_style": "path"},
            ),
        )
        self._bucket_checked = False

    def publish(self, directory: Path, name: str, digest: str) -> str:
        key = "/".join(p for p in (self.prefix, name, digest) if p)
        location = f"s3://{self.bucket}/{key}"
        paths = sorted(p for p in directory.rglob("*") if p.is_file())
        files = {p.relative_to(directory).as_posix(): sha256(p) for p in paths}
        manifest = {"content_hash": digest, "files": files}
        with self._calls(location):
            self._ensure_bucket()
            if self._manifest(key) == manifest:
                return location  # content-addressed: these bytes were published already
            for relative in files:
                self.client.upload_file(str(directory / relative), self.bucket, f"{key}/{relative}")
            self.client.put_object(
                Bucket=self.bucket, Key=f"{key}/{MANIFEST}", Body=json.dumps(manifest).encode()
            )
        return location

    def local(self, location: str, keep: frozenset[Path] = frozenset()) -> Path:
        bucket, key = split(location)
        digest = PurePosixPath(key).name
        if not DIGEST.match(digest):
            raise StoreError(f"{location} does not end in a content hash")
        return self.cache.get(digest, lambda dest: self._download(bucket, key, dest), keep)

    def _download(self, bucket: str, key: str, dest: Path) -> None:
        location = f"s3://{bucket}/{key}"
        with self._calls(location):
            body = self.client.get_object(Bucket=bucket, Key=f"{key}/{MANIFEST}")["Body"]
            try:
                manifest = json.loads(body.read())
                files: dict[str, str] = manifest["files"]
            except (ValueError, KeyError, TypeError):
                raise ObjectCorrupt(f"{location}/{MANIFEST} is not a loraloop manifest") from None
            for relative, expected in files.items():
                target = (dest / relative).resolve()
                if not target.is_relative_to(dest.resolve()):
                    raise ObjectCorrupt(f"{location}: manifest names a path outside it")
                target.parent.mkdir(parents=True, exist_ok=True)
                self.client.download_file(bucket, f"{key}/{relative}", str(target))
                if sha256(target) != expected:
                    raise ObjectCorrupt(
                        f"{location}/{relative} does not match the sha256 its manifest records: "
                        "the object was altered or truncated after publishing"
                    )

    def _ensure_bucket(self) -> None:
        if self._bucket_checked:
            return
        from botocore.exceptions import ClientError

        try:
            self.client.head_bucket(Bucket=self.bucket)
        except ClientError as exc:
            if _code(exc) not in ("404", "NoSuchBucket"):
                raise
            self.client.create_bucket(Bucket=self.bucket)
        self._bucket_checked = True

    def _manifest(self, key: str) -> object:
        from botocore.exceptions import ClientError

        try:
            body = self.client.get_object(Bucket=self.bucket, Key=f"{key}/{MANIFEST}")["Body"]
        except ClientError as exc:
            if _code(exc) in ("404", "NoSuchKey", "NotFound"):
                return None
            raise
        try:
            return json.loads(body.read())
        except ValueError:
            return None

    @contextlib.contextmanager
    def _calls(self, location: str) -> Iterator[None]:
        """botocore's failures as the store's own, each saying what to check."""
        from botocore import exceptions as bc

        try:
            yield
        except (bc.EndpointConnectionError, bc.ConnectTimeoutError, bc.ReadTimeoutError) as exc:
            raise StoreUnavailable(
                f"the object store at {self.endpoint} did not answer for {location}: {exc}"
            ) from None
        except bc.NoCredentialsError:
            raise StoreError(
                f"no credentials for the object store at {self.endpoint}: set "
                "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or a profile or IAM role)"
            ) from None
        except bc.ClientError as exc:
            if _code(exc) in ("404", "NoSuchKey", "NotFound", "NoSuchBucket"):
                raise ObjectMissing(f"no adapter published at {location}") from None
            raise StoreError(f"the object store refused {location}: {exc}") from None
        except bc.BotoCoreError as exc:
            raise StoreUnavailable(f"the object store failed for {location}: {exc}") from None


def _code(exc: Any) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))
