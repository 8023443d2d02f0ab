"""The server's signing key: made at init (or at first use), one per database however many processes
serve it, and every answer to a signed request carries its signature over that very request."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import pytest
import requests
from sqlalchemy import delete, select

from contract.wire import (
    HEADER_ANSWER_SIGNATURE,
    HEADER_REQUEST_ID,
    HEADER_SERVER_KEY,
    answer_signature_valid,
    key_fingerprint,
    load_public_key,
)
from server.db.engine import make_engine
from server.db.models import ServerKey
from tests.helpers.paths import ROOT
from tests.helpers.servers import ServerProcess
from tests.helpers.signed_device import Device, heartbeat, report


def stored_keys(database_url: str) -> list[str]:
    engine = make_engine(database_url)
    try:
        with engine.connect() as connection:
            return [row[0] for row in connection.execute(select(ServerKey.public_key)).all()]
    finally:
        engine.dispose()


def answer_is_signed_by(public_key: str, response: requests.Response, path: str) -> bool:
    sent = dict(response.request.headers)
    signature = response.headers.get(HEADER_ANSWER_SIGNATURE, "")
    return answer_signature_valid(
        load_public_key(public_key), signature, "POST", f"/api/v1{path}", sent, response.content
    )


def test_init_makes_one_lasting_key_enrolment_gives_it_and_every_answer_is_signed_for_its_request(
    server: ServerProcess,
) -> None:
    (key,) = stored_keys(server.database_url)
    again = server.init()  # init on a set-up database keeps the key it has
    assert f"Server signing key: {key_fingerprint(key)}" in again
    assert stored_keys(server.database_url) == [key]

    device = Device(server)
    enrolled = device.enrol(server.token())
    assert enrolled.json()["server_public_key"] == key
    for path, body in (("/heartbeat", heartbeat()), ("/reports", report())):
        answered = device.post(path, body)
        assert answered.status_code == 200
        assert answered.headers[HEADER_SERVER_KEY] == key
        assert answer_is_signed_by(key, answered, path)
        # The same answer for any other request (another request id, another path) does not verify.
        other = dict(answered.request.headers)
        other[HEADER_REQUEST_ID] = "0" * 32
        signature = answered.headers[HEADER_ANSWER_SIGNATURE]
        assert not answer_signature_valid(
            load_public_key(key), signature, "POST", f"/api/v1{path}", other, answered.content
        )
        assert not answer_signature_valid(
            load_public_key(key),
            signature,
            "POST",
            "/api/v1/signoffs",
            dict(answered.request.headers),
            answered.content,
        )
        assert not answer_signature_valid(
            load_public_key(key),
            signature,
            "POST",
            f"/api/v1{path}",
            dict(answered.request.headers),
            answered.content + b" ",
        )

    server.stop()
    server.start()  # the key outlives the process: enrolled laptops keep trusting its answers
    assert Device(server).enrol(server.token()).json()["server_public_key"] == key
    assert stored_keys(server.database_url) == [key]


@pytest.fixture
def second_process(server: ServerProcess) -> Iterator[ServerProcess]:
    """Another server process on the same database, as behind a load balancer."""
    other = ServerProcess(server.database_url, server.data_dir / "second")
    other.data_dir.mkdir()
    other.start()
    try:
        yield other
    finally:
        other.stop()


def test_processes_sharing_one_database_sign_with_one_key(
    server: ServerProcess, second_process: ServerProcess
) -> None:
    device = Device(server)
    key = device.enrol(server.token()).json()["server_public_key"]
    device.server = second_process  # the load balancer sends the next request elsewhere
    answered = device.post("/heartbeat", heartbeat())
    assert answered.status_code == 200 and answer_is_signed_by(key, answered, "/heartbeat")


def test_a_database_from_before_keys_gets_exactly_one_at_first_use(server: ServerProcess) -> None:
    server.stop()
    engine = make_engine(server.database_url)
    with engine.begin() as connection:
        connection.execute(delete(ServerKey))  # as a database migrated from before this change
    engine.dispose()
    # Several processes starting at once on the database each find no key: they must end up with one.
    racers = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                "import sys; from server.answer_signing import load_or_create_signing_key as k; "
                "from server.db.engine import make_engine as e; print(k(e(sys.argv[1])).public_key)",
                server.database_url,
            ],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    seen = {racer.communicate(timeout=120)[0].strip() for racer in racers}
    assert all(racer.returncode == 0 for racer in racers)
    assert len(seen) == 1 and stored_keys(server.database_url) == list(seen)

    engine = make_engine(server.database_url)
    with engine.begin() as connection:
        connection.execute(delete(ServerKey))
    engine.dispose()
    server.start()  # a server whose database lacks a key makes it at its first answer
    device = Device(server)
    key = device.enrol(server.token()).json()["server_public_key"]
    assert stored_keys(server.database_url) == [key]
    assert answer_is_signed_by(key, device.post("/heartbeat", heartbeat()), "/heartbeat")
