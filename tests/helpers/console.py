"""A person using the console over plain HTTP (requests), and a fleet of enrolled, reporting devices."""

from __future__ import annotations

import re
import uuid
from typing import Any

import requests

from contract.requirements import CHECK_IDS
from tests.helpers.servers import ServerProcess
from tests.helpers.signed_device import IDENTITY, Device, report

_CSRF = re.compile(r'name="csrf_token" value="([0-9a-f]+)"')


def csrf_of(html: str) -> str:
    found = _CSRF.search(html)
    assert found, html[:2000]
    return found.group(1)


class ConsoleUser:
    """One browser's worth of cookies, signing in through the real form."""

    def __init__(self, server: ServerProcess, headers: dict[str, str] | None = None) -> None:
        self.server = server
        self.http = requests.Session()
        self.http.headers.update(headers or {})
        self.csrf = ""

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return self.http.get(self.server.url + path, allow_redirects=False, timeout=30, **kwargs)

    def post(self, path: str, data: dict[str, str], **kwargs: Any) -> requests.Response:
        return self.http.post(self.server.url + path, data=data, allow_redirects=False, timeout=30, **kwargs)

    def sign_in(self, email: str, password: str) -> requests.Response:
        form = self.get("/sign-in")
        assert form.status_code == 200, form.text
        answer = self.post(
            "/sign-in", {"email": email, "password": password, "csrf_token": csrf_of(form.text), "next": "/"}
        )
        if answer.status_code == 303:
            self.csrf = csrf_of(self.get("/").text)
        return answer

    def sign_out(self) -> requests.Response:
        return self.post("/sign-out", {"csrf_token": self.csrf})


def password_of(cli_output: str) -> str:
    found = re.search(r"One-time password: (\S+)", cli_output)
    assert found, cli_output
    return found.group(1)


def reporting_device(
    server: ServerProcess,
    token: str,
    hostname: str,
    serial: str,
    status: str = "pass",
    os_name: str = "linux",
    audience: str = "student",
) -> Device:
    identity = dict(IDENTITY, hostname=hostname, serial=serial, hardware_uuid=str(uuid.uuid4()), os=os_name)
    identity["machine_id"] = uuid.uuid4().hex
    device = Device(server, identity)
    assert device.enrol(token).status_code == 200
    body = report(status=status)
    body["identity"] = identity
    body["audience"] = audience
    firewall = body["results"][0]
    # Every requirement passes but the firewall, which has the status asked for.
    body["results"] = [
        dict(firewall, id=check, title=check, status="pass", summary=f"{check} is fine")
        for check in CHECK_IDS
        if check != "firewall"
    ] + [firewall]
    answer = device.post("/reports", body)
    assert answer.status_code == 200, answer.text
    return device


ADMIN = "admin@localhost"


def set_password(server: ServerProcess, email: str, password: str) -> None:
    file = server.data_dir / f"password-{uuid.uuid4().hex}"
    file.write_text(password, encoding="utf-8")
    done = server.cli("users", "password", email, "--password-file", str(file))
    assert done.returncode == 0, done.stderr


def module_server(request: Any, tmp_path_factory: Any) -> Any:
    """One real server per test module and database (starting one costs seconds); tests keep apart
    by using accounts and addresses of their own. Used as a generator by module-scoped fixtures."""
    data_dir = tmp_path_factory.mktemp("console")
    if request.param == "sqlite":
        url = f"sqlite:///{data_dir / 'var' / 'homeroom.db'}"
    else:
        url = request.getfixturevalue("postgres").new_database()
    process = ServerProcess(url, data_dir)
    process.init()
    process.start()
    try:
        yield process
    finally:
        process.stop()


def create_user(
    server: ServerProcess,
    email: str,
    password: str,
    role: str,
    schools: tuple[str, ...] = (),
    district_wide: bool = False,
) -> None:
    """Straight into the server's database through the same code `users add` runs (no process start)."""
    from server.console import accounts
    from server.db.engine import make_engine

    engine = make_engine(server.database_url)
    try:
        with engine.begin() as connection:
            accounts.add_user(connection, email, password, role, list(schools), district_wide, actor="cli")
    finally:
        engine.dispose()
