"""Each device's inventory is stored once, its history grows by changes only (real server, both databases)."""

from __future__ import annotations

import json
import random
import threading
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any

import requests
from sqlalchemy import create_engine, text

from tests.helpers.database_size import stored_bytes
from tests.helpers.servers import ServerProcess
from tests.helpers.signed_device import IDENTITY, Device, report


def package(name: str, version: str = "1.0-1", judged: bool | None = None) -> dict[str, Any]:
    item: dict[str, Any] = {
        "name": name,
        "version": version,
        "publisher": "Debian Maintainers <pkg@debian.org>",
        "source": "dpkg",
    }
    if judged is not None:
        item["judged"] = judged
    return item


def debian_like(count: int, seed: int = 10) -> list[dict[str, Any]]:
    """Names and versions that do not compress away (PostgreSQL compresses large values)."""
    chance = random.Random(seed)
    return [
        package(
            f"lib{chance.randbytes(6).hex()}{index}", f"{chance.randint(1, 40)}.{chance.randbytes(3).hex()}-1"
        )
        for index in range(count)
    ]


def query(server: ServerProcess, sql: str, **params: Any) -> list[Any]:
    engine = create_engine(server.database_url.replace("postgresql://", "postgresql+psycopg://"))
    try:
        with engine.connect() as connection:
            return list(connection.execute(text(sql), params))
    finally:
        engine.dispose()


def history(server: ServerProcess) -> list[tuple[str, str, str, str | None]]:
    return [
        (row.change, row.name, row.version, row.previous_version)
        for row in query(server, "SELECT * FROM software_changes ORDER BY id")
    ]


def installed(server: ServerProcess, device: Device) -> dict[tuple[str, str], str]:
    rows = query(server, "SELECT * FROM device_software WHERE device_id = :d", d=device.device_id)
    return {(row.name, row.source): row.version for row in rows}


def send(device: Device, software: list[dict[str, Any]], **extra: Any) -> requests.Response:
    body = {**report(), "identity": device.identity, "software": software, **extra}
    return device.post("/reports", body)


def enrolled(server: ServerProcess, number: int = 1, group: str = "Lincoln High") -> Device:
    identity = {
        **IDENTITY,
        "serial": f"SW{number:06d}",
        "hardware_uuid": str(uuid.uuid4()).upper(),
        "machine_id": uuid.uuid4().hex,
        "hostname": f"lt{number:03d}",
    }
    device = Device(server, identity)
    assert device.enrol(server.token(group)).status_code == 200
    return device


def test_history_holds_each_change_once(server: ServerProcess) -> None:
    device = enrolled(server)
    first = [package("firefox-esr", "115.12"), package("libreoffice", "7.4"), package("vim", "9.0")]
    assert send(device, first).json()["stored"] is True
    assert sorted(history(server)) == sorted(("added", item["name"], item["version"], None) for item in first)

    # The same inventory again, in another order and with a pair named twice: nothing new.
    again = [first[2], first[0], first[1], first[0]]
    for _ in range(3):
        assert send(device, again).status_code == 200
    assert len(history(server)) == 3

    # One install, one removal, one upgrade: exactly those three rows.
    changed = [package("firefox-esr", "128.3"), package("vim", "9.0"), package("gimp", "2.10")]
    assert send(device, changed).status_code == 200
    assert sorted(history(server)[3:]) == [
        ("added", "gimp", "2.10", None),
        ("changed", "firefox-esr", "128.3", "115.12"),
        ("removed", "libreoffice", "7.4", None),
    ]
    assert installed(server, device) == {
        ("firefox-esr", "dpkg"): "128.3",
        ("vim", "dpkg"): "9.0",
        ("gimp", "dpkg"): "2.10",
    }
    # Which report showed the change, and when.
    rows = query(server, "SELECT DISTINCT report_id FROM software_changes WHERE name = 'gimp'")
    assert len(rows) == 1

    # No list (software requirement off, or every inventory unreadable) is not "all removed".
    assert send(device, []).status_code == 200
    # A report delayed by an outage, dated before the stored inventory, does not move it back.
    stale = (datetime.now(timezone.utc) - timedelta(hours=3)).isoformat()
    assert send(device, first, reported_at=stale).status_code == 200
    assert len(history(server)) == 6
    assert installed(server, device)[("firefox-esr", "dpkg")] == "128.3"

    # The stored report keeps the results and the inventory's size, not the list.
    bodies = query(server, "SELECT body FROM reports ORDER BY id")
    for body in bodies:
        stored = body.body if isinstance(body.body, dict) else json.loads(body.body)
        assert "software" not in stored and "results" in stored
    last = bodies[-1].body if isinstance(bodies[-1].body, dict) else json.loads(bodies[-1].body)
    assert last["software_items"] == 3


def test_whether_an_item_is_judged_is_kept_but_is_no_change(server: ServerProcess) -> None:
    device = enrolled(server)
    # An agent from before the flag: every item it sends counts as judged.
    assert send(device, [package("chromium"), package("libflac12")]).status_code == 200
    # An upgraded agent says which items are apps: its view of them, not a change on the laptop.
    marked = [package("chromium", judged=True), package("libflac12", judged=False)]
    assert send(device, marked).status_code == 200
    assert len(history(server)) == 2
    # A new wording of why it is judged is kept, and is not a change either.
    reworded = [marked[0] | {"basis": "manually installed (apt)"}, marked[1]]
    assert send(device, reworded).status_code == 200
    assert len(history(server)) == 2
    (row,) = query(server, "SELECT basis FROM device_software WHERE name = 'chromium'")
    assert row.basis == "manually installed (apt)"
    flags = {row.name: row.judged for row in query(server, "SELECT name, judged FROM device_software")}
    assert flags == {"chromium": True, "libflac12": False}
    # An upgrade is a change, and its row says whether the item was judged then.
    assert (
        send(device, [reworded[0] | {"version": "2.0"}, marked[1] | {"version": "1.4.2"}]).status_code == 200
    )
    changed = {
        row.name: bool(row.judged)
        for row in query(server, "SELECT * FROM software_changes WHERE change = 'changed'")
    }
    assert changed == {"chromium": True, "libflac12": False}


def test_bytes_stored_per_report_grow_by_changes_only(server: ServerProcess) -> None:
    device = enrolled(server)
    laptop = debian_like(1500)
    listed = len(json.dumps(laptop))
    assert listed > 90_000  # about what a Debian laptop sends
    assert send(device, laptop).status_code == 200
    before = stored_bytes(server.database_url)
    reports = 20
    for _ in range(reports):
        assert send(device, laptop).status_code == 200
    per_report = (stored_bytes(server.database_url) - before) / reports
    # Storing the list each time costs its size (or at least half of it, compressed) per report.
    assert per_report < listed / 10, (per_report, listed)

    before = stored_bytes(server.database_url)
    upgraded = [
        dict(item, version=item["version"] + "+deb12u1") if i < 5 else item for i, item in enumerate(laptop)
    ]
    for _ in range(reports):
        assert send(device, upgraded).status_code == 200
    assert len(history(server)) == 1500 + 5
    assert (stored_bytes(server.database_url) - before) / reports < listed / 10


def test_hostile_inventories_get_a_4xx_or_are_stored_sanely(server: ServerProcess) -> None:
    device = enrolled(server)
    odd = [
        package(""),
        package("evil\u202eexe.txt"),
        package("line\nbreak"),
        package("'; DROP TABLE device_software; --"),
        package("🦊" * 300, "🦊" * 200) | {"source": "𝕊" * 600, "publisher": "𝕡" * 300},
        package("dup", "2.0"),
        package("dup", "1.0"),
    ]
    assert send(device, odd).status_code == 200
    assert send(device, list(reversed(odd))).status_code == 200  # the same inventory: nothing new
    assert len(history(server)) == 6
    assert installed(server, device)[("dup", "dpkg")] == "2.0"  # one copy, the same whatever the order
    too_many = send(device, [package(f"p{i}") for i in range(10_001)])
    assert too_many.status_code in (413, 422), too_many.text
    nul = send(device, [package("a\x00b")])
    assert nul.status_code == 422
    assert len(history(server)) == 6


def test_concurrent_reports_of_one_device_take_turns(server: ServerProcess) -> None:
    device = enrolled(server)
    inventories = [[package(f"app{n}-{i}") for i in range(200)] for n in range(4)]
    answers: list[int] = []

    def post(software: list[dict[str, Any]]) -> None:
        answers.append(send(device, software).status_code)

    threads = [threading.Thread(target=post, args=(software,)) for software in inventories]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert answers == [200] * 4
    now = set(installed(server, device))
    assert any(now == {(item["name"], "dpkg") for item in software} for software in inventories)
    # Every row of the history replays into the inventory the device has now.
    replayed: set[tuple[str, str]] = set()
    for change, name, _version, _previous in history(server):
        if change == "added":
            replayed.add((name, "dpkg"))
        elif change == "removed":
            replayed.discard((name, "dpkg"))
    assert replayed == now
