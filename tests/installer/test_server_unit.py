"""The server's systemd unit and nginx site: the unit's command is one `homeroom-server` accepts and
starts a server as systemd would run it; systemd and nginx accept the files themselves."""

from __future__ import annotations

import configparser
import os
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import requests

from server.cli import build_parser
from tests.helpers.need import need
from tests.helpers.nginx import PROXY_SNIPPET, nginx_binary, self_signed_certificate
from tests.helpers.paths import ROOT
from tests.helpers.servers import InitialisedDatabases, free_port

SERVER = ROOT / "installer" / "server"
UNIT = SERVER / "homeroom-server.service"


def unit() -> configparser.ConfigParser:
    parsed = configparser.ConfigParser(interpolation=None, strict=False)
    parsed.optionxform = str  # type: ignore[assignment,method-assign]
    parsed.read(UNIT)
    return parsed


def exec_start() -> list[str]:
    argv = shlex.split(unit()["Service"]["ExecStart"])
    assert argv[0] == "/opt/homeroom-server/.venv/bin/homeroom-server"
    return argv


def test_the_unit_serves_as_an_unprivileged_user_and_restarts_on_failure() -> None:
    service = unit()["Service"]
    args = build_parser().parse_args(exec_start()[1:])
    assert args.command == "serve" and args.host == "127.0.0.1", "behind nginx, never on the public address"
    assert service["User"] == "homeroom" and service["Restart"] == "on-failure"
    assert service["Environment"] == "HOMEROOM_DATA_DIR=/var/lib/homeroom-server"
    assert service["StateDirectory"] == "homeroom-server"
    assert service["EnvironmentFile"] == "-/etc/homeroom-server/environment"
    assert service["ProtectSystem"] == "strict" and service["NoNewPrivileges"] == "yes"
    assert unit()["Install"]["WantedBy"] == "multi-user.target"


def test_systemd_accepts_the_unit(tmp_path: Path) -> None:
    need(shutil.which("systemd-analyze") is not None, "systemd-analyze (systemd) is needed")
    program = Path(sys.executable).with_name("homeroom-server")
    need(program.exists(), f"{program}: install the server into the venv (pip install -e .[server])")
    # The same unit, with its program where this machine has it (verify checks it is executable).
    copy = tmp_path / "homeroom-server.service"
    copy.write_text(UNIT.read_text().replace("/opt/homeroom-server/.venv/bin/homeroom-server", str(program)))
    verified = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", str(copy)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    problems = [line for line in verified.stderr.splitlines() if "homeroom-server.service" in line]
    assert verified.returncode == 0 and not problems, verified.stderr


def test_the_units_command_starts_a_server_as_systemd_would(
    tmp_path: Path, initialised_databases: InitialisedDatabases
) -> None:
    """ExecStart with the unit's Environment and an EnvironmentFile naming the database; only the
    port is this worker's own (8000 is the machine's)."""
    data_dir = tmp_path / "var-lib-homeroom-server"
    url = f"sqlite:///{data_dir / 'var' / 'homeroom.db'}"
    initialised_databases.copy_into(url)
    port = free_port()
    argv = [sys.executable, "-m", "server.cli", *exec_start()[1:]]
    argv[argv.index("--port") + 1] = str(port)
    environment = {"PATH": os.environ["PATH"], "HOMEROOM_DATA_DIR": str(data_dir)}  # systemd's clean env
    process = subprocess.Popen(
        argv, cwd=ROOT, env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert process.poll() is None, process.stderr.read().decode() if process.stderr else ""
            try:
                if requests.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            except requests.RequestException:
                time.sleep(0.1)
        else:
            raise AssertionError("the unit's command did not start a server")
        assert (data_dir / "var" / "homeroom.db.serving").exists(), "it holds the lock restore checks"
    finally:
        process.terminate()
        process.wait(30)


def test_nginx_accepts_the_districts_site_file(tmp_path: Path) -> None:
    binary = nginx_binary()
    need(binary is not None, "install nginx (apt-get install -y nginx)")
    certificate = self_signed_certificate(tmp_path)
    site = (SERVER / "homeroom-nginx.conf").read_text()
    for old, new in (
        ("include snippets/homeroom-proxy.conf;", f"include {PROXY_SNIPPET};"),
        ("/etc/ssl/certs/homeroom.example.org.pem", str(certificate.cert)),
        ("/etc/ssl/private/homeroom.example.org.key", str(certificate.key)),
        ("listen 80;", f"listen 127.0.0.1:{free_port()};"),
        ("listen 443 ssl http2;", f"listen 127.0.0.1:{free_port()} ssl http2;"),
        ("listen [::]:80;", ""),
        ("listen [::]:443 ssl http2;", ""),
    ):
        assert old in site, old
        site = site.replace(old, new)
    (tmp_path / "site.conf").write_text(site)
    (tmp_path / "nginx.conf").write_text(
        f"pid {tmp_path}/nginx.pid;\nerror_log {tmp_path}/error.log;\nevents {{}}\n"
        f"http {{\n    access_log off;\n    include {tmp_path}/site.conf;\n}}\n"
    )
    checked = subprocess.run(
        [
            str(binary),
            "-t",
            "-e",
            str(tmp_path / "error.log"),
            "-p",
            str(tmp_path),
            "-c",
            str(tmp_path / "nginx.conf"),
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert checked.returncode == 0, checked.stderr
    assert "syntax is ok" in checked.stderr


DIGEST = SERVER / "homeroom-digest.service"
DIGEST_TIMER = SERVER / "homeroom-digest.timer"


def test_a_timer_sends_the_not_reporting_digest_every_day(tmp_path: Path) -> None:
    """Issue 13 §4's "daily digest": the timer's service runs `digest` with arguments the server's
    own CLI accepts once systemd has put the environment file's values in, and systemd accepts both."""
    parsed = configparser.ConfigParser(interpolation=None, strict=False)
    parsed.optionxform = str  # type: ignore[assignment,method-assign]
    parsed.read([DIGEST, DIGEST_TIMER])
    assert parsed["Timer"]["OnCalendar"] == "*-*-* 06:30:00" and parsed["Timer"]["Persistent"] == "true"
    command = parsed["Service"]["ExecStart"]
    command = command.replace("${HOMEROOM_DIGEST_TO}", "it@district.example")
    assert "${" not in command, "every variable it uses is named in the unit's comment"
    argv = shlex.split(command)
    args = build_parser().parse_args(argv[1:])
    assert args.command == "digest" and args.to == ["it@district.example"]
    assert args.smtp_host is None, "the mail server is server.toml's [smtp], as for the notifications"
    need(shutil.which("systemd-analyze") is not None, "systemd-analyze (systemd) is needed")
    program = Path(sys.executable).with_name("homeroom-server")
    for source in (DIGEST, DIGEST_TIMER):
        copy = tmp_path / source.name
        copy.write_text(
            source.read_text().replace("/opt/homeroom-server/.venv/bin/homeroom-server", str(program))
        )
    verified = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", str(tmp_path / DIGEST_TIMER.name)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    problems = [line for line in verified.stderr.splitlines() if "homeroom-digest" in line]
    assert verified.returncode == 0 and not problems, verified.stderr
