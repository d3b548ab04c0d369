"""A private PostgreSQL server that a test may restart (never the shared one at :5432).

Uses the server programs `make test` makes sure are installed (scripts/ensure-postgres.sh).
As root, the server runs as the `postgres` system user, since initdb refuses root.
"""

import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from sqlalchemy import create_engine, text

from loraloop.launch import free_port


def _bindir() -> Path:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: int(p.parent.name))
    assert found, "PostgreSQL server programs are missing: scripts/ensure-postgres.sh installs them"
    return found[-1]


class PrivatePostgres:
    def __init__(self) -> None:
        self.port = free_port()
        self.bindir = _bindir()
        # Not under pytest's tmp (0700 for root): the postgres user must reach its data.
        self.root = Path(tempfile.mkdtemp(prefix="loraloop-pg-"))
        self.datadir = self.root / "data"
        self.as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        self.datadir.mkdir()
        if self.as_user:
            self.root.chmod(0o755)
            for path in (self.root, self.datadir):
                shutil.chown(path, "postgres")
        self._run("initdb", "-D", str(self.datadir), "-U", "postgres", "--auth=trust")

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def start(self) -> None:
        self._ctl("start", "-o", f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.root}")

    def restart(self, down_s: float = 0.0) -> None:
        """Stop (every connection is cut), stay down `down_s` seconds, start again."""
        self._ctl("stop", "-m", "fast")
        time.sleep(down_s)
        self.start()

    def stop(self) -> None:
        self._ctl("stop", "-m", "immediate")
        shutil.rmtree(self.root, ignore_errors=True)

    def _ctl(self, *args: str) -> None:
        log = self.root / "server.log"
        self._run("pg_ctl", "-D", str(self.datadir), "-l", str(log), "-w", *args)

    def _run(self, program: str, *args: str) -> None:
        subprocess.run(
            [*self.as_user, str(self.bindir / program), *args],
            check=True,
            capture_output=True,
            cwd=self.root,
        )


def reset_schema(url: str) -> None:
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
    engine.dispose()
