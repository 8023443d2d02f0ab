"""A laptop's software list is validated once: the same list sent again (as sent, byte for byte once
re-encoded) is neither validated nor diffed again, and any other list is validated before anything of
it is used or stored, so a bad one is still a 422 that stores nothing."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from pydantic import TypeAdapter
from sqlalchemy import Engine, insert, select

from server.api.bodies import BodyInvalid
from server.api.schemas import SoftwareItemIn
from server.db.engine import make_engine
from server.db.tables import DEVICE_INVENTORY, DEVICES
from server.fleet import software_inventory
from server.fleet.software_inventory import SentSoftware, plan_inventory, store_inventory
from tests.helpers.servers import InitialisedDatabases, ServerProcess
from tests.server.test_software_inventory import debian_like, enrolled, history, installed, query, send


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
    """The real validator, counting the lists it is asked to validate."""

    def __init__(self) -> None:
        self.real: TypeAdapter[list[SoftwareItemIn]] = TypeAdapter(list[SoftwareItemIn])
        self.calls = 0

    def validate_json(self, data: bytes) -> list[SoftwareItemIn]:
        self.calls += 1
        return self.real.validate_json(data)


def _device(engine: Engine) -> str:
    with engine.begin() as connection:
        connection.execute(
            insert(DEVICES).values(
                id="inventory-device",
                group_name="Lincoln High",
                hostname="lt1",
                os="linux",
                os_version="Debian 12",
                macs=[],
                identity_unreadable={},
                public_key="AAAA",
                agent_version="0.1.0",
                enrolled_at=datetime.now(timezone.utc),
            )
        )
    return "inventory-device"


def test_the_same_list_is_not_validated_again_and_another_is(
    tmp_path: Path, initialised_databases: InitialisedDatabases, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path / 'var' / 'homeroom.db'}"
    initialised_databases.copy_into(url)
    engine = make_engine(url, for_server=True)
    device_id = _device(engine)
    validator = CountedValidator()
    monkeypatch.setattr(software_inventory, "SOFTWARE_LIST", validator)
    good = debian_like(30)
    moment = datetime.now(timezone.utc) - timedelta(hours=1)

    def report(items: list[Any], number: int) -> tuple[dict[str, Any], int]:
        sent = SentSoftware.of(json.loads(json.dumps(items)))  # as the JSON parser hands it over
        with engine.begin() as connection:
            plan = plan_inventory(connection, device_id, sent)
            added = store_inventory(
                connection, device_id, f"r{number}", moment + timedelta(minutes=number), plan
            )
        return plan.summary(), added

    first, added = report(good, 1)
    assert validator.calls == 1 and added == 30 and first["software_items"] == 30
    for number in range(2, 5):  # what a fleet sends all day: the same list
        assert report(good, number) == (first, 0)
    assert validator.calls == 1
    # Another order is another list as sent: validated, and the same inventory (no history).
    assert report(list(reversed(good)), 5) == (first, 0)
    assert validator.calls == 2
    # A changed list that is bad is refused, whatever was stored before.
    with pytest.raises(BodyInvalid) as refused:
        report([*good, {"name": "gimp", "colour": "blue"}], 6)
    assert refused.value.errors[0]["loc"][:2] == ("body", "software")
    assert validator.calls == 3
    with engine.connect() as connection:
        listed = connection.execute(select(DEVICE_INVENTORY.c.listed_digest)).scalar_one()
    assert listed == SentSoftware.of(list(reversed(good))).digest
