"""`homeroom-server backup` / `restore` on SQLite, against a real server that is serving and writing."""

from __future__ import annotations

import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from server import backup as backup_module
from server.cli import main
from tests.helpers.servers import InitialisedDatabases, ServerProcess
from tests.helpers.signed_device import IDENTITY, Device, devices, heartbeat, report


@pytest.fixture
def sqlite_server(tmp_path: Path, initialised_databases: InitialisedDatabases) -> Iterator[ServerProcess]:
    url = f"sqlite:///{tmp_path / 'var' / 'homeroom.db'}"
    initialised_databases.copy_into(url)
    process = ServerProcess(url, tmp_path)
    process.start()
    try:
        yield process
    finally:
        process.stop()


def laptop(server: ServerProcess, token: str) -> Device:
    identity = dict(IDENTITY, hostname=f"lt-{uuid.uuid4().hex[:8]}", serial=uuid.uuid4().hex[:10])
    identity["hardware_uuid"], identity["machine_id"] = str(uuid.uuid4()), uuid.uuid4().hex
    device = Device(server, identity)
    assert device.enrol(token).status_code == 200
    return device


def database_file(server: ServerProcess) -> Path:
    return Path(server.database_url.removeprefix("sqlite:///"))


def device_ids_in(path: Path) -> set[str]:
    connection = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    try:
        return {row[0] for row in connection.execute("SELECT id FROM devices")}
    finally:
        connection.close()


def test_a_backup_taken_while_the_server_writes_is_whole_and_serves_again(
    sqlite_server: ServerProcess, tmp_path: Path
) -> None:
    token = sqlite_server.token()
    first = laptop(sqlite_server, token)
    assert first.post("/reports", report()).status_code == 200

    # Laptops enrol and report without pause while the backup is taken.
    stop = threading.Event()
    enrolled: list[str] = []
    failures: list[str] = []

    def keep_writing() -> None:
        while not stop.is_set():
            try:
                device = laptop(sqlite_server, token)
                answer = device.post("/reports", report())
            except Exception as exc:  # noqa: BLE001 - the test reads it below
                failures.append(repr(exc))
                return
            if answer.status_code != 200:
                failures.append(answer.text)
                return
            enrolled.append(device.device_id)

    def wait_for(count: int) -> None:
        deadline = time.monotonic() + 60
        while len(enrolled) < count and writer.is_alive() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(enrolled) >= count, failures

    writer = threading.Thread(target=keep_writing)
    writer.start()
    try:
        wait_for(3)
        before = len(enrolled)
        copy = tmp_path / "backups" / "homeroom-2026-12-01.db"
        done = sqlite_server.cli("backup", str(copy))
        after_backup = len(enrolled)
        wait_for(after_backup + 3)
    finally:
        stop.set()
        writer.join(60)
    assert done.returncode == 0, done.stderr
    assert f"Backed up {database_file(sqlite_server)} to {copy}" in done.stdout
    assert not failures, "the server kept answering while it was copied"

    # A single self-contained file that passes SQLite's own check, holding a moment between the
    # writes before the command and those after it.
    assert not copy.with_name(copy.name + "-wal").exists()
    connection = sqlite3.connect(copy)
    assert connection.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    connection.close()
    in_copy = device_ids_in(copy)
    assert first.device_id in in_copy
    assert set(enrolled[:before]) <= in_copy, "everything written before the backup is in it"
    assert not set(enrolled[after_backup + 1 :]) & in_copy, "nothing written after it finished"

    # A server started on the copy knows the laptops in it: their keys came along.
    restored_dir = tmp_path / "restored"
    restored = ServerProcess(f"sqlite:///{restored_dir / 'var' / 'homeroom.db'}", restored_dir)
    restored_dir.mkdir()
    put_back = restored.cli("restore", str(copy))
    assert put_back.returncode == 0, put_back.stderr
    restored.start()
    try:
        first.server = restored
        assert first.post("/heartbeat", heartbeat()).status_code == 200
        assert {d["device_id"] for d in devices(restored)} == in_copy
    finally:
        restored.stop()


def test_restore_refuses_a_running_server_unless_forced_and_keeps_what_was_there(
    sqlite_server: ServerProcess, tmp_path: Path
) -> None:
    kept_token = sqlite_server.token()
    before = laptop(sqlite_server, kept_token)
    copy = tmp_path / "backup.db"
    assert sqlite_server.cli("backup", str(copy)).returncode == 0
    later_token = sqlite_server.token()
    later = laptop(sqlite_server, later_token)
    database = database_file(sqlite_server)

    refused = sqlite_server.cli("restore", str(copy))
    assert refused.returncode == 2
    assert "a `homeroom-server serve` is using" in refused.stderr and "--force" in refused.stderr
    assert later.device_id in device_ids_in(database), "a refused restore changes nothing"
    assert not list(database.parent.glob("*.before-restore-*"))

    forced = sqlite_server.cli("restore", str(copy), "--force")
    assert forced.returncode == 0, forced.stderr
    assert "restart it" in forced.stdout
    (kept,) = database.parent.glob("homeroom.db.before-restore-*")
    assert later.device_id in device_ids_in(kept), "the database as it was is kept"
    # The running server reads the restored database at once: the token made after the backup is
    # gone, the one from before enrols, and the laptop from before still reports.
    assert devices(sqlite_server) and later.device_id not in {d["device_id"] for d in devices(sqlite_server)}
    assert laptop_refused(sqlite_server, later_token) == 403
    laptop(sqlite_server, kept_token)
    assert before.post("/reports", report()).status_code == 200

    # Stopped, it restores without --force, and the server starts on the restored data.
    sqlite_server.stop()
    again = sqlite_server.cli("restore", str(kept))
    assert again.returncode == 0, again.stderr
    assert "--force" not in again.stdout and "restart it" not in again.stdout
    sqlite_server.start()
    assert later.post("/heartbeat", heartbeat()).status_code == 200


def laptop_refused(server: ServerProcess, token: str) -> int:
    identity = dict(IDENTITY, serial=uuid.uuid4().hex[:10], hardware_uuid=str(uuid.uuid4()))
    identity["machine_id"] = uuid.uuid4().hex
    return Device(server, identity).enrol(token).status_code


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def test_what_is_not_a_homeroom_backup_is_refused_and_nothing_is_lost(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], initialised_databases: InitialisedDatabases
) -> None:
    url = f"sqlite:///{tmp_path / 'var' / 'homeroom.db'}"
    initialised_databases.copy_into(url)
    database = tmp_path / "var" / "homeroom.db"
    original = database.read_bytes()

    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"\x00\x01 not a database" * 100)
    other = tmp_path / "other.db"
    connection = sqlite3.connect(other)
    connection.execute("CREATE TABLE notes (text TEXT)")
    connection.commit()
    connection.close()
    damaged = tmp_path / "damaged.db"
    damaged.write_bytes(original[: len(original) // 3])
    newer = tmp_path / "newer.db"
    newer.write_bytes(original)
    connection = sqlite3.connect(newer)
    connection.execute("UPDATE alembic_version SET version_num = '9999_from_the_future'")
    connection.commit()
    connection.close()
    cases = {
        garbage: "is not a SQLite database",
        other: "not a Homeroom one",
        damaged: "damaged",
        newer: "newer Homeroom",
        tmp_path / "missing.db": "no such file",
        database: "is the server's database itself",
    }
    for path, said in cases.items():
        code, output = run(capsys, "restore", str(path), "--database", url)
        assert code == 2 and said in output, (path, output)
        assert "Traceback" not in output
    assert database.read_bytes() == original
    assert not list(database.parent.glob("*.before-restore-*"))

    existing = tmp_path / "existing.db"
    existing.write_bytes(b"keep me")
    code, output = run(capsys, "backup", str(existing), "--database", url)
    assert code == 2 and "already exists" in output
    assert existing.read_bytes() == b"keep me"
    code, output = run(
        capsys, "backup", str(tmp_path / "x.db"), "--database", f"sqlite:///{tmp_path / 'no.db'}"
    )
    assert code == 2 and "nothing to back up" in output


def test_postgresql_is_pointed_to_pg_dump(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    for command in ("backup", "restore"):
        code, output = run(capsys, command, str(tmp_path / "x"), "--database", "postgresql://h/homeroom")
        assert code == 2 and "pg_dump" in output, output


def test_a_server_does_not_start_while_a_restore_holds_the_database(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], initialised_databases: InitialisedDatabases
) -> None:
    url = f"sqlite:///{tmp_path / 'var' / 'homeroom.db'}"
    initialised_databases.copy_into(url)
    restoring = backup_module.ServingLock(tmp_path / "var" / "homeroom.db")
    assert restoring.take(exclusive=True)
    try:
        code, output = run(capsys, "serve", "--database", url, "--port", "1")
        assert code == 2 and "restore" in output and "under way" in output
    finally:
        restoring.release()
