"""`loraloop` commands as child processes a test can kill, and the lease they contend for."""

import os
import signal
import subprocess
from pathlib import Path

from sqlmodel import Session

from feedback.lease import LeaderLease, current_leader
from loraloop import db
from loraloop.launch import LORALOOP


class Child:
    """One `loraloop ...` process with its output in a log file."""

    def __init__(self, args: list[str], env: dict[str, str], log: Path) -> None:
        self.log = log
        with log.open("wb") as out:
            self.proc = subprocess.Popen(
                [LORALOOP, *args], env=env, stdout=out, stderr=subprocess.STDOUT
            )

    @property
    def owner(self) -> str:
        """How the lease names this process (see feedback.lease.default_owner)."""
        return f"{os.uname().nodename}:{self.proc.pid}"

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def terminate(self, timeout: float = 60) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(
                f"no exit {timeout:.0f} s after SIGTERM:\n{self.output()}"
            ) from None

    def kill(self) -> None:
        """SIGKILL: the process gets no chance to clean up, as in a crash."""
        self.proc.kill()
        self.proc.wait()


def leader(url: str) -> LeaderLease | None:
    engine = db.create_db_engine(url)
    try:
        with Session(engine) as session:
            row = current_leader(session, "scheduler")
            if row is not None:
                session.expunge(row)
            return row
    finally:
        engine.dispose()
