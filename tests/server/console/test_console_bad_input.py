"""Bad input to the console gets a 4xx that says so, never a 500 (a real server on SQLite and
PostgreSQL, which refuses NUL in strings)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests

from tests.helpers.console import ConsoleUser, create_user, module_server
from tests.helpers.servers import ServerProcess

PASSWORD = "a long enough password"


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def console_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    for server in module_server(request, tmp_path_factory):
        create_user(server, "it@district.example", PASSWORD, "district_admin")
        yield server


def test_strangers_input_never_gives_a_500(console_server: ServerProcess) -> None:
    url = console_server.url
    answers = [
        requests.post(
            url + "/sign-in",
            data=b"\xff\xfe\x00garbage",
            timeout=30,
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        ),
        requests.post(url + "/sign-in", data={"email": "x" * 5000, "password": "y"}, timeout=30),
        requests.post(url + "/sign-in", json={"email": "a"}, timeout=30),
        requests.post(url + "/sign-in", files={"email": ("a", b"b")}, timeout=30),
        requests.get(
            url + "/", cookies={"homeroom_session": "\u00e9" * 10}, timeout=30, allow_redirects=False
        ),
        requests.get(url + "/", cookies={"homeroom_session": "x" * 4000}, timeout=30, allow_redirects=False),
        requests.get(url + "/sign-in", cookies={"homeroom_sign_in": "%00%ff"}, timeout=30),
        requests.post(url + "/sign-out", data={"csrf_token": "x"}, timeout=30, allow_redirects=False),
        requests.post(url + "/sign-in", data={"email": "a\x00b@x", "password": "p\x00"}, timeout=30),
        requests.get(url + "/sign-in?next=" + "/" * 3000, timeout=30),
    ]
    for answer in answers:
        assert answer.status_code < 500, (answer.request.method, answer.request.url, answer.text[:300])


def test_a_signed_in_persons_bad_queries_are_refused_plainly(console_server: ServerProcess) -> None:
    person = ConsoleUser(console_server)
    assert person.sign_in("it@district.example", PASSWORD).status_code == 303
    for path in (
        "/?days=0",
        "/?days=abc",
        "/?school=" + "s" * 500,
        "/devices?page=-1",
        "/devices?q=" + "%" * 300,
        "/devices?q=%25%5F%00",
        "/devices?school=%00",
        "/?os=%00",
        "/devices/" + "d" * 300,
        "/devices/%00",
        "/audit?page=999999999",
        "/audit?q=%25",
        "/devices.csv?q=%00",
    ):
        answer = person.get(path)
        assert answer.status_code < 500, (path, answer.text[:300])
