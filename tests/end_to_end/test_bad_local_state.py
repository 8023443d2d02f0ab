"""The real service process (`homeroom-agent run --once`) on bad local state, against a real server: it keeps
running, keeps the evidence for IT, and says so in `status` and in the server's audit log."""

from __future__ import annotations

import json
import sqlite3
import stat
from collections.abc import Callable
from pathlib import Path

import pytest

from agent.server_link.outbox import OUTBOX_FILE, Outbox
from tests.helpers.agent_process import agent
from tests.helpers.audit import audit_details, stored_report_count
from tests.helpers.servers import ServerProcess


def run(*args: str, state: Path) -> tuple[int, str]:
    done = agent(*args, "--state-dir", str(state))
    return done.returncode, done.stdout + done.stderr


def enrolled(server: ServerProcess, tmp_path: Path) -> Path:
    state = tmp_path / "state"
    code, out = run("enroll", "--server", server.url, "--token", server.token(), state=state)
    assert code == 0, out
    return state


def queued_outbox(path: Path) -> None:
    with Outbox(path) as outbox:
        for number in range(40):
            outbox.put("heartbeat", {"n": number, "pad": "x" * 2000})
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")


def garbage(path: Path) -> None:
    path.write_bytes(bytes(range(256)) * 64)


def truncated(path: Path) -> None:
    queued_outbox(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])


def wrong_schema(path: Path) -> None:
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE outbox (seq INTEGER PRIMARY KEY, payload BLOB)")
        db.execute("PRAGMA user_version = 1")


@pytest.mark.parametrize("damage", [garbage, truncated, wrong_schema])
def test_a_damaged_outbox_is_set_aside_a_new_one_started_and_it_is_reported(
    server: ServerProcess, tmp_path: Path, damage: Callable[[Path], None]
) -> None:
    state = enrolled(server, tmp_path)
    path = state / OUTBOX_FILE
    damage(path)
    damaged = path.read_bytes()

    code, out = run("run", "--once", state=state)
    assert code == 0, out
    assert "sent: 1" in out and stored_report_count(server) == 1
    (aside,) = state.glob(f"{OUTBOX_FILE}.unusable-*")
    assert aside.read_bytes() == damaged, "kept for IT exactly as found"
    assert stat.S_IMODE(aside.stat().st_mode) == 0o600
    assert aside.name[len(OUTBOX_FILE) + len(".unusable-") :][:8].isdigit()  # 20261201T...Z
    (logged,) = audit_details(server, "device.local_problem")
    assert "the outbox was not usable" in logged["problems"][0] and aside.name in logged["problems"][0]

    code, out = run("status", state=state)
    assert code == 0, out
    assert "Local problem (reported " in out and aside.name in out
    code, out = run("run", "--once", state=state)
    assert code == 0, out
    assert len(audit_details(server, "device.local_problem")) == 1, "reported once, not on every run"

    aside.unlink()  # IT has taken it: status no longer shows it
    code, out = run("status", state=state)
    assert "Local problem" not in out


def test_a_broken_local_requirements_file_runs_on_the_servers_copy_and_is_reported(
    server: ServerProcess, tmp_path: Path
) -> None:
    state = enrolled(server, tmp_path)
    broken = tmp_path / "requirements.toml"
    broken.write_text("[screen_lock]\nmax_idle_minutes = \n", encoding="utf-8")

    code, out = run("run", "--once", "--requirements", str(broken), state=state)
    assert code == 2 and f"{broken}:2" in out, "with no server copy there is nothing sound to run on"

    (state / "server-requirements.toml").write_text("[screen_lock]\nmax_idle_minutes = 7\n", encoding="utf-8")
    code, out = run("run", "--once", "--requirements", str(broken), state=state)
    assert code == 0, out
    assert "sent: 1" in out and stored_report_count(server) == 1
    (logged,) = audit_details(server, "device.local_problem")
    assert (
        "local requirements file is broken" in logged["problems"][0] and str(broken) in logged["problems"][0]
    )
    status = json.loads((state / "status.json").read_text())
    assert status["results"], "the checks ran, on the server's copy"

    code, out = run("status", "--requirements", str(broken), state=state)
    assert code == 0 and "Local problem (reported " in out and "local requirements file is broken" in out
    good = tmp_path / "good.toml"
    good.write_text("[screen_lock]\nmax_idle_minutes = 5\n", encoding="utf-8")
    code, out = run("status", "--requirements", str(good), state=state)
    assert code == 0 and "Local problem" not in out, "fixed: no longer shown"
