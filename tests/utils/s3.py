"""A real S3 API server for the object-store tests: moto's standalone server, a process.

It speaks the S3 wire protocol on loopback (the same boto3 calls that reach AWS or MinIO),
keeps objects in memory and forgets them when stopped. Credentials are any non-empty pair.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import httpx

from loraloop.launch import free_port

CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "loraloop-test",
    "AWS_SECRET_ACCESS_KEY": "loraloop-test-secret",
    "AWS_DEFAULT_REGION": "us-east-1",
}


class S3Server:
    def __init__(self, log: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> S3Server:
        moto = Path(sys.executable).parent / "moto_server"
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [str(moto), "-H", "127.0.0.1", "-p", str(self.port)], stdout=out, stderr=out
            )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.log.read_text()[-2000:]
            try:
                httpx.get(self.url, timeout=1)
                return self
            except httpx.HTTPError:
                time.sleep(0.1)
        raise AssertionError(f"moto_server did not answer on {self.url}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
