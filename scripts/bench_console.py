#!/usr/bin/env python3
"""The console at district scale: 100,000 devices and 10 million history rows on PostgreSQL.

Starts a throwaway PostgreSQL cluster with production durability (fsync on, Debian's defaults
otherwise), sets it up with a real `homeroom-server init` and `policy publish`, then bulk-loads
(COPY through psycopg) devices, their current status, the report history, the people seen on each
laptop and their sign-offs. It then starts a real `homeroom-server serve` and times, over loopback:
the overview, a filtered page of the device list, searches (hostname, a middle part of a serial, a
user), one device, and full CSV exports of every device from the API and from the console (streamed;
the server's peak resident memory is sampled while each runs), each beside a bare
`SELECT count(*) FROM devices` timed in the same run (the database's own floor) as a ratio, with
the machine's load average. The audit log gets `--audit` rows (1 million by default: a district's
years of sign-ins, commands and device events), so the device page reads its entries from a log
of that size.

    /work/main/.venv/bin/python scripts/bench_console.py                   # 100,000 / 10,000,000
    /work/main/.venv/bin/python scripts/bench_console.py --devices 2000 --history 50000 --audit 20000
    ... --profile /tmp/spyvenv/bin/py-spy    # py-spy's stacks of the server during each CSV export

Run as root (the cluster belongs to the postgres user). Targets: overview and list pages <= 300 ms,
device page <= 100 ms, CSV export of 100,000 devices <= 10 s with flat memory.

The history rows (`reports`) carry a compact body (each requirement's id and status, about 400
bytes): a real report body is a few kilobytes, which at 10 million rows would be tens of gigabytes
of disk for rows no measured page reads. `device_status.results` is full size (summaries, evidence,
remediation: about 2.5 KB a device), as the pages read it.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from functools import partial
from pathlib import Path
from typing import Any

import psutil
import psycopg
import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from contract.requirements import CHECK_IDS  # noqa: E402
from server.fleet.ingest import overall_status  # noqa: E402
from tests.helpers.console import csrf_of, password_of  # noqa: E402
from tests.helpers.servers import PostgresCluster, ServerProcess, start_postgres  # noqa: E402

SCHOOLS = 60
SYSTEMS = (("windows", "10.0.22631", 0.55), ("macos", "14.6.1", 0.15), ("linux", "Debian GNU/Linux 12", 0.30))
HISTORY_DAYS = 90
ADMIN = "admin@localhost"
TARGETS_MS = {"overview": 300.0, "list": 300.0, "device": 100.0, "csv": 10_000.0}
NULL = "\\N"
DEVICE_COLUMNS = (
    "id",
    "group_name",
    "serial",
    "hardware_uuid",
    "hostname",
    "manufacturer",
    "model",
    "os",
    "os_version",
    "machine_id",
    "macs",
    "identity_unreadable",
    "public_key",
    "agent_version",
    "enrolled_at",
    "last_seen_at",
    "commands_pending",
    "audience",
    "claims_pending",
)
FLOOR = "SELECT count(*) FROM devices"


def school(number: int) -> str:
    return f"School {number:02d}"


# ---- what the rows hold ----

SUMMARIES = {
    "pass": "{title} is on and meets the district's requirement",
    "fail": "{title} does not meet the district's requirement on this laptop",
    "unknown": "{title} could not be confirmed: no user has signed in yet",
    "error": "{title} could not be read: the probe timed out after 20 s",
}
EVIDENCE: dict[str, dict[str, Any]] = {
    "disk_encryption": {"volume": "C:", "protection_status": 1, "method": "XtsAes128", "percent": 100},
    "firewall": {"profiles": {"domain": True, "private": True, "public": True}, "source": "netsh"},
    "power_on_password": {"preboot": "tpm+pin", "autologin": False, "firmware": "not exposed"},
    "antivirus": {"product": "Microsoft Defender", "running": True, "signatures_age_hours": 7},
    "screen_lock": {"idle_seconds": 600, "password": True, "source": "policy"},
    "software": {"unapproved": ["Example Game 2.1"], "blocked": [], "inventory_items": 212},
}


@dataclass(frozen=True)
class Variant:
    """One combination of statuses, with its rows' JSON prepared once (COPY text: no backslashes)."""

    overall: str
    checks: str  # device_status.checks
    results: str  # device_status.results, full
    compact: str  # the history body's results


def variants(rng: random.Random, count: int = 64) -> list[Variant]:
    made = []
    for _ in range(count):
        statuses = {
            check: rng.choices(("pass", "fail", "unknown", "error"), (0.92, 0.05, 0.025, 0.005))[0]
            for check in CHECK_IDS
        }
        results = [
            {
                "id": check,
                "title": check.replace("_", " ").capitalize(),
                "status": status,
                "summary": SUMMARIES[status].format(title=check.replace("_", " ").capitalize()) * 2,
                "evidence": EVIDENCE[check] | {"probe": f"{check}-probe", "output": "x" * 160},
                "remediation": None
                if status == "pass"
                else "Open Settings, then Privacy & Security, and turn it on. Ask your school's IT "
                "team if the switch is greyed out; they can do it for you in a few minutes.",
                "duration_ms": rng.randint(3, 900),
            }
            for check, status in statuses.items()
        ]
        compact = [{"id": check, "status": status} for check, status in statuses.items()]
        variant = Variant(
            overall=overall_status(list(statuses.values())),
            checks=json.dumps(statuses, separators=(",", ":")),
            results=json.dumps(results, separators=(",", ":")),
            compact=json.dumps(compact, separators=(",", ":")),
        )
        assert "\\" not in variant.results + variant.compact and "\t" not in variant.results
        made.append(variant)
    return made


@dataclass(frozen=True)
class Seeded:
    device_ids: list[str]
    reported: int  # devices with a status (the rest never reported)
    history: int
    people: int
    signoffs: int
    seconds: float


def _copy(cursor: psycopg.Cursor[Any], table: str, columns: Iterable[str], lines: Iterator[str]) -> int:
    """COPY … FROM STDIN in text format, lines written a few thousand at a time."""
    quoted = ", ".join(f'"{column}"' for column in columns)
    rows = 0
    with cursor.copy(f"COPY {table} ({quoted}) FROM STDIN") as copy:
        batch: list[str] = []
        for line in lines:
            batch.append(line)
            if len(batch) >= 5000:
                copy.write("".join(batch))
                rows += len(batch)
                batch.clear()
        if batch:
            copy.write("".join(batch))
            rows += len(batch)
    return rows


def _iso(moment: datetime) -> str:
    return moment.isoformat()


def seed(url: str, devices: int, history: int, now: datetime) -> Seeded:
    started = time.monotonic()
    rng = random.Random(20261201)  # noqa: S311 - made-up rows, the same every run
    kinds = variants(rng)
    ids = sorted(f"{rng.getrandbits(128):032x}" for _ in range(devices))
    systems = [name for name, _version, _share in SYSTEMS]
    weights = [share for _name, _version, share in SYSTEMS]
    version_of = {name: version for name, version, _share in SYSTEMS}
    device_os = rng.choices(systems, weights, k=devices)
    staff = [rng.random() < 0.1 for _ in range(devices)]
    # Seen within the day mostly; some silent for a week or a month; 1 % never reported.
    seen: list[datetime | None] = []
    for _ in range(devices):
        roll = rng.random()
        if roll < 0.01:
            seen.append(None)
        elif roll < 0.04:
            seen.append(now - timedelta(days=rng.uniform(8, 60)))
        else:
            seen.append(now - timedelta(seconds=rng.uniform(0, 86_400)))
    status_kind = [rng.randrange(len(kinds)) for _ in range(devices)]
    reporting = [index for index in range(devices) if seen[index] is not None]
    enrolled = _iso(now - timedelta(days=200))

    with psycopg.connect(url, autocommit=False) as connection, connection.cursor() as cursor:
        # The rows are consistent by construction: no per-row foreign-key trigger while loading.
        cursor.execute("SET session_replication_role = replica")
        cursor.execute("SET maintenance_work_mem = '1GB'")
        cursor.execute("SELECT audience, policy_id, version FROM policies WHERE group_name = ''")
        policies = {audience: (policy_id, version) for audience, policy_id, version in cursor.fetchall()}

        def device_lines() -> Iterator[str]:
            for index, device_id in enumerate(ids):
                moment = seen[index]
                group = school(index % SCHOOLS)
                yield (
                    "\t".join(
                        (
                            device_id,
                            group,
                            f"SN{index:08d}",
                            f"{rng.getrandbits(128):032x}",
                            f"lt-{index % SCHOOLS:02d}-{index:06d}",
                            "Dell Inc.",
                            "Latitude 3440",
                            device_os[index],
                            version_of[device_os[index]],
                            f"{rng.getrandbits(128):032x}",
                            '["3c:52:82:11:22:33"]',
                            "{}",
                            "k" * 43,
                            "0.1.0",
                            enrolled,
                            _iso(moment) if moment else NULL,
                            "f",
                            "staff" if staff[index] else "student",
                            "f",
                        )
                    )
                    + "\n"
                )

        _copy(
            cursor,
            "devices",
            DEVICE_COLUMNS,
            device_lines(),
        )

        def status_lines() -> Iterator[str]:
            for index in reporting:
                kind = kinds[status_kind[index]]
                moment = seen[index]
                assert moment is not None
                yield (
                    f"{ids[index]}\tlatest-{ids[index]}\t{_iso(moment)}\t{_iso(moment)}\t"
                    f"{kind.overall}\t{kind.results}\t{kind.checks}\n"
                )

        _copy(
            cursor,
            "device_status",
            ("device_id", "report_id", "reported_at", "received_at", "overall", "results", "checks"),
            status_lines(),
        )

        # History: the reporting devices in turn, oldest first, over the last HISTORY_DAYS days.
        rounds = -(-history // max(len(reporting), 1))
        step = timedelta(days=HISTORY_DAYS) / max(rounds, 1)
        first = now - timedelta(days=HISTORY_DAYS)

        def history_lines() -> Iterator[str]:
            written = 0
            for turn in range(rounds):
                stamps = [_iso(first + step * turn + timedelta(seconds=s)) for s in range(0, 3600, 7)]
                for position, index in enumerate(reporting):
                    if written == history:
                        return
                    kind = (
                        kinds[(turn * 7919 + index) % len(kinds)]
                        if turn < rounds - 1
                        else kinds[status_kind[index]]
                    )
                    stamp = stamps[position % len(stamps)]
                    report_id = f"{turn:06x}{index:08x}{ids[index][:18]}"
                    yield (
                        f"{report_id}\t{ids[index]}\t{stamp}\t{stamp}\t{kind.overall}\t"
                        f'{{"report_id":"{report_id}","agent_version":"0.1.0","results":{kind.compact}}}\n'
                    )
                    written += 1

        # Indexes are built once after the load (as CREATE INDEX sorts), exactly as the migrations
        # define them, instead of being updated ten million times in random order.
        cursor.execute(
            "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE conrelid = 'reports'::regclass AND contype = 'u'"
        )
        constraints = cursor.fetchall()
        cursor.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'reports' AND indexname NOT IN "
            "(SELECT conname FROM pg_constraint WHERE conrelid = 'reports'::regclass)"
        )
        indexes = cursor.fetchall()
        for name, _definition in constraints:
            cursor.execute(f'ALTER TABLE reports DROP CONSTRAINT "{name}"')
        for name, _definition in indexes:
            cursor.execute(f'DROP INDEX "{name}"')
        written = _copy(
            cursor,
            "reports",
            ("report_id", "device_id", "reported_at", "received_at", "overall", "body"),
            history_lines(),
        )
        for name, definition in constraints:
            cursor.execute(f'ALTER TABLE reports ADD CONSTRAINT "{name}" {definition}')
        for _name, definition in indexes:
            cursor.execute(definition)

        # People: one per student laptop, 30 % shared by two; 85 % agreed to the version in force,
        # 3 % declined, 4 % agreed to an earlier version, the rest never signed.
        people: list[tuple[int, str]] = []
        for index in reporting:
            people.append((index, f"u{index:06d}"))
            if rng.random() < 0.3:
                people.append((index, f"v{index:06d}"))
        _copy(
            cursor,
            "device_users",
            ("device_id", "user", "last_seen_at"),
            (f"{ids[index]}\t{user}\t{_iso(now - timedelta(hours=2))}\n" for index, user in people),
        )

        def signoff_lines() -> Iterator[str]:
            for number, (index, user) in enumerate(people):
                roll = rng.random()
                if roll >= 0.92:
                    continue
                policy_id, version = policies["staff" if staff[index] else "student"]
                if roll >= 0.88:
                    version = f"{number:064x}"  # an earlier version
                decision = "decline" if 0.85 <= roll < 0.88 else "agree"
                decided = _iso(now - timedelta(days=rng.uniform(0, 100)))
                yield (
                    f"{number:032x}\t{ids[index]}\t{user}\tStudent {number}\t{policy_id}\t{version}\t"
                    f"{decision}\t{decided}\t{decided}\n"
                )

        signed = _copy(
            cursor,
            "signoffs",
            (
                "record_id",
                "device_id",
                "user",
                "full_name",
                "policy_id",
                "policy_version",
                "decision",
                "decided_at",
                "received_at",
            ),
            signoff_lines(),
        )
        connection.commit()
    with psycopg.connect(url, autocommit=True) as connection:
        # What autovacuum does for a database in service: statistics and the visibility map.
        connection.execute("VACUUM (ANALYZE)")
    return Seeded(ids, len(reporting), written, len(people), signed, time.monotonic() - started)


AUDIT_ACTIONS_WITHOUT_DEVICE = ("console.signed_in", "console.signed_out", "devices.exported", "user.created")


def seed_audit(url: str, device_ids: list[str], rows: int, watched: str, now: datetime) -> float:
    """`rows` audit entries over the last two years, oldest first: 40 % console actions naming no
    device, the rest by or about a random laptop (a command, a clock ahead, an identity collision
    naming two). `watched` (the device page measured) gets a dozen, all in the first tenth of the
    log: a page that scanned the log for them would read nearly all of it. The links `audit_devices`
    holds (where it exists: migration 0013's trigger, which COPY here does not fire) are loaded beside."""
    started = time.monotonic()
    rng = random.Random(20261202)  # noqa: S311 - made-up rows, the same every run
    first = now - timedelta(days=730)
    step = timedelta(days=730) / max(rows, 1)
    watched_at = set(rng.sample(range(max(rows // 10, 12)), min(12, rows)))
    links: set[tuple[str, int]] = set()
    with psycopg.connect(url, autocommit=False) as connection, connection.cursor() as cursor:
        cursor.execute("SET session_replication_role = replica")
        cursor.execute("SELECT coalesce(max(id), 0), to_regclass('audit_devices') IS NOT NULL FROM audit_log")
        found = cursor.fetchone()
        assert found is not None
        start_id, linked = int(found[0]) + 1, bool(found[1])

        def lines() -> Iterator[str]:
            for number in range(rows):
                entry_id = start_id + number
                at = _iso(first + step * number)
                device = watched if number in watched_at else device_ids[rng.randrange(len(device_ids))]
                roll = rng.random()
                if roll < 0.4 and number not in watched_at:
                    action = AUDIT_ACTIONS_WITHOUT_DEVICE[number % len(AUDIT_ACTIONS_WITHOUT_DEVICE)]
                    actor, address, detail = ADMIN, "10.20.30.40", '{"search":"","school":"School 07"}'
                elif roll < 0.6:
                    actor, action, address = ADMIN, "device.command", "10.20.30.40"
                    detail = f'{{"device":"{device}","command":"check_now"}}'
                    links.add((device, entry_id))
                elif roll < 0.97:
                    actor, action, address = f"device:{device}", "device.report_dated_ahead", NULL
                    detail = f'{{"claimed":"{at}","received":"{at}"}}'
                    links.add((device, entry_id))
                else:
                    other = device_ids[rng.randrange(len(device_ids))]
                    actor, action, address = f"device:{device}", "device.identity_collision", NULL
                    detail = f'{{"device":"{device}","other":"{other}","serial":"SN1"}}'
                    links.update(((device, entry_id), (other, entry_id)))
                yield f"{entry_id}\t{at}\t{actor}\t{action}\t{detail}\t{address}\n"

        _copy(cursor, "audit_log", ("id", "at", "actor", "action", "detail", "address"), lines())
        cursor.execute("SELECT setval(pg_get_serial_sequence('audit_log', 'id'), max(id)) FROM audit_log")
        if linked:
            _copy(
                cursor,
                "audit_devices",
                ("device_id", "audit_id"),
                (f"{device}\t{entry_id}\n" for device, entry_id in sorted(links)),
            )
        connection.commit()
    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute("VACUUM (ANALYZE) audit_log")
        if linked:
            connection.execute("VACUUM (ANALYZE) audit_devices")
    return time.monotonic() - started


def load_average() -> str:
    return Path("/proc/loadavg").read_text().strip()


# ---- measuring ----


def timed(action: Callable[[], Any], runs: int) -> list[float]:
    action()  # once to warm caches, as a page an administrator opens twice
    spent = []
    for _ in range(runs):
        began = time.perf_counter()
        action()
        spent.append((time.perf_counter() - began) * 1000)
    return spent


def count_floor(url: str, runs: int) -> float:
    with psycopg.connect(url) as connection:
        return statistics.median(timed(lambda: connection.execute(FLOOR).fetchone(), runs))


def resident_bytes(process: psutil.Process) -> int:
    total = 0
    try:
        members = [process, *process.children(recursive=True)]
    except psutil.NoSuchProcess:  # a child ended while it was being listed
        members = [process]
    for member in members:
        try:
            total += member.memory_info().rss
        except psutil.NoSuchProcess:
            continue
    return total


@dataclass
class Export:
    seconds: float
    rows: int
    size: int
    rss_before: int
    rss_peak: int
    rss_after: int


def export_lines(name: str, exported: Export, floor: float) -> list[str]:
    """An export's time beside the floor and the server's memory while it streamed."""
    verdict = "meets" if exported.seconds * 1000 <= TARGETS_MS["csv"] else "MISSES"
    return [
        f"{name:<52} {exported.seconds * 1000:9.1f} ms   "
        f"x{exported.seconds * 1000 / floor:7.1f} the floor   ({exported.rows:,} rows, "
        f"{exported.size / 1e6:.1f} MB; target 10 s: {verdict})",
        f"{'  server memory (RSS) during the export':<52} before {exported.rss_before / 2**20:.0f} MiB, "
        f"peak {exported.rss_peak / 2**20:.0f} MiB, after {exported.rss_after / 2**20:.0f} MiB "
        f"(+{(exported.rss_peak - exported.rss_before) / 2**20:.0f} MiB "
        f"for {exported.size / 2**20:.0f} MiB sent)",
    ]


def export_csv(url: str, session: requests.Session, server: psutil.Process) -> Export:
    samples: list[int] = []
    running = threading.Event()
    running.set()

    def sample() -> None:
        while running.is_set():
            samples.append(resident_bytes(server))
            time.sleep(0.02)

    before = resident_bytes(server)
    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    began = time.perf_counter()
    size = rows = 0
    with session.get(url, stream=True, timeout=300) as answer:
        answer.raise_for_status()
        for piece in answer.iter_content(chunk_size=65536):
            size += len(piece)
            rows += piece.count(b"\n")
    seconds = time.perf_counter() - began
    running.clear()
    sampler.join()
    return Export(seconds, rows - 1, size, before, max(samples or [before]), resident_bytes(server))


def signed_in(server: ServerProcess, password: str) -> requests.Session:
    """A browser's session through the real sign-in form (no page read afterwards: the overview
    is one of the pages measured)."""
    browser = requests.Session()
    form = browser.get(server.url + "/sign-in", timeout=60).text
    answer = browser.post(
        server.url + "/sign-in",
        data={"email": ADMIN, "password": password, "csrf_token": csrf_of(form), "next": "/devices"},
        allow_redirects=False,
        timeout=60,
    )
    assert answer.status_code == 303, answer.text
    return browser


def measure(
    server: ServerProcess, url: str, password: str, seeded: Seeded, runs: int, profile: str
) -> list[str]:
    token_out = server.cli("users", "token", "create", ADMIN, "--name", "bench")
    assert token_out.returncode == 0, token_out.stderr
    token = next(line for line in token_out.stdout.splitlines() if line.startswith("hrk_"))
    api = requests.Session()
    api.headers["Authorization"] = f"Bearer {token}"
    console = signed_in(server, password)
    counted = api.get(server.url + "/api/v1/admin/overview", timeout=120).json()
    # The server sees what was loaded: every device, the ones that never reported, the people.
    assert (counted["total"], counted["never_reported"], counted["signoff_people"]) == (
        len(seeded.device_ids),
        len(seeded.device_ids) - seeded.reported,
        seeded.people,
    ), counted
    device = seeded.device_ids[len(seeded.device_ids) // 3]
    filters = {"school": school(7), "os": "windows", "page": "2"}

    def get(session: requests.Session, path: str, **params: str) -> Callable[[], None]:
        def run() -> None:
            answer = session.get(server.url + path, params=params, timeout=120, allow_redirects=False)
            if answer.status_code != 200:
                raise AssertionError(f"{path}: {answer.status_code} {answer.text[:300]}")

        return run

    cases = [
        ("overview", "overview (API: the counts)", get(api, "/api/v1/admin/overview")),
        ("overview", "overview page (console, with its 30-day chart)", get(console, "/")),
        ("overview", "overview page (console, with its 90-day chart)", get(console, "/", trend="90")),
        ("list", "device list, school + OS, page 3 (API)", get(api, "/api/v1/admin/devices", **filters)),
        ("list", "device list, school + OS, page 3 (console page)", get(console, "/devices", **filters)),
        ("list", "device list, search 'lt-07-0' (API)", get(api, "/api/v1/admin/devices", q="lt-07-0")),
        (
            "list",
            "device list, search '00471' in serials (API)",
            get(api, "/api/v1/admin/devices", q="00471"),
        ),
        ("list", "device list, search user 'u04471' (API)", get(api, "/api/v1/admin/devices", q="u04471")),
        ("list", "device list, search '42', two letters (API)", get(api, "/api/v1/admin/devices", q="42")),
        ("list", "device list, search 'lt-07-0' (console page)", get(console, "/devices", q="lt-07-0")),
        ("device", "one device (API)", get(api, f"/api/v1/admin/devices/{device}")),
        ("device", "one device (console page)", get(console, f"/devices/{device}")),
    ]
    floor = count_floor(url, runs)
    lines = [f"load average: {load_average()}", f"{FLOOR:<52} {floor:9.1f} ms   (the floor)"]
    for kind, name, action in cases:
        try:
            spent = timed(action, runs)
        except AssertionError as exc:
            lines.append(f"{name:<52} failed: {exc}")
            continue
        median = statistics.median(spent)
        verdict = "meets" if median <= TARGETS_MS[kind] else "MISSES"
        lines.append(
            f"{name:<52} {median:9.1f} ms   x{median / floor:7.1f} the floor   "
            f"(min {min(spent):.1f}, max {max(spent):.1f}; target {TARGETS_MS[kind]:.0f} ms: {verdict})"
        )
    assert server.process is not None
    process = psutil.Process(server.process.pid)
    exports = [
        ("CSV export, every device (API, streamed)", "/api/v1/admin/devices.csv", api),
        ("CSV export, every device (console, streamed)", "/devices.csv", console),
    ]
    for name, path, session in exports:
        lines.append(f"load average: {load_average()}")
        spy = _profiler(profile, process.pid, path) if profile else None
        try:
            exported = export_csv(server.url + path, session, process)
        except requests.RequestException as exc:
            lines.append(f"{name:<52} failed: {exc}")
            continue
        finally:
            if spy is not None:
                spy.send_signal(signal.SIGINT)
                spy.wait(timeout=120)
        floor_after = count_floor(url, runs)
        lines += export_lines(name, exported, floor_after)
    lines.append(f"load average: {load_average()}")
    return lines


# ---- sign-offs (the Sign-offs page, its CSV, the admin API, the device list's filter) ----


def measure_signoffs(server: ServerProcess, url: str, password: str, runs: int) -> list[str]:
    """The sign-off views at district scale, each beside the floor, and the sign-off CSV streamed
    with the server's memory sampled. First it checks that they agree: the API's report, the
    overview's coverage and the device list's "sign-off missing" filter count the same people."""
    token_out = server.cli("users", "token", "create", ADMIN, "--name", "bench-signoffs")
    assert token_out.returncode == 0, token_out.stderr
    token = next(line for line in token_out.stdout.splitlines() if line.startswith("hrk_"))
    api = requests.Session()
    api.headers["Authorization"] = f"Bearer {token}"
    console = signed_in(server, password)

    def answer(session: requests.Session, path: str, **params: str) -> requests.Response:
        found = session.get(server.url + path, params=params, timeout=120, allow_redirects=False)
        if found.status_code != 200:
            raise AssertionError(f"{path}: {found.status_code} {found.text[:300]}")
        return found

    overview = answer(api, "/api/v1/admin/overview").json()
    reported = answer(api, "/api/v1/admin/signoffs").json()["total"]
    signed = answer(api, "/api/v1/admin/signoffs", status="signed").json()["total"]
    assert (reported, signed) == (overview["signoff_people"], overview["signoff_signed"]), (
        reported,
        signed,
        overview,
    )
    lines = [
        f"{'sign-offs: people / signed (API report = overview)':<52} {reported:,} / {signed:,} "
        f"({signed / max(reported, 1):.1%})"
    ]
    cases: list[tuple[str, requests.Session, str, dict[str, str]]] = [
        ("Sign-offs page, whole district, page 1", console, "/signoffs", {}),
        ("Sign-offs page, must sign, page 3", console, "/signoffs", {"state": "must sign", "page": "2"}),
        ("Sign-offs page, one school, search 'u0'", console, "/signoffs", {"school": school(7), "q": "u0"}),
        ("device list, sign-off missing, page 3", console, "/devices", {"signoff": "missing", "page": "2"}),
        (
            "device list, one school, sign-off missing",
            console,
            "/devices",
            {"school": school(7), "signoff": "missing"},
        ),
        ("sign-offs API, page 3", api, "/api/v1/admin/signoffs", {"page": "2"}),
        ("sign-offs API, not signed, page 1", api, "/api/v1/admin/signoffs", {"status": "not signed"}),
    ]
    floor = count_floor(url, runs)
    lines.append(f"{FLOOR:<52} {floor:9.1f} ms   (the floor)")
    target = TARGETS_MS["list"]
    for name, session, path, params in cases:
        spent = timed(partial(answer, session, path, **params), runs)
        median = statistics.median(spent)
        verdict = "meets" if median <= target else "MISSES"
        lines.append(
            f"{name:<52} {median:9.1f} ms   x{median / floor:7.1f} the floor   "
            f"(min {min(spent):.1f}, max {max(spent):.1f}; target {target:.0f} ms: {verdict})"
        )
    assert server.process is not None
    exported = export_csv(server.url + "/signoffs.csv", console, psutil.Process(server.process.pid))
    assert exported.rows == reported, (exported.rows, reported)
    lines += export_lines("sign-offs CSV, every person (console, streamed)", exported, floor)
    return lines


def fill_roll_up(server: ServerProcess) -> None:
    """The rows were loaded past the server (COPY), so the overview's roll-up is filled as migration
    0011 fills it on an upgrade: `homeroom-server counts --fix` recounts what is stored. Printed
    with the load average, since the machine may be shared."""
    began = time.monotonic()
    filled = server.cli("counts", "--fix")
    if filled.returncode != 0:  # a tree from before the roll-up: the overview counts live
        print(f"No roll-up filled ({filled.stderr.strip()[:120]})", flush=True)
    else:
        print(f"Roll-up filled from the stored rows in {time.monotonic() - began:.1f} s", flush=True)
    print(f"Load average: {Path('/proc/loadavg').read_text().strip()}", flush=True)


def fill_people(url: str) -> None:
    """The seed loads with triggers off, so each person's row is filled as migration 0015 fills it on
    an upgrade (its own statements), and then compacted: filling rewrote every row at once, leaving
    half the table dead space that a district's table, grown a person at a time with autovacuum
    handing space back, does not carry."""
    path = ROOT / "server" / "db" / "migrations" / "versions" / "0015_signoff_kept.py"
    spec = importlib.util.spec_from_file_location("signoff_kept", path)
    assert spec is not None and spec.loader is not None
    migration = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(migration)
    began = time.monotonic()
    with psycopg.connect(url, autocommit=True) as connection:
        for statement in migration.FILL:
            connection.execute(statement)
        connection.execute("VACUUM (FULL, ANALYZE) device_users")
        size = connection.execute("SELECT pg_size_pretty(pg_relation_size('device_users'))").fetchone()
    print(
        f"People's sign-off rows filled in {time.monotonic() - began:.1f} s ({size[0] if size else '?'})",
        flush=True,
    )


def _profiler(py_spy: str, pid: int, path: str) -> subprocess.Popen[bytes]:
    """py-spy sampling the server until interrupted, as collapsed stacks (to be read as text)."""
    out = Path(tempfile.gettempdir()) / f"bench-console-{path.strip('/').replace('/', '-')}.txt"
    spy = subprocess.Popen(
        [py_spy, "record", "--pid", str(pid), "--format", "raw", "--rate", "200", "--output", str(out)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(1.0)  # attached before the export starts
    print(f"py-spy writes {out}", flush=True)
    return spy


def run(devices: int, history: int, audit: int, runs: int, profile: str) -> int:
    base = Path(tempfile.mkdtemp(prefix="homeroom-bench-console-"))
    try:
        clusters = start_postgres(fsync=True)
        try:
            return _run_on(next(clusters), base, (devices, history, audit), runs, profile)
        finally:
            for _ in clusters:  # the generator goes on past its yield: it stops the cluster
                pass
    finally:
        shutil.rmtree(base, ignore_errors=True)


def _run_on(
    cluster: PostgresCluster, base: Path, sizes: tuple[int, int, int], runs: int, profile: str
) -> int:
    devices, history, audit = sizes
    url = cluster.new_database()
    server = ServerProcess(url, base)
    password = password_of(server.init())
    for name in ("secondary.md", "staff.md"):
        published = server.cli("policy", "publish", str(ROOT / "config" / "policies" / name))
        assert published.returncode == 0, published.stderr
    now = datetime.now(timezone.utc)
    print(f"Seeding {devices:,} devices and {history:,} history rows (COPY, fsync on)…", flush=True)
    seeded = seed(url, devices, history, now)
    print(
        f"Seeded in {seeded.seconds:.0f} s: {len(seeded.device_ids):,} devices "
        f"({seeded.reported:,} reporting), "
        f"{seeded.history:,} reports, {seeded.people:,} people, {seeded.signoffs:,} sign-offs",
        flush=True,
    )
    fill_roll_up(server)
    fill_people(url)
    watched = seeded.device_ids[len(seeded.device_ids) // 3]  # the device page measured
    seconds = seed_audit(url, seeded.device_ids, audit, watched, now)
    print(f"Seeded {audit:,} audit entries in {seconds:.0f} s", flush=True)
    with psycopg.connect(url) as connection:
        size = connection.execute("SELECT pg_size_pretty(pg_database_size(current_database()))").fetchone()
    print(f"Database size: {size[0] if size else '?'}", flush=True)
    server.start()
    try:
        print(f"\nMedian of {runs} requests after one warm-up, over loopback (PostgreSQL 15, fsync on):")
        for line in measure(server, url, password, seeded, runs, profile):
            print(line, flush=True)
        for line in measure_signoffs(server, url, password, runs):
            print(line, flush=True)
    finally:
        server.stop()
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--devices", type=int, default=100_000)
    parser.add_argument("--history", type=int, default=10_000_000, help="rows of report history")
    parser.add_argument("--audit", type=int, default=1_000_000, help="rows of audit log")
    parser.add_argument("--runs", type=int, default=7, help="timed requests per page")
    parser.add_argument("--profile", default="", metavar="PY_SPY", help="record each CSV export with py-spy")
    args = parser.parse_args()
    if args.devices < SCHOOLS:
        parser.error(f"--devices must be at least {SCHOOLS} (one per school)")
    return run(args.devices, args.history, args.audit, args.runs, args.profile)


if __name__ == "__main__":
    sys.exit(main())
