"""docker/nginx.conf run for real on loopback: the same file, with the compose service names
of its upstream servers replaced by local addresses, its listen ports by free ones, and its
certificate by a self-signed pair made for the test."""

import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import httpx

from loraloop.launch import free_port

CONF = Path(__file__).resolve().parents[2] / "docker" / "nginx.conf"


def nginx() -> str:
    found = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin")
    assert found, "nginx is missing: `make test` installs Debian's nginx"
    return found


def self_signed(workdir: Path, name: str = "127.0.0.1") -> tuple[Path, Path]:
    """A certificate for `name` (an IP address) and its key, made now."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(name))]), False
        )
        .sign(key, hashes.SHA256())
    )
    crt, pem = workdir / "tls.crt", workdir / "tls.key"
    crt.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    pem.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return crt, pem


def render(upstreams: list[str], port: int, workdir: Path, tls_port: int | None = None) -> Path:
    """The compose config with `upstreams` (host:port), `port` and `tls_port` (default:
    the next port up); temp files and the certificate in workdir."""
    text = CONF.read_text()
    servers = re.findall(r"^(\s*)server \S+:\d+ (.*);$", text, flags=re.M)
    assert len(servers) == len(upstreams), "one upstream per gateway"
    lines = iter(
        f"{indent}server {u} {rest};" for (indent, rest), u in zip(servers, upstreams, strict=True)
    )
    text = re.sub(r"^\s*server \S+:\d+ .*;$", lambda _: next(lines), text, flags=re.M)
    text = text.replace("listen 8000;", f"listen 127.0.0.1:{port};")
    text = text.replace("listen 8443 ssl;", f"listen 127.0.0.1:{tls_port or port + 1} ssl;")
    crt, key = self_signed(workdir)
    text = text.replace("/etc/nginx/tls/tls.crt", str(crt)).replace(
        "/etc/nginx/tls/tls.key", str(key)
    )
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

    def __init__(
        self, upstreams: list[str], port: int, workdir: Path, tls_port: int | None = None
    ) -> None:
        tls_port = tls_port or free_port()
        conf = render(upstreams, port, workdir, tls_port)
        self.url = f"http://127.0.0.1:{port}"
        self.tls_url = f"https://127.0.0.1:{tls_port}"
        self.certificate = workdir / "tls.crt"
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
