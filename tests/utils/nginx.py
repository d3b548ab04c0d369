"""docker/nginx.conf run for real on loopback: the same file, with the compose service names
of its upstream servers replaced by local addresses and its listen port by a free one."""

import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import httpx

CONF = Path(__file__).resolve().parents[2] / "docker" / "nginx.conf"


def nginx() -> str:
    found = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin")
    assert found, "nginx is missing: `make test` installs Debian's nginx"
    return found


def render(upstreams: list[str], port: int, workdir: Path) -> Path:
    """The compose config with `upstreams` (host:port) and `port`; temp files in workdir."""
    text = CONF.read_text()
    servers = re.findall(r"^(\s*)server \S+:\d+ (.*);$", text, flags=re.M)
    assert len(servers) == len(upstreams), "one upstream per gateway"
    lines = iter(
        f"{indent}server {u} {rest};" for (indent, rest), u in zip(servers, upstreams, strict=True)
    )
    text = re.sub(r"^\s*server \S+:\d+ .*;$", lambda _: next(lines), text, flags=re.M)
    text = text.replace("listen 8000;", f"listen 127.0.0.1:{port};")
    text = text.replace("/tmp/nginx", str(workdir / "nginx"))
    text = text.replace("worker_processes auto;", "worker_processes 1;")
    out = workdir / "nginx.conf"
    out.write_text(text)
    return out


def check(conf: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [nginx(), "-t", "-c", str(conf), "-p", str(conf.parent), "-e", "stderr"],
        capture_output=True,
        text=True,
    )


class Nginx:
    """nginx in the foreground (a child of the test), stopped with SIGQUIT (graceful)."""

    def __init__(self, upstreams: list[str], port: int, workdir: Path) -> None:
        conf = render(upstreams, port, workdir)
        self.url = f"http://127.0.0.1:{port}"
        self.proc = subprocess.Popen(
            [nginx(), "-c", str(conf), "-p", str(workdir), "-e", "stderr", "-g", "daemon off;"],
            stdout=subprocess.DEVNULL,
            stderr=(workdir / "nginx.log").open("wb"),
        )
        deadline = time.monotonic() + 10
        while True:
            try:
                if httpx.get(f"{self.url}/lb-health", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, (workdir / "nginx.log").read_text()
            time.sleep(0.1)

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGQUIT)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
