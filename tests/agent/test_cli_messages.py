"""What `homeroom-agent` says when something is wrong: real processes, a real server where one is needed."""

from __future__ import annotations

import json
import socket
import uuid
from pathlib import Path

from agent.messages import identity_notes
from tests.helpers.agent_process import agent
from tests.helpers.servers import ServerProcess


def test_an_address_without_https_is_explained_and_nothing_is_created(tmp_path: Path) -> None:
    state = tmp_path / "state"
    done = agent("enroll", "--server", "127.0.0.1:8000", "--token", "t", "--state-dir", str(state))
    assert done.returncode == 2
    assert "add https:// (https://127.0.0.1:8000)" in done.stderr
    assert "No connection adapters" not in done.stderr and not state.exists()


def test_an_unreachable_server_gets_one_plain_sentence(tmp_path: Path) -> None:
    with socket.socket() as probe:  # a port with nothing listening
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    done = agent(
        "enroll", "--server", f"http://127.0.0.1:{port}", "--token", "t", "--state-dir", str(tmp_path)
    )
    assert done.returncode == 1
    (line,) = [line for line in done.stderr.splitlines() if not line.startswith("note:")]
    assert line == (
        f"homeroom-agent: cannot reach http://127.0.0.1:{port}: nothing answered there; "
        "check the address and that the server is running"
    )


def test_identity_notes_share_one_line_per_reason() -> None:
    why = "this machine has no DMI (SMBIOS) table"
    notes = identity_notes({"serial": why, "hardware_uuid": why, "manufacturer": why, "model": why})
    assert notes == [f"note: serial, hardware_uuid, manufacturer, model unknown: {why}"]


def test_status_when_not_enrolled_says_so_and_creates_nothing(tmp_path: Path) -> None:
    state = tmp_path / "state"
    done = agent("status", "--state-dir", str(state))
    assert done.returncode == 0, done.stderr
    assert "not enrolled: run `homeroom-agent enroll --server URL --token TOKEN`" in done.stdout
    assert not state.exists() and done.stderr == ""


def test_a_device_the_server_refuses_is_told_what_to_do(server: ServerProcess, tmp_path: Path) -> None:
    state = tmp_path / "state"
    enrolled = agent("enroll", "--server", server.url, "--token", server.token(), "--state-dir", str(state))
    assert enrolled.returncode == 0, enrolled.stderr
    assert enrolled.stderr.count("note:") <= 1, "one note for the missing DMI table, not four"
    assert len([line for line in enrolled.stdout.splitlines() if "evice key" in line]) == 1
    # IT removed this laptop's record: the server no longer knows its id.
    record = json.loads((state / "enrolment.json").read_text())
    (state / "enrolment.json").write_text(json.dumps({**record, "device_id": uuid.uuid4().hex}))
    once = agent("run", "--once", "--state-dir", str(state))
    assert once.returncode == 3
    assert "the server does not accept this laptop (401: signature not accepted" in once.stderr
    assert "enrol it again: homeroom-agent enroll --server URL --token TOKEN" in once.stderr
    status = agent("status", "--state-dir", str(state))
    assert "Last report:     none delivered yet (one queued at" in status.stdout
    assert "Last problem:" in status.stdout and "signature not accepted" in status.stdout
    assert len([line for line in (status.stdout + status.stderr).splitlines() if "evice key" in line]) == 1
    # Enrolled again: the record still holds the old key, so the claim waits until IT approves it
    # (docs/architecture.md, "Re-keying a record"); then the report goes through and status says when.
    again = agent("enroll", "--server", server.url, "--token", server.token(), "--state-dir", str(state))
    assert again.returncode == 0, again.stderr
    for listed in json.loads(server.cli("devices", "--json").stdout)["devices"]:
        for claim in listed["claims"]:
            assert server.cli("devices", "approve-claim", str(claim["claim_id"])).returncode == 0
    assert agent("run", "--once", "--state-dir", str(state)).returncode == 0
    after = agent("status", "--state-dir", str(state))
    assert "Last report:     20" in after.stdout and "Last problem" not in after.stdout


def test_status_with_a_damaged_enrolment_says_so(state_dir: Path) -> None:
    (state_dir / "enrolment.json").write_text("{not json")
    done = agent("status", "--state-dir", str(state_dir))
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "enrolment.json is damaged" in done.stdout and "enrol again" in done.stdout
