"""A real Arize Phoenix for the traces test (`make test-traces` installs it in its own
virtual environment, `LORALOOP_PHOENIX` names its `phoenix` command): an OTLP back-end on
loopback whose REST API gives the spans back."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import httpx

from loraloop.launch import free_port
from tests.utils.processes import wait_ready


class Phoenix:
    def __init__(self, workdir: Path) -> None:
        binary = Path(os.environ.get("LORALOOP_PHOENIX", ".venv-phoenix/bin/phoenix"))
        assert binary.is_file(), f"{binary} is missing: `make test-traces` installs Phoenix"
        self.binary = binary
        self.workdir = workdir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"  # OTLP over HTTP: <url>/v1/traces
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Phoenix:
        env = {
            **os.environ,
            "PHOENIX_HOST": "127.0.0.1",
            "PHOENIX_PORT": str(self.port),
            "PHOENIX_GRPC_PORT": str(free_port()),
            "PHOENIX_WORKING_DIR": str(self.workdir),
        }
        log = (self.workdir / "phoenix.log").open("wb")
        self.proc = subprocess.Popen(
            [str(self.binary), "serve"], env=env, stdout=log, stderr=subprocess.STDOUT
        )
        wait_ready(self.proc, f"{self.url}/healthz", self.workdir / "phoenix.log", 120, "phoenix")
        return self

    def spans(self, trace_id: str, project: str = "default") -> list[dict[str, Any]]:
        """Every span of one trace that Phoenix has stored, through its REST API."""
        found: list[dict[str, Any]] = []
        cursor: str | None = None
        while True:
            params: dict[str, Any] = {"limit": 1000} | ({"cursor": cursor} if cursor else {})
            reply = httpx.get(f"{self.url}/v1/projects/{project}/spans", params=params)
            reply.raise_for_status()
            body = reply.json()
            found += [s for s in body["data"] if s["context"]["trace_id"] == trace_id]
            cursor = body.get("next_cursor")
            if not cursor:
                return found

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(30)
