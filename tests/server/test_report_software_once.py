"""A laptop's software list is validated once: the same list sent again (byte for byte) is neither
parsed, validated nor diffed again, and any other list is validated before anything of
it is used or stored, so a bad one is still a 422 that stores nothing."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from pydantic import TypeAdapter
from sqlalchemy import Engine, select

from server.api.bodies import BodyInvalid
from server.api.schemas import ReportIn, SoftwareItemIn
from server.db.engine import make_engine
from server.db.tables import DEVICE_INVENTORY
from server.fleet import counted, report_body
from server.fleet.inventory_state import InventoryState
from server.fleet.report_body import read_report
from server.fleet.software_inventory import ReportedInventory, store_inventory
from tests.helpers.device_rows import insert_device
from tests.helpers.servers import InitialisedDatabases, ServerProcess
from tests.helpers.signed_device import IDENTITY, report
from tests.server.test_software_inventory import (
    debian_like,
    enrolled,
    history,
    installed,
    package,
    query,
    send,
)


def stored_reports(server: ServerProcess) -> int:
    return int(query(server, "SELECT COUNT(*) AS n FROM reports")[0].n)


def test_a_changed_bad_list_is_refused_after_a_good_one_and_stores_nothing(server: ServerProcess) -> None:
    device = enrolled(server)
    good = debian_like(40)
    assert send(device, good).status_code == 200
    before = (installed(server, device), history(server), stored_reports(server))
    bad_lists: list[Any] = [
        [*good[:-1], {**good[-1], "licence_key": "X"}],  # a field the contract does not have
        [*good[:-1], {**good[-1], "name": "vi\u0000m"}],  # NUL: PostgreSQL cannot store it
        [*good, {"name": "x" * 301}],  # over the bound
        [*good, "not an item"],
        [*good, {"name": "gimp", "judged": "perhaps"}],
        good + [{"name": "x"}] * 10_000,  # more items than a report may carry
    ]
    for software in bad_lists:
        answer = send(device, software)
        assert answer.status_code == 422, (answer.status_code, answer.text[:300])
        assert answer.json()["detail"][0]["loc"][:2] == ["body", "software"]
        assert len(answer.content) < 3000
    assert (installed(server, device), history(server), stored_reports(server)) == before
    # A device's first list is validated too.
    other = enrolled(server, number=2)
    assert send(other, bad_lists[0]).status_code == 422
    assert installed(server, other) == {}
    # The good list again: stored, and nothing new in the history.
    assert send(device, good).status_code == 200
    assert history(server) == before[1] and stored_reports(server) == before[2] + 1


class CountedValidator:
    """The real validator of a software list, counting the lists it is asked to validate."""

    def __init__(self) -> None:
        self.real: TypeAdapter[list[SoftwareItemIn]] = report_body.SOFTWARE_LIST
        self.calls = 0

    def validate_json(self, data: bytes) -> list[SoftwareItemIn]:
        self.calls += 1
        return self.real.validate_json(data)


def _device(engine: Engine) -> str:
    with engine.begin() as connection:
        insert_device(connection, "inventory-device")
    return "inventory-device"


def test_the_same_list_is_not_parsed_again_and_another_is(
    tmp_path: Path, initialised_databases: InitialisedDatabases, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The list's bytes as sent are compared with those the stored inventory came from: the same
    bytes are not validated again (the rest of the report is); any other list is, and a bad one is
    refused; a body whose list cannot be told apart is parsed whole, as before."""
    url = f"sqlite:///{tmp_path / 'var' / 'homeroom.db'}"
    initialised_databases.copy_into(url)
    engine = make_engine(url, for_server=True)
    device_id = _device(engine)
    validator = CountedValidator()
    monkeypatch.setattr(report_body, "SOFTWARE_LIST", validator)
    good = debian_like(30)
    moment = datetime.now(timezone.utc) - timedelta(hours=1)

    def send(software: list[Any], number: int, **extra: Any) -> tuple[dict[str, Any], int]:
        body = {**report(), "identity": {**IDENTITY, "hostname": "lt1"}, "software": software, **extra}
        raw = json.dumps(body).encode()  # as the agent sends it: json.dumps, ", " and ": "
        with engine.begin() as connection:
            before = counted.before_report(connection, device_id)  # the store path's read of the state
            assert before is not None
            parsed, plan = read_report(raw, before.inventory)
            assert parsed.report_id == body["report_id"]
            added = store_inventory(
                connection, device_id, parsed.report_id, moment + timedelta(minutes=number), plan
            )
        return plan.summary(), added

    first, added = send(good, 1)
    assert validator.calls == 1 and added == 30 and first["software_items"] == 30
    for number in range(2, 5):  # what a fleet sends all day: the same list
        assert send(good, number) == (first, 0)
    assert validator.calls == 1
    # The rest of a report is still validated when its list is the stored one.
    with pytest.raises(BodyInvalid):
        send(good, 5, agent_version="x" * 41)
    # Another order is another list as sent: validated, and the same inventory (no history).
    assert send(list(reversed(good)), 6) == (first, 0)
    assert validator.calls == 2
    # A changed list that is bad is refused, whatever was stored before.
    with pytest.raises(BodyInvalid) as refused:
        send([*good, {"name": "gimp", "colour": "blue"}], 7)
    assert refused.value.errors[0]["loc"][:2] == ("body", "software")
    assert validator.calls == 3
    # A list that cannot be told apart (a key named "software" in evidence too) is parsed whole.
    results = [{**report()["results"][0], "evidence": {"software": ["vim"]}}]
    assert send([*good, package("gimp", "2.10")], 8, results=results)[1] == 1
    with pytest.raises(BodyInvalid):
        send([*good, {"name": "vim\u0000"}], 9, results=results)
    assert validator.calls == 3
    with engine.connect() as connection:
        state = connection.execute(select(DEVICE_INVENTORY)).one()
    assert state.items == 31 and state.listed_digest is None  # from the whole parse: no bytes kept


def _as_sent(body: dict[str, Any], software_key: str = '"software":') -> bytes:
    """The body as compact JSON, the top-level list's key written as `software_key`."""
    return json.dumps(body, separators=(",", ":")).encode().replace(b'"software":', software_key.encode(), 1)


def _same_as_whole_parse(raw: bytes, state: Any = None) -> Any:
    """`read_report`'s report and inventory equal what parsing the whole body with `ReportIn` gives."""
    parsed, plan = read_report(raw, state)
    whole = ReportIn.model_validate_json(raw)
    assert parsed.model_dump(exclude={"software"}) == whole.model_dump(exclude={"software"})
    if plan.reported is not None:
        assert plan.reported == ReportedInventory.of(whole.software)
    return plan


def _state_of(raw: bytes) -> InventoryState:
    """A stored inventory whose list was this body's, as `read_report` remembered it."""
    _parsed, plan = read_report(raw, None)
    assert plan.listed is not None and plan.reported is not None
    return InventoryState(
        datetime.now(timezone.utc), plan.reported.digest, 1, plan.listed.digest, plan.listed.length
    )


def test_the_list_is_found_by_its_key_whatever_else_names_software() -> None:
    """A `software` key nested in evidence, an escaped name in a string, spaces before the colon:
    the top-level list is what is read, as the whole parse reads it."""
    body = report()
    body["results"][0]["evidence"] = {"software": ["a", "b"], "note": '"software": []'}
    for key in ('"software":', '"software" :', '"software"\n:\t'):
        raw = _as_sent(body, key)
        plan = _same_as_whole_parse(raw)
        assert plan.reported is not None and list(plan.reported.items)


def test_a_list_named_twice_is_read_as_the_whole_parse_reads_it() -> None:
    """JSON keeps the last of two same keys: the second list counts, also when the first is the very
    list already stored (which alone would not be parsed again)."""
    first = report()
    stored = _as_sent(first)
    state = _state_of(stored)
    again = stored[:-1] + b',"software":[{"name":"nmap","version":"7.93"}]}'
    plan = _same_as_whole_parse(again, state)
    assert plan.reported is not None and [item.name for item in plan.reported.items.values()] == ["nmap"]
    # The list alone, the same again: not parsed (no list in the plan), read as stored.
    assert _same_as_whole_parse(stored, state).reported is None
