"""A real nginx (Debian's) terminating TLS on loopback in front of Homeroom server processes.

Everything it needs is in the test's own folder: its configuration, pid file, logs and temporary
files, a self-signed certificate for 127.0.0.1, and a port from this worker's band, so several
workers can each run one and nothing of the machine's own nginx setup is touched. The proxying
itself is the file districts install (installer/server/homeroom-proxy.conf), included as it is.
"""

from __future__ import annotations

import datetime
import ipaddress
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.helpers.paths import ROOT
from tests.helpers.servers import free_port

PROXY_SNIPPET = ROOT / "installer" / "server" / "homeroom-proxy.conf"
# nginx connects to the server processes from this loopback address, so they can tell it from a
# client that connects to them directly (from 127.0.0.1).
NGINX_ADDRESS = "127.0.0.2"
# Which server process answered: a header this test's site adds (the district's does not).
UPSTREAM_HEADER = "X-Test-Upstream"


def nginx_binary() -> str | None:
    return shutil.which("nginx") or (
        str(Path("/usr/sbin/nginx")) if Path("/usr/sbin/nginx").exists() else None
    )


@dataclass(frozen=True)
class Certificate:
    cert: Path
    key: Path


def self_signed_certificate(folder: Path) -> Certificate:
    """A certificate for 127.0.0.1 and localhost, valid for a day: what the agent is told to trust."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "homeroom test site")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    paths = Certificate(folder / "site.pem", folder / "site.key")
    paths.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths.key.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    paths.key.chmod(0o600)
    return paths


def site_config(
    folder: Path,
    port: int,
    upstreams: list[int],
    certificate: Certificate,
    workers: str = "1",
    connections: int = 256,
    keepalive: int = 8,
) -> str:
    """The site: `workers` nginx worker processes ("auto": one a core, Debian's default), each with
    `connections` connections, `keepalive` idle ones kept open to the servers (the district's is 32)."""
    servers = "\n".join(f"        server 127.0.0.1:{upstream} max_fails=0;" for upstream in upstreams)
    temp = {name: folder / name for name in ("body", "proxy", "fastcgi", "uwsgi", "scgi")}
    for path in temp.values():
        path.mkdir(exist_ok=True)
    return f"""
daemon off;
master_process on;
worker_processes {workers};
user root root;
pid {folder}/nginx.pid;
error_log {folder}/error.log warn;
events {{ worker_connections {connections}; }}
http {{
    access_log {folder}/access.log;
    client_body_temp_path {temp["body"]};
    proxy_temp_path {temp["proxy"]};
    fastcgi_temp_path {temp["fastcgi"]};
    uwsgi_temp_path {temp["uwsgi"]};
    scgi_temp_path {temp["scgi"]};
    upstream homeroom {{
{servers}
        keepalive {keepalive};
    }}
    server {{
        listen 127.0.0.1:{port} ssl;
        server_name localhost;
        ssl_certificate {certificate.cert};
        ssl_certificate_key {certificate.key};
        location / {{
            include {PROXY_SNIPPET};
            proxy_bind {NGINX_ADDRESS};
            add_header {UPSTREAM_HEADER} $upstream_addr always;
        }}
    }}
}}
"""


class Nginx:
    """`nginx` in the foreground with its own configuration; `url` is https://127.0.0.1:PORT."""

    def __init__(
        self,
        folder: Path,
        upstreams: list[int],
        workers: str = "1",
        connections: int = 256,
        keepalive: int = 8,
    ) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.folder = folder
        self.upstreams = upstreams
        self.workers, self.connections, self.keepalive = workers, connections, keepalive
        self.certificate = self_signed_certificate(folder)
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def start(self, timeout: float = 20) -> None:
        binary = nginx_binary()
        assert binary is not None, "nginx is not installed"
        for _ in range(3):
            self.port = free_port()
            conf = self.folder / "nginx.conf"
            conf.write_text(
                site_config(
                    self.folder,
                    self.port,
                    self.upstreams,
                    self.certificate,
                    self.workers,
                    self.connections,
                    self.keepalive,
                )
            )
            test = subprocess.run(
                [
                    binary,
                    "-t",
                    "-q",
                    "-e",
                    str(self.folder / "error.log"),
                    "-p",
                    str(self.folder),
                    "-c",
                    str(conf),
                ],
                capture_output=True,
                text=True,
                timeout=30,
                check=False,
            )
            assert test.returncode == 0, test.stderr
            self.process = subprocess.Popen(
                [binary, "-e", str(self.folder / "error.log"), "-p", str(self.folder), "-c", str(conf)],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline and self.process.poll() is None:
                try:
                    with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                        return
                except OSError:
                    time.sleep(0.05)
            log = (self.folder / "error.log").read_text(errors="replace")
            if "address already in use" not in log.lower():
                raise AssertionError(f"nginx did not start:\n{log}")
            self.stop()
        raise AssertionError("nginx lost its port three times")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGQUIT)  # finish what is in flight, then exit
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(15)
