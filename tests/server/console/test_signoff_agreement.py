"""Every sign-off view says the same thing as the rule, on both databases: the report
(`homeroom-server signoffs`), the overview's coverage, the Sign-offs page (coverage, list, CSV), the
admin API and the device list's "sign-off missing" filter, for a whole district's mix of decisions
(versions changed, declined, past renewal, several people per laptop, several schools and
audiences, a school with policies and a renewal of its own), read by an administrator and by a
technician. The rule is written out again here in plain Python (`expected`), from contract/renewal.py,
so a view that went its own way would disagree with it.

Then the things that change a state without anyone signing: time passing a renewal date, a policy
published, a laptop moved to another school, a person seen for the first time, a school's renewal
changed. The views are judged at each moment and after each change, against the rule.
"""

from __future__ import annotations

import csv
import html
import io
import json
import random
import re
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from functools import partial
from urllib.parse import quote

import pytest
import requests
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Connection, Engine, delete, insert, select, text, update
from sqlalchemy.orm import Session

from contract.renewal import Renewal, expires_at
from server.api.schemas import SignOffIn
from server.auth import KnownDevice
from server.console import device_list, signoff_coverage, signoff_report, signoff_views
from server.console.fleet_views import Filters
from server.console.roles import Scope
from server.db.engine import make_engine, migrate
from server.db.tables import DEVICE_USERS, DEVICES, POLICIES, REQUIREMENTS, SIGNOFFS
from server.fleet import signoff_state
from server.fleet.published import publish_policy
from server.fleet.signoffs import signoff_rows, store_signoff
from tests.helpers.console import ConsoleUser, create_user
from tests.helpers.paths import CONFIG
from tests.helpers.servers import ServerProcess
from tests.server.console.test_admin_api import token_for

LINCOLN, ADAMS, WASHINGTON = "Lincoln High", "Adams Middle", "Washington Elementary"
SCHOOLS = (LINCOLN, ADAMS, WASHINGTON)
PASSWORD = "a long enough password"
DISTRICT = Scope(None)
SHIPPED = (CONFIG / "requirements.toml").read_text(encoding="utf-8")  # renew_on = "08-15"
DISTRICT_RENEWAL = Renewal(yearly_on=(8, 15))
LINCOLN_RENEWAL = Renewal(every_days=30)
LINCOLN_REQUIREMENTS = SHIPPED.replace('renew_on = "08-15"', "").replace(
    "renew_after_days = 0", "renew_after_days = 30"
)
DISTRICT_STUDENT, LINCOLN_STUDENT, ADAMS_STAFF, OLD = (f"{n:x}" * 64 for n in (1, 2, 3, 4))


@dataclass
class Decision:
    id: int
    device_id: str
    user: str
    version: str
    decision: str
    at: datetime


@dataclass
class Mix:
    """What is in the tables, as the rule reads it."""

    laptops: dict[str, tuple[str, str, str]] = field(default_factory=dict)  # id: (school, audience, host)
    people: list[tuple[str, str]] = field(default_factory=list)  # (device id, user)
    decisions: list[Decision] = field(default_factory=list)
    # (school, audience): version; "" is the district's.
    policies: dict[tuple[str, str], str] = field(default_factory=dict)
    renewals: dict[str, Renewal] = field(default_factory=dict)


def expected(mix: Mix, device_id: str, user: str, now: datetime) -> str:
    """The rule, in Python: the policy that applies, the latest decision on its version, renewal."""
    school, audience, _host = mix.laptops[device_id]
    version = mix.policies.get((school, audience)) or mix.policies.get(("", audience))
    if version is None:
        return signoff_state.NO_POLICY
    theirs = [d for d in mix.decisions if (d.device_id, d.user) == (device_id, user)]
    on_version = [d for d in theirs if d.version == version]
    if not on_version:
        agreed = any(d.decision == "agree" for d in theirs)
        return signoff_state.VERSION_CHANGED if agreed else signoff_state.NEVER_SIGNED
    latest = max(on_version, key=lambda d: (d.at, d.id))
    if latest.decision != "agree":
        return signoff_state.DECLINED
    renewal = mix.renewals.get(school) or mix.renewals.get("") or Renewal()
    end = expires_at(latest.at, renewal, timezone.utc)
    return signoff_state.SIGNED if end is None or now < end else signoff_state.PAST_RENEWAL


def expected_states(mix: Mix, now: datetime) -> dict[tuple[str, str], str]:
    return {(device, user): expected(mix, device, user, now) for device, user in mix.people}


Kept = dict[tuple[str, str], tuple[str | None, int | None]]  # (device, user): (version, decision id)


def latest_applying(mix: Mix) -> Kept:
    """What each person's row should keep, by the rule: the version that applies and the id of their
    latest decision on it (None: no policy, or no decision)."""
    kept: Kept = {}
    for device_id, user in mix.people:
        school, audience, _host = mix.laptops[device_id]
        version = mix.policies.get((school, audience)) or mix.policies.get(("", audience))
        mine = [d for d in mix.decisions if (d.device_id, d.user, d.version) == (device_id, user, version)]
        latest = max(mine, key=lambda d: (d.at, d.id), default=None)
        kept[(device_id, user)] = (version, latest.id if latest else None)
    return kept


def kept_decisions(engine: Engine) -> Kept:
    """What the rows keep, decision ids as record numbers (the mix's ids)."""
    with engine.connect() as connection:
        rows = connection.execute(
            select(
                DEVICE_USERS.c.device_id,
                DEVICE_USERS.c.user,
                DEVICE_USERS.c.signoff_version,
                SIGNOFFS.c.record_id,
            ).select_from(DEVICE_USERS.outerjoin(SIGNOFFS, SIGNOFFS.c.id == DEVICE_USERS.c.signoff_id))
        ).all()
    return {
        (r.device_id, r.user): (r.signoff_version, int(r.record_id, 16) if r.record_id else None)
        for r in rows
    }


def boundaries(now: datetime) -> list[datetime]:
    """Every moment around `now` at which a state in the mix could turn."""
    return [datetime(year, 8, 15, tzinfo=timezone.utc) for year in range(now.year - 3, now.year + 2)]


def made_up(rng: random.Random, now: datetime, laptops: int = 30) -> Mix:
    """A district in small: three schools, staff and student laptops, one to four people each (some
    names on two laptops), each with none to three decisions on the version in force, an old one or
    another school's, agreeing or declining over the last 500 days. No decision is within an hour of
    a renewal boundary: a read a few seconds later judges it the same."""
    mix = Mix(
        policies={
            ("", "student"): DISTRICT_STUDENT,
            (LINCOLN, "student"): LINCOLN_STUDENT,
            (ADAMS, "staff"): ADAMS_STAFF,
        },
        renewals={"": DISTRICT_RENEWAL, LINCOLN: LINCOLN_RENEWAL},
    )
    number = 0
    for index in range(laptops):
        device_id = f"{rng.getrandbits(128):032x}"
        audience = "staff" if rng.random() < 0.3 else "student"
        mix.laptops[device_id] = (SCHOOLS[index % 3], audience, f"lt-{index:03d}")
        for user in rng.sample([f"p{n:02d}" for n in range(12)], rng.randint(1, 4)):
            mix.people.append((device_id, user))
            applies = {DISTRICT_STUDENT, LINCOLN_STUDENT, ADAMS_STAFF}
            for _ in range(rng.choice((0, 1, 1, 2, 3))):
                version = (
                    rng.choice([*sorted(applies), OLD]) if rng.random() < 0.4 else _applying(mix, device_id)
                )
                while True:
                    at = now - timedelta(days=rng.uniform(0, 500), microseconds=rng.randrange(1_000_000))
                    near = [*boundaries(now), now - timedelta(days=30)]
                    if all(abs(at - moment) > timedelta(hours=1) for moment in near):
                        break
                number += 1
                decision = "agree" if rng.random() < 0.75 else "decline"
                mix.decisions.append(Decision(number, device_id, user, version, decision, at))
    return mix


def _applying(mix: Mix, device_id: str) -> str:
    school, audience, _host = mix.laptops[device_id]
    return mix.policies.get((school, audience)) or mix.policies.get(("", audience)) or OLD


def stored(engine: Engine, mix: Mix, now: datetime, requirements: bool) -> None:
    """The mix written into the tables the server reads (ids in `decisions` order: the tie-break)."""
    with engine.begin() as connection:
        for device_id, (school, audience, host) in mix.laptops.items():
            connection.execute(
                insert(DEVICES).values(
                    id=device_id,
                    group_name=school,
                    hostname=host,
                    serial=f"SN-{host}",
                    os="linux",
                    os_version="12",
                    macs=[],
                    identity_unreadable={},
                    public_key="k" * 43,
                    agent_version="0.1.0",
                    enrolled_at=now - timedelta(days=600),
                    last_seen_at=now,
                    commands_pending=False,
                    audience=audience,
                )
            )
        connection.execute(delete(POLICIES))
        for (school, audience), version in mix.policies.items():
            connection.execute(insert(POLICIES).values(_policy(school, audience, version, now)))
        for device_id, user in mix.people:
            connection.execute(insert(DEVICE_USERS).values(device_id=device_id, user=user, last_seen_at=now))
        for d in mix.decisions:
            connection.execute(
                insert(SIGNOFFS).values(
                    record_id=f"{d.id:032x}",
                    device_id=d.device_id,
                    user=d.user,
                    full_name=f"Person {d.user}",
                    policy_id="aup",
                    policy_version=d.version,
                    decision=d.decision,
                    decided_at=d.at,
                    received_at=d.at,
                )
            )
        if requirements:
            _requirements(connection, "", SHIPPED, now)
        _requirements(connection, LINCOLN, LINCOLN_REQUIREMENTS, now)


def _policy(school: str, audience: str, version: str, now: datetime) -> dict[str, object]:
    return {
        "group_name": school,
        "audience": audience,
        "policy_id": f"aup-{audience}",
        "title": "AUP",
        "version": version,
        "content": "I will.",
        "published_at": now,
    }


def _requirements(connection: Connection, school: str, content: str, now: datetime) -> None:
    connection.execute(delete(REQUIREMENTS).where(REQUIREMENTS.c.group_name == school))
    connection.execute(
        insert(REQUIREMENTS).values(
            group_name=school, content=content, etag=str(hash(content)), updated_at=now
        )
    )


def state_of(row: object) -> str:
    """The judgement's state as the report row shows it."""
    return row.must_sign or row.status  # type: ignore[attr-defined]


Keyed = list[tuple[tuple[str, str], str]]  # ((device id, user), state), in the order shown


@dataclass
class Shown:
    report: Keyed
    overview: tuple[int, int]
    coverage: dict[tuple[str, str], tuple[int, int, int]]
    listed: Keyed
    exported: Keyed
    missing: set[str]


def shown_states(engine: Engine, now: datetime, scope: Scope = DISTRICT) -> Shown:
    """What each view says at `now`, read through the code the pages and the CLI run."""
    with engine.connect() as connection, Session(bind=connection) as session:
        report = [
            ((row.device_id, row.user), state_of(row))
            for row in signoff_rows(session, now=now)
            if scope.allows(row.group)
        ]
        overview = signoff_coverage.counts(session, now, partial(Filters().people_where, scope=scope))
        judgement = signoff_state.judgement_at(connection, now)
        people = signoff_report.people_of(judgement)
        everyone = signoff_views.SignOffFilters()
        lines = signoff_report.coverage(connection, people, everyone.where(people, scope))
        in_order = signoff_report.people_of(judgement, in_order=True)
        listed: Keyed = []
        for number in range(100):  # pages of 7: the paging, not only one page
            shown = signoff_report.page(
                connection, judgement, in_order, everyone.where(in_order, scope), number, 7
            )
            listed += [((row.device_id, row.user), state_of(row)) for row in shown]
            if not shown:
                break
        missing = set(
            connection.execute(
                select(DEVICES.c.id).where(
                    scope.where(DEVICES.c.group_name), device_list.signoff_missing(connection, now)
                )
            ).scalars()
        )
    # The export reads on connections of its own (SQLite's pool has one): after the one above is closed.
    exported = [
        ((row.device_id, row.user), state_of(row))
        for batch in signoff_report.batches(
            engine.connect,
            judgement,
            in_order,
            everyone.where(in_order, scope),
            everyone.devices_where(DEVICES.c, scope),
            laptops_per_batch=4,  # several batches: the keyset, not only one read
        )
        for row in batch
    ]
    if engine.dialect.name == "postgresql":  # the console's CSV there: one streamed query
        everybody = signoff_report.people_of(judgement, in_order=True)
        streamed = [
            ((row.device_id, row.user), state_of(row))
            for batch in signoff_report.batches(
                engine.connect, judgement, everybody, everyone.where(everybody, scope), [], 5, streamed=True
            )
            for row in batch
        ]
        assert streamed == exported
    return Shown(
        report=report,
        overview=overview,
        coverage={(line.school, line.audience): (line.people, line.signed, line.declined) for line in lines},
        listed=listed,
        exported=exported,
        missing=missing,
    )


def assert_all_agree(engine: Engine, mix: Mix, now: datetime, scope: Scope = DISTRICT) -> None:
    want = {
        key: state for key, state in expected_states(mix, now).items() if scope.allows(mix.laptops[key[0]][0])
    }
    shown = shown_states(engine, now, scope)
    assert dict(shown.report) == want
    # The Sign-offs page's pages and its CSV's batches hold the report's rows in the report's order.
    assert shown.listed == shown.report and shown.exported == shown.report
    signed = sum(state == signoff_state.SIGNED for state in want.values())
    assert shown.overview == (len(want), signed)
    lines: dict[tuple[str, str], list[int]] = {}
    for (device_id, _user), state in want.items():
        school, audience, _host = mix.laptops[device_id]
        line = lines.setdefault((school, audience), [0, 0, 0])
        line[0] += 1
        line[1] += state == signoff_state.SIGNED
        line[2] += state == signoff_state.DECLINED
    assert shown.coverage == {key: tuple(value) for key, value in lines.items()}
    assert shown.missing == {
        device for (device, _user), state in want.items() if state != signoff_state.SIGNED
    }


def test_the_views_follow_time_publishing_moves_new_people_and_renewal_changes(database_url: str) -> None:
    engine = make_engine(database_url)
    try:
        migrate(engine)
        now = datetime(2026, 12, 1, 15, 30, tzinfo=timezone.utc)
        mix = made_up(random.Random(11), now)
        laptop = next(iter(mix.laptops))
        # The edges of the rule, on one laptop in Lincoln (30 days) and one in Washington (08-15).
        lincoln = next(d for d, (s, a, _h) in mix.laptops.items() if (s, a) == (LINCOLN, "student"))
        washington = next(d for d, (s, a, _h) in mix.laptops.items() if (s, a) == (WASHINGTON, "student"))
        august = datetime(2026, 8, 15, tzinfo=timezone.utc)
        edges = [
            (lincoln, "edge-30-days", LINCOLN_STUDENT, now - timedelta(days=30)),  # expired at now
            (lincoln, "edge-30-days-less", LINCOLN_STUDENT, now - timedelta(days=30, microseconds=-1)),
            (washington, "edge-august", DISTRICT_STUDENT, august),  # on the date: counts a year
            (washington, "edge-before-august", DISTRICT_STUDENT, august - timedelta(microseconds=1)),
        ]
        for device_id, user, version, at in edges:
            mix.people.append((device_id, user))
            mix.decisions.append(Decision(len(mix.decisions) + 1, device_id, user, version, "agree", at))
        stored(engine, mix, now, requirements=True)
        states = Counter(expected_states(mix, now).values())
        assert all(states[state] >= 2 for state in signoff_state.STATES), states  # a real mix
        assert kept_decisions(engine) == latest_applying(mix)  # the triggers kept it as rows went in
        assert_all_agree(engine, mix, now)
        assert_all_agree(engine, mix, now, Scope(frozenset({LINCOLN})))
        assert_all_agree(engine, mix, now, Scope(frozenset({ADAMS, WASHINGTON})))

        # Time: a day, a month, past the next 15 August: no one signs, states turn.
        for later in (timedelta(days=1), timedelta(days=31), timedelta(days=258)):
            assert_all_agree(engine, mix, now + later)
        assert expected(mix, washington, "edge-august", datetime(2027, 8, 15, tzinfo=timezone.utc)) == (
            signoff_state.PAST_RENEWAL
        )
        assert_all_agree(engine, mix, datetime(2027, 8, 15, tzinfo=timezone.utc))

        with engine.begin() as connection:
            # A new district student policy: whoever agreed to the old one must sign again.
            mix.policies[("", "student")] = OLD
            connection.execute(
                update(POLICIES)
                .where(POLICIES.c.group_name == "", POLICIES.c.audience == "student")
                .values(version=OLD)
            )
            # A laptop moves to Lincoln: Lincoln's policy and 30 days apply to its people.
            school, audience, host = mix.laptops[laptop]
            moved_to = ADAMS if school == LINCOLN else LINCOLN
            mix.laptops[laptop] = (moved_to, audience, host)
            connection.execute(update(DEVICES).where(DEVICES.c.id == laptop).values(group_name=moved_to))
            # Someone logs in for the first time.
            mix.people.append((laptop, "newcomer"))
            connection.execute(
                insert(DEVICE_USERS).values(device_id=laptop, user="newcomer", last_seen_at=now)
            )
            # Adams starts renewing every 10 days.
            mix.renewals[ADAMS] = Renewal(every_days=10)
            ten_days = SHIPPED.replace('renew_on = "08-15"', "").replace(
                "renew_after_days = 0", "renew_after_days = 10"
            )
            _requirements(connection, ADAMS, ten_days, now)
        assert expected(mix, laptop, "newcomer", now) == signoff_state.NEVER_SIGNED
        # Written as plain SQL, past the application: the database kept each person's row anyway.
        assert kept_decisions(engine) == latest_applying(mix)
        assert_all_agree(engine, mix, now)
        assert_all_agree(engine, mix, now + timedelta(days=12), Scope(frozenset({ADAMS})))
    finally:
        engine.dispose()


def _device(engine: Engine, device_id: str) -> KnownDevice:
    with engine.connect() as connection:
        school = connection.execute(
            select(DEVICES.c.group_name).where(DEVICES.c.id == device_id)
        ).scalar_one()
    return KnownDevice(device_id, school, Ed25519PrivateKey.generate().public_key())


def _decided(mix: Mix, device_id: str, user: str, version: str, decision: str, at: datetime) -> SignOffIn:
    """A decision as a laptop sends it; the mix learns it under the id the database will give it."""
    mix.decisions.append(Decision(len(mix.decisions) + 1, device_id, user, version, decision, at))
    return SignOffIn(
        record_id=f"{len(mix.decisions):032x}",
        user=user,
        full_name=f"Person {user}",
        policy_id="aup",
        policy_version=version,
        decision=decision,  # type: ignore[arg-type]
        decided_at=at,
    )


def test_every_way_a_decision_or_a_policy_is_written_keeps_each_persons_row(database_url: str) -> None:
    """The server's own paths (a decision stored, later and earlier ones; a policy published) and
    plain SQL (a decision inserted, a school's policy removed) all leave each person's row holding
    the version that applies and their latest decision on it."""
    engine = make_engine(database_url)
    try:
        migrate(engine)
        now = datetime(2026, 12, 1, 15, 30, tzinfo=timezone.utc)
        mix = made_up(random.Random(5), now)
        stored(engine, mix, now, requirements=True)
        device_id, user = next((d, u) for d, u in mix.people if mix.laptops[d][:2] == (WASHINGTON, "student"))
        laptop = _device(engine, device_id)
        for at, decision in ((now - timedelta(hours=2), "agree"), (now - timedelta(days=3), "decline")):
            with engine.begin() as connection:
                store_signoff(
                    connection, laptop, _decided(mix, device_id, user, DISTRICT_STUDENT, decision, at)
                )
            assert kept_decisions(engine) == latest_applying(mix)
        assert kept_decisions(engine)[(device_id, user)][1] == len(mix.decisions) - 1  # the later one
        assert expected(mix, device_id, user, now) == signoff_state.SIGNED
        assert_all_agree(engine, mix, now)

        with engine.begin() as connection:  # a decision written past the server
            later = _decided(mix, device_id, user, DISTRICT_STUDENT, "decline", now - timedelta(hours=1))
            connection.execute(
                insert(SIGNOFFS).values(
                    record_id=later.record_id,
                    device_id=device_id,
                    user=user,
                    full_name=later.full_name,
                    policy_id="aup",
                    policy_version=DISTRICT_STUDENT,
                    decision="decline",
                    decided_at=later.decided_at,
                    received_at=now,
                )
            )
        assert kept_decisions(engine)[(device_id, user)] == (DISTRICT_STUDENT, len(mix.decisions))
        assert_all_agree(engine, mix, now)

        content = (CONFIG / "policies" / "secondary.md").read_text(encoding="utf-8")
        with engine.begin() as connection:
            document = publish_policy(connection, "secondary.md", content, "", "test", "127.0.0.1")
        mix.policies[("", "student")] = document.version
        assert kept_decisions(engine) == latest_applying(mix)
        assert kept_decisions(engine)[(device_id, user)] == (document.version, None)
        assert_all_agree(engine, mix, now)

        with engine.begin() as connection:  # Lincoln's own student policy removed: the district's applies
            connection.execute(
                delete(POLICIES).where(POLICIES.c.group_name == LINCOLN, POLICIES.c.audience == "student")
            )
        del mix.policies[(LINCOLN, "student")]
        assert kept_decisions(engine) == latest_applying(mix)
        assert_all_agree(engine, mix, now)
    finally:
        engine.dispose()


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_two_decisions_of_a_new_person_stored_at_once_keep_the_later(database_url: str) -> None:
    """Two server processes store the first two decisions of someone never seen before, at the same
    moment, the earlier one first. The later must be kept, although the second transaction's decision
    goes in before the person's row is visible to it. (`store_signoff` writes the person's row first:
    the second waits for the first to commit. The other way round the later decision is lost.)"""
    engine = make_engine(database_url)
    try:
        migrate(engine)
        now = datetime(2026, 12, 1, 15, 30, tzinfo=timezone.utc)
        mix = made_up(random.Random(7), now, laptops=3)
        stored(engine, mix, now, requirements=True)
        device_id = next(iter(mix.laptops))
        user = "first-day"
        mix.people.append((device_id, user))
        version = _applying(mix, device_id)
        laptop = _device(engine, device_id)
        earlier = _decided(mix, device_id, user, version, "decline", now - timedelta(minutes=2))
        later = _decided(mix, device_id, user, version, "agree", now - timedelta(minutes=1))
        first = engine.connect()
        try:
            transaction = first.begin()
            store_signoff(first, laptop, earlier)

            def second() -> None:
                with engine.begin() as connection:
                    store_signoff(connection, laptop, later)

            racing = threading.Thread(target=second)
            racing.start()
            with engine.connect() as watcher:  # until the second waits on the first (30 s at most)
                for _ in range(1500):
                    waiting = watcher.execute(
                        text(
                            "SELECT count(*) FROM pg_stat_activity "
                            "WHERE wait_event_type = 'Lock' AND datname = current_database()"
                        )
                    ).scalar_one()
                    # pg_stat_activity is read once per transaction: each look in a transaction of its own.
                    watcher.rollback()
                    if waiting:
                        break
                    time.sleep(0.02)
            assert waiting, "the second store did not wait for the first"
            transaction.commit()
            racing.join(timeout=30)
        finally:
            first.close()
        assert kept_decisions(engine)[(device_id, user)] == (version, len(mix.decisions))
        assert kept_decisions(engine) == latest_applying(mix)
    finally:
        engine.dispose()


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_the_servers_connections_compile_no_query(database_url: str) -> None:
    """A count of the district's people carries per-person lookups the planner prices high: with
    PostgreSQL's JIT on, compiling it took seconds longer than running it."""
    for for_server in (True, False):
        engine = make_engine(database_url, for_server=for_server)
        try:
            with engine.connect() as connection:
                assert connection.execute(text("SHOW jit")).scalar_one() == "off"
        finally:
            engine.dispose()


# ---- the same mix through the real server: pages, API, CSV, CLI ----


def coverage_lines(page: str) -> dict[tuple[str, str], tuple[int, int, int]]:
    found = {}
    for school, audience, cells in re.findall(
        r'<tr data-school="([^"]*)" data-audience="([^"]*)">(.*?)</tr>', page, re.S
    ):
        values = re.findall(r"<td[^>]*>([^<]*)</td>", cells)[2:]
        found[(html.unescape(school), audience)] = (int(values[0]), int(values[1]), int(values[2]))
    return found


def listed_hostnames(page: str) -> set[str]:
    body = page.split('<table id="devices">', 1)[1].split("<tbody>", 1)[1].split("</tbody>", 1)[0]
    return {html.unescape(name) for name in re.findall(r'<a href="/devices/[0-9a-f]+">([^<]*)</a>', body)}


def test_the_report_the_overview_the_pages_the_api_and_the_filter_agree(server: ServerProcess) -> None:
    now = datetime.now(timezone.utc)
    mix = made_up(random.Random(5), now, laptops=24)
    engine = make_engine(server.database_url)
    try:
        stored(engine, mix, now, requirements=False)  # the district's copy is init's (08-15)
    finally:
        engine.dispose()
    create_user(server, "admin@district.example", PASSWORD, "district_admin")
    create_user(server, "tech@lincoln.example", PASSWORD, "technician", (LINCOLN,))
    want = expected_states(mix, now)
    report = server.cli("signoffs", "--json")
    assert report.returncode == 0, report.stderr
    cli = {
        (row["device_id"], row["user"]): row["must_sign"] or row["status"]
        for row in json.loads(report.stdout)["signoffs"]
    }
    assert cli == want

    for email, school in (("admin@district.example", None), ("tech@lincoln.example", LINCOLN)):
        theirs = {key: state for key, state in want.items() if school in (None, mix.laptops[key[0]][0])}
        token = token_for(server, email)

        def api(path: str, token: str = token, **params: str) -> dict[str, object]:
            answer = requests.get(
                f"{server.url}/api/v1/admin{path}",
                params=params,
                headers={"Authorization": f"Bearer {token}"},
                timeout=30,
            )
            assert answer.status_code == 200, answer.text
            return answer.json()  # type: ignore[no-any-return]

        signed = sum(state == signoff_state.SIGNED for state in theirs.values())
        overview = api("/overview")
        assert (overview["signoff_people"], overview["signoff_signed"]) == (len(theirs), signed)
        statuses = Counter(_status(state) for state in theirs.values())
        for status in ("signed", "declined", "must sign again", "not signed"):
            answer = api("/signoffs", status=status)
            assert answer["total"] == statuses[status], status
            rows = answer["rows"]
            assert isinstance(rows, list)
            assert {(r["device_id"], r["user"]): r["must_sign"] or r["status"] for r in rows} == {
                key: state for key, state in theirs.items() if _status(state) == status
            }

        person = ConsoleUser(server)
        assert person.sign_in(email, PASSWORD).status_code == 303
        lines: dict[tuple[str, str], list[int]] = {}
        for (device_id, _user), state in theirs.items():
            laptop_school, audience, _host = mix.laptops[device_id]
            line = lines.setdefault((laptop_school, audience), [0, 0, 0])
            line[0] += 1
            line[1] += state == signoff_state.SIGNED
            line[2] += state == signoff_state.DECLINED
        assert coverage_lines(person.get("/signoffs").text) == {key: tuple(v) for key, v in lines.items()}
        exported = list(csv.DictReader(io.StringIO(person.get("/signoffs.csv").text)))
        assert {(r["hostname"], r["user"]): r["state"] for r in exported} == {
            (mix.laptops[device][2], user): _page_state(state) for (device, user), state in theirs.items()
        }
        missing = {
            mix.laptops[device][2]
            for (device, _user), state in theirs.items()
            if state != signoff_state.SIGNED
        }
        assert listed_hostnames(person.get("/devices?signoff=missing").text) == missing
        count = person.get("/devices?signoff=missing").text.split('id="count" role="status">', 1)[1]
        assert int(count.split(" ", 1)[0]) == len(missing)
        if school is not None:
            assert person.get(f"/signoffs?school={quote(WASHINGTON)}").status_code == 403


def _status(state: str) -> str:
    return {
        signoff_state.SIGNED: "signed",
        signoff_state.DECLINED: "declined",
        signoff_state.PAST_RENEWAL: "must sign again",
    }.get(state, "not signed")


def _page_state(state: str) -> str:
    """The Sign-offs page's and its CSV's three states."""
    return {signoff_state.SIGNED: "signed", signoff_state.DECLINED: "declined"}.get(state, "must sign")
