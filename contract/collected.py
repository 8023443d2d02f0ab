"""Every field the agent sends to the server, per record kind, with when and why: the one description.

What people are told comes from here: the tray's "What Homeroom collects" window is built from
TOPICS, and each shipped policy's list of what is sent is `policy_section(level)` (a test proves
the policy files hold exactly that list). What is really sent is held to it: an end-to-end test
records every body a real agent sends to a real server and fails on any field not described here.

A field is named by its path in the JSON body: `identity.serial`, `results[].status` (`[]` is
each item of a list). Each has `when` (which sends carry it), `why` (what IT or the server does
with it) and `topic` (the plain-language line that tells people about it).

Two fields are open-ended and described by their documented contents instead of key by key:

- `results[].evidence`: what a check read from the OS to reach its verdict. Its keys differ per
  check, per OS and per state (a Mac half-way through FileVault has a percentage, a finished one
  has none), and the checks grow them as real-world outputs teach us; CHECK_EVIDENCE says per
  check what it holds, including the two things in it that are about people or their programs:
  the names of security programs found running, and the account set to log in automatically.
- `dropped`: counts per record kind of what a full outbox had to drop (`{"heartbeat": 3}`).

Lost and stolen laptops add two kinds: `lost_report` (a person's report from the tray) and
`lost_evidence`, which is sent **only in lost mode** (while the server's signed heartbeat answer
says the laptop is lost, or in a drill): local addresses, gateway, nearby Wi-Fi, the signed-in
account, uptime. No other kind carries network or Wi-Fi data, in lost mode or not (a test captures
a normal report and heartbeat on the wire to hold it so). Future record kinds get their own entry
in KINDS, with their fields, before the agent sends them; the capture test then holds them to it.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

Level = Literal["adult", "secondary", "elementary"]
LEVELS: tuple[Level, ...] = ("adult", "secondary", "elementary")
Kind = Literal["enrol", "report", "heartbeat", "signoff", "approval_request", "lost_report", "lost_evidence"]


@dataclass(frozen=True)
class Topic:
    """One line people read about a group of fields, in the words of each reading level."""

    id: str
    adult: str
    secondary: str
    elementary: str

    def words(self, level: Level) -> str:
        return str(getattr(self, level))


# The order is the order people read them in.
TOPICS: tuple[Topic, ...] = (
    Topic(
        "checks",
        adult=(
            "the results of six security checks: disk encryption, firewall, power-on password, "
            "antivirus, screen lock, and the list of installed software, with what each check saw "
            "(for example the names of the security programs running and which account, if any, "
            "logs in automatically);"
        ),
        secondary=(
            "the results of six safety checks: disk encryption, firewall, power-on password, antivirus, "
            "screen lock, and the list of installed software, with what each check saw (like the names "
            "of the security apps that are running, and which account logs in by itself, if one does);"
        ),
        elementary=(
            "if six safe settings are on: disk encryption, firewall, power-on password, antivirus, "
            "screen lock, and the list of apps (software) on the laptop, and what each check saw, like "
            "the names of safety apps that run;"
        ),
    ),
    Topic(
        "software",
        adult="the full list of installed software, with each program's version and publisher;",
        secondary="the full list of installed software, with each app's version and who made it;",
        elementary="the name of each app, its version, and who made it;",
    ),
    Topic(
        "identity",
        adult=(
            "the identity of the device: its serial number, hardware ID (the firmware's system "
            "identifier and the operating system's machine identifier), manufacturer and model, "
            "hostname, network hardware (MAC) addresses, and operating system version;"
        ),
        secondary=(
            "facts that identify the laptop: its serial number, hardware ID, maker and model, hostname "
            "(the laptop's name), network hardware addresses, and operating system version;"
        ),
        elementary=(
            "the laptop's serial number, hardware ID, maker, model, name, network hardware addresses, "
            "and system version;"
        ),
    ),
    Topic(
        "accounts",
        adult=(
            "the account names that have signed in on the laptop, in every report, so that the "
            "district can see who still has to sign this policy;"
        ),
        secondary=(
            "the account names that have signed in on the laptop, every time it reports, so the school "
            "can see who still has to sign this policy;"
        ),
        elementary=(
            "the account names that sign in on the laptop, so the school knows who still has to answer;"
        ),
    ),
    Topic(
        "signoff",
        adult=(
            "records of your decision on this policy: your account name, the full name you type, your "
            "decision, the time you made it, and which version you read;"
        ),
        secondary=(
            "your answer to this policy: your account name, the full name you type, your decision, the "
            "time, and which version you read;"
        ),
        elementary=(
            "your answer to this promise: your account name, the name you type, your answer, and the time;"
        ),
    ),
    Topic(
        "approval",
        adult=(
            "when you ask IT to approve an app: the app's name and publisher, why you need it, your "
            "account name, the full name you type, and the time;"
        ),
        secondary=(
            "when you ask IT to approve an app: the app's name and who made it, why you need it, your "
            "account name, the name you type, and the time;"
        ),
        elementary="an app you ask for, why, your name, and the time;",
    ),
    Topic(
        "lost_report",
        adult=(
            "when you report a laptop lost or stolen: which laptop, what happened, when and where it "
            "was last seen, a police report number if there is one, your name and how to reach you;"
        ),
        secondary=(
            "when you report a laptop lost or stolen: which laptop, what happened, when and where you "
            "last saw it, your name and how to reach you;"
        ),
        elementary="a lost laptop you report;",
    ),
    Topic(
        "lost_mode",
        adult=(
            "only while the district has marked the laptop lost or stolen (lost mode), every few "
            "minutes until it is found: its network addresses and gateway, the Wi-Fi networks near it "
            "(name, hardware address, signal, channel), the account signed in, and how long it has "
            "been on; afterwards, the next person to sign in is told between which times this was "
            "collected;"
        ),
        secondary=(
            "only while the school has marked the laptop lost or stolen, every few minutes until it is "
            "found: its network addresses, the Wi-Fi networks near it, the account signed in, and how "
            "long it has been on; you are told afterwards;"
        ),
        elementary="only if it is lost: the Wi-Fi near it; you are told after;",
    ),
    Topic(
        "agent",
        adult=(
            "facts about Homeroom itself: its version, when it sent each record, and which copy of the "
            "district's settings and policy it has."
        ),
        secondary=(
            "facts about Homeroom itself: its version, when it sent each record, and which settings it has."
        ),
        elementary="facts about Homeroom itself, like its version and the time.",
    ),
)
TOPIC_IDS = frozenset(topic.id for topic in TOPICS)


@dataclass(frozen=True)
class Field:
    path: str
    when: str
    why: str
    topic: str


@dataclass(frozen=True)
class RecordKind:
    """One kind of record the agent sends: where it goes, when, and each field it carries."""

    kind: Kind
    endpoint: str  # under the API prefix
    when: str
    fields: tuple[Field, ...]

    def paths(self) -> frozenset[str]:
        return frozenset(field.path for field in self.fields)


def _identity(prefix: str, when: str) -> tuple[Field, ...]:
    why_match = "so the server matches the same laptop to the same record, even after a reinstall"
    return (
        Field(f"{prefix}", when, "the laptop's identity, read from firmware and the OS", "identity"),
        Field(
            f"{prefix}.serial", when, f"the firmware serial number: IT's asset tag, {why_match}", "identity"
        ),
        Field(f"{prefix}.hardware_uuid", when, f"the SMBIOS system UUID, {why_match}", "identity"),
        Field(f"{prefix}.hostname", when, "the computer name IT sees on its network and console", "identity"),
        Field(
            f"{prefix}.manufacturer", when, "the maker, for the asset list and per-vendor advice", "identity"
        ),
        Field(f"{prefix}.model", when, "the model, for the asset list and per-model advice", "identity"),
        Field(f"{prefix}.os", when, "windows, macos or linux: which checks and advice apply", "identity"),
        Field(
            f"{prefix}.os_version", when, "the OS version: whether it still gets security updates", "identity"
        ),
        Field(
            f"{prefix}.machine_id",
            when,
            f"a keyed hash of the OS's machine id (never the id itself), {why_match} where firmware "
            "is silent",
            "identity",
        ),
        Field(
            f"{prefix}.macs",
            when,
            "network hardware addresses, to find the laptop on the school network",
            "identity",
        ),
        Field(
            f"{prefix}.unreadable",
            when,
            "which identity facts could not be read, and why (e.g. no /sys/class/dmi): says a gap is a gap",
            "identity",
        ),
    )


_RESULTS = "every report"
_CHECK_FIELDS: tuple[Field, ...] = (
    Field("results", _RESULTS, "one result per enabled requirement", "checks"),
    Field("results[].id", _RESULTS, "which requirement", "checks"),
    Field("results[].title", _RESULTS, "its name for people", "checks"),
    Field("results[].status", _RESULTS, "pass, fail, unknown or error", "checks"),
    Field("results[].summary", _RESULTS, "one sentence saying what was found", "checks"),
    Field(
        "results[].evidence",
        _RESULTS,
        "what the check read from the OS to reach its verdict, so IT can confirm it (see CHECK_EVIDENCE)",
        "checks",
    ),
    Field("results[].remediation", _RESULTS, "how to fix a failure, for the user and IT", "checks"),
    Field("results[].duration_ms", _RESULTS, "how long the check took, to spot slow or hung probes", "agent"),
)

# What each check's evidence holds (all OSes). Nothing in it is a file's contents, a message or a
# browsing record; the people-related items are named in the "checks" topic people read.
CHECK_EVIDENCE: dict[str, str] = {
    "disk_encryption": (
        "the encryption state of the system volume as the OS reports it: BitLocker protection and "
        "conversion status and percentage, FileVault state and progress (and the user it waits for), "
        "or the dm-crypt devices under /"
    ),
    "firewall": "the firewall's state per network profile or per firewall tool (ufw, firewalld, nftables)",
    "power_on_password": (
        "whether a firmware password is set, whether the disk asks for a secret before start-up, and "
        "the account name set to log in automatically, if any"
    ),
    "antivirus": (
        "the names of security programs and their processes found running, their protection and "
        "signature state, signature dates and ages, and the age limit"
    ),
    "screen_lock": "the idle delay, whether a password is asked on waking, and the limit the district set",
    "software": (
        "how many items the inventory holds and how many of them are apps judged, the mode and baseline "
        "in use, the apps blocked or not on the approved list (name, version, publisher, where found, "
        "why judged), items a person installed that an approved app needs, and any part of the "
        "inventory that could not be read"
    ),
}


def _software_changes() -> tuple[Field, ...]:
    """A report sent because software was installed or removed says what: the items as in `software`."""
    when = "when software was installed, updated or removed since the last report"
    fields = [
        Field(
            "software_changes",
            when,
            "what changed, seen the moment it happened (install watch) or at the scheduled check",
            "software",
        ),
        Field("software_changes.since", when, "when the inventory it is compared with was taken", "software"),
        Field(
            "software_changes.seen_by",
            when,
            "'watch' (an install was seen as it happened) or 'schedule' (the scheduled check found it)",
            "software",
        ),
    ]
    for side, what in (
        ("added", "installed (or the new version)"),
        ("removed", "removed (or the old version)"),
    ):
        fields.append(Field(f"software_changes.{side}", when, f"each program {what}", "software"))
        for part in ("name", "version", "publisher", "source", "judged", "basis"):
            fields.append(
                Field(f"software_changes.{side}[].{part}", when, f"its {part}, as in software[]", "software")
            )
    return tuple(fields)


KINDS: dict[str, RecordKind] = {
    "enrol": RecordKind(
        "enrol",
        "/enrol",
        "once, when IT enrols the laptop (`homeroom-agent enroll`), and again if it is enrolled anew",
        (
            Field("token", "enrolment", "the one-time token IT gave, proving the laptop may join", "agent"),
            Field(
                "public_key",
                "enrolment",
                "the device key's public half: later requests are signed by it",
                "agent",
            ),
            Field("agent_version", "enrolment", "Homeroom's version, for support", "agent"),
            *_identity("identity", "enrolment"),
        ),
    ),
    "report": RecordKind(
        "report",
        "/reports",
        "after a check cycle whose results changed, and at least every few hours (agent.toml report_hours)",
        (
            Field("report_id", _RESULTS, "unique id: the server stores a report sent twice once", "agent"),
            Field("reported_at", _RESULTS, "when the checks ran", "agent"),
            Field("agent_version", _RESULTS, "Homeroom's version, for support", "agent"),
            *_identity("identity", _RESULTS),
            *_CHECK_FIELDS,
            Field(
                "software", "every report while the software requirement is on", "the inventory", "software"
            ),
            Field(
                "software[].name",
                "with software",
                "each installed program's name, judged against the lists",
                "software",
            ),
            Field(
                "software[].version",
                "with software",
                "its version, for IT's patching and licences",
                "software",
            ),
            Field(
                "software[].publisher",
                "with software",
                "who made it, for approval rules by publisher",
                "software",
            ),
            Field(
                "software[].source",
                "with software",
                "where it was found (dpkg, an uninstall registry key, /Applications)",
                "software",
            ),
            Field(
                "software[].judged",
                "with software",
                "whether it is an app the check judges (false: a library, runtime or update an app "
                "brought with it, kept so IT has the full inventory)",
                "software",
            ),
            Field(
                "software[].basis",
                "with software",
                "why it is judged or not, e.g. 'manually installed', 'installed as a dependency'",
                "software",
            ),
            Field(
                "users",
                _RESULTS,
                "account names that have signed in on the laptop (sessions now, and sign-ins the tray saw): "
                "the sign-off report lists who still has to sign",
                "accounts",
            ),
            Field("audience", _RESULTS, "staff or student: which policy applies", "agent"),
            Field(
                "dropped",
                "after the outbox had to drop records",
                "counts per kind, for the audit log",
                "agent",
            ),
            Field(
                "local_problems",
                "after the agent found its own files damaged or broken (and kept running)",
                "short descriptions (at most 20), so IT can fix the laptop's files",
                "agent",
            ),
            *_software_changes(),
        ),
    ),
    "heartbeat": RecordKind(
        "heartbeat",
        "/heartbeat",
        "every few minutes between reports (agent.toml heartbeat_minutes): 'still here'",
        (
            Field("heartbeat_id", "every heartbeat", "unique id, so a repeat is recognised", "agent"),
            Field("sent_at", "every heartbeat", "when it was sent", "agent"),
            Field("agent_version", "every heartbeat", "Homeroom's version, for support", "agent"),
            Field("overall", "every heartbeat", "the last overall result: the console's colour", "checks"),
            Field(
                "requirements_etag",
                "every heartbeat",
                "which requirements copy it has: newer ones come back",
                "agent",
            ),
            Field("policies_etag", "every heartbeat", "which policies it has: newer ones come back", "agent"),
            Field(
                "dropped",
                "after the outbox had to drop records",
                "counts per kind, for the audit log",
                "agent",
            ),
            Field(
                "local_problems",
                "after the agent found its own files damaged or broken (and kept running)",
                "short descriptions (at most 20), so IT can fix the laptop's files",
                "agent",
            ),
            Field(
                "refused_answers",
                "after the agent refused an answer not signed by its district's server",
                "so IT sees that something on the network pretended to be the server",
                "agent",
            ),
            Field(
                "refused_answers.count",
                "after the agent refused an answer not signed by its district's server",
                "how many answers were refused, for the audit log",
                "agent",
            ),
            Field(
                "refused_answers.first_at",
                "after the agent refused an answer not signed by its district's server",
                "when the first was refused",
                "agent",
            ),
            Field(
                "refused_answers.last_at",
                "after the agent refused an answer not signed by its district's server",
                "when the last was refused",
                "agent",
            ),
            Field(
                "refused_answers.last_reason",
                "after the agent refused an answer not signed by its district's server",
                "why the last was refused",
                "agent",
            ),
            Field(
                "refused_answers.server_url",
                "after the agent refused an answer not signed by its district's server",
                "the address the refused answers came from",
                "agent",
            ),
        ),
    ),
    "signoff": RecordKind(
        "signoff",
        "/signoffs",
        "once per decision, when a user presses I agree or I do not agree",
        (
            Field(
                "record_id", "every sign-off", "unique id: a decision sent twice is stored once", "signoff"
            ),
            Field("user", "every sign-off", "the account that decided", "signoff"),
            Field("full_name", "every sign-off", "the name they typed, as their signature", "signoff"),
            Field("policy_id", "every sign-off", "which policy", "signoff"),
            Field("policy_version", "every sign-off", "the SHA-256 of the exact text they read", "signoff"),
            Field("decision", "every sign-off", "agree or decline", "signoff"),
            Field("decided_at", "every sign-off", "the moment of the click", "signoff"),
        ),
    ),
    "approval_request": RecordKind(
        "approval_request",
        "/approvals",
        "once per request, when a user asks IT to approve an app from the tray",
        (
            Field("record_id", "every request", "unique id: a request sent twice is stored once", "approval"),
            Field(
                "user", "every request", "the account that asks, which IT's answer goes back to", "approval"
            ),
            Field("full_name", "every request", "the name they typed, so IT knows who asks", "approval"),
            Field("app", "every request", "the app's name, as found installed or as typed", "approval"),
            Field(
                "publisher",
                "every request (empty when typed)",
                "who made it, as the software check found it: the approval names it",
                "approval",
            ),
            Field(
                "reason", "every request", "why it is needed for school work, for IT to decide", "approval"
            ),
            Field("requested_at", "every request", "when they asked", "approval"),
        ),
    ),
}

_REPORTED = "every lost-device report"
_LOST = "only in lost mode, every interval_seconds the server sets (2 minutes by default)"
KINDS["lost_report"] = RecordKind(
    "lost_report",
    "/lost-reports",
    "once per report, when a person reports a laptop lost or stolen from the tray",
    (
        Field("record_id", _REPORTED, "unique id: a report sent twice is stored once", "lost_report"),
        Field(
            "reporter", _REPORTED, "the account that reports, which the answer goes back to", "lost_report"
        ),
        Field("reporter_name", _REPORTED, "the name they typed, so IT knows who reports", "lost_report"),
        Field("contact", _REPORTED, "how IT can reach them (a phone number or e-mail)", "lost_report"),
        Field("device", _REPORTED, "which laptop is lost", "lost_report"),
        Field(
            "device.by",
            _REPORTED,
            "'this' (the laptop the report is sent from) or how the other one is named",
            "lost_report",
        ),
        Field(
            "device.value",
            _REPORTED,
            "its serial number, asset tag or hostname (this laptop's hostname for 'this')",
            "lost_report",
        ),
        Field(
            "kind", _REPORTED, "lost or stolen: who must be told (the police, the risk office)", "lost_report"
        ),
        Field("last_seen_at", _REPORTED, "when it was last seen, if the person said", "lost_report"),
        Field("last_seen_where", _REPORTED, "where it was last seen", "lost_report"),
        Field("what_happened", _REPORTED, "what happened, in their words", "lost_report"),
        Field("police_report", _REPORTED, "the police report number, if there is one", "lost_report"),
        Field("made_at", _REPORTED, "when the report was made", "lost_report"),
    ),
)
KINDS["lost_evidence"] = RecordKind(
    "lost_evidence",
    "/lost-evidence",
    "only in lost mode: while the server's signed answer says the laptop is lost or stolen (or in a "
    "drill IT runs), never otherwise",
    (
        Field("record_id", _LOST, "unique id: evidence sent twice is stored once", "lost_mode"),
        Field("case_id", _LOST, "which lost-device case it belongs to", "lost_mode"),
        Field("collected_at", _LOST, "when it was collected", "lost_mode"),
        Field(
            "local_addresses",
            _LOST,
            "the laptop's own network addresses: a district range means it is in a school building",
            "lost_mode",
        ),
        Field("gateway", _LOST, "the router it reaches the network through", "lost_mode"),
        Field("wifi", _LOST, "the Wi-Fi access points it can see (at most 100)", "lost_mode"),
        Field(
            "wifi[].bssid",
            _LOST,
            "the access point's hardware address: a district access point names a building and room",
            "lost_mode",
        ),
        Field("wifi[].ssid", _LOST, "the network's name", "lost_mode"),
        Field("wifi[].signal", _LOST, "how strong it is (percent): how near", "lost_mode"),
        Field("wifi[].channel", _LOST, "its channel", "lost_mode"),
        Field("logged_in_user", _LOST, "the account signed in now, if any", "lost_mode"),
        Field("uptime_seconds", _LOST, "how long the laptop has been on", "lost_mode"),
        Field(
            "unseen",
            _LOST,
            "what could not be collected and why (no Wi-Fi adapter, Location services off, macOS)",
            "lost_mode",
        ),
    ),
)
# Fields that only lost-mode evidence may carry: no other kind has them (tests/contract/test_collected.py).
LOST_MODE_ONLY = frozenset({"local_addresses", "gateway", "wifi", "logged_in_user", "uptime_seconds"})

# Every request also carries these headers (the signed protocol, contract/wire.py); enrolment has
# none of the device ones, as the device has no id yet.
REQUEST_HEADERS: dict[str, str] = {
    "X-Homeroom-Device": "the device id the server gave at enrolment",
    "X-Homeroom-Timestamp": "when the request was signed: the server refuses stale ones",
    "X-Homeroom-Request-Id": "a unique id: the server refuses a replayed request",
    "X-Homeroom-Signature": "the device key's signature over method, path, time, id and body hash",
}

# Fields whose value is an object with open-ended keys, described by its documented contents.
OPEN_FIELDS = frozenset({"results[].evidence", "dropped", "identity.unreadable"})


def kind_for_endpoint(path: str) -> RecordKind | None:
    """The record kind a request path (after the API prefix) carries."""
    return next((kind for kind in KINDS.values() if path.rstrip("/").endswith(kind.endpoint)), None)


def undescribed_fields(kind: RecordKind, body: object) -> list[str]:
    """Every path in `body` that the description of `kind` lacks (an empty list when all are described).

    Walks objects and lists recursively; stops at an open field, whose keys are its documented
    contents rather than fields of their own.
    """
    described = kind.paths()
    missing: list[str] = []

    def walk(value: object, path: str) -> None:
        if path in OPEN_FIELDS:
            return
        if isinstance(value, dict):
            for key, item in value.items():
                child = f"{path}.{key}" if path else str(key)
                if child not in described:
                    missing.append(child)
                    continue
                walk(item, child)
        elif isinstance(value, list):
            for item in value:
                walk(item, f"{path}[]")

    walk(body, "")
    return sorted(set(missing))


# --- what people read -------------------------------------------------------------------------

INTRO: dict[Level, str] = {
    "adult": "Homeroom collects and sends to the district:",
    "secondary": "It sends the school only these things:",
    "elementary": "It tells the school:",
}


# What is not collected, said as plainly. Where the laptop is (its networks, nearby Wi-Fi) is
# collected only in lost mode, as the "lost_mode" topic says.
NOT_COLLECTED: dict[Level, str] = {
    "adult": (
        "Outside lost mode, Homeroom does not collect where the laptop is. It does not read your files, "
        "e-mail or messages, and it does not collect your browsing history. It does not view or record your "
        "screen, and it never uses the camera or the microphone."
    ),
    "secondary": (
        "Unless it is lost or stolen, Homeroom does not track where the laptop is. It does not read your "
        "files, e-mail or messages. "
        "It does not look at your browsing history or your screen, and it never turns on the camera or "
        "the microphone."
    ),
    "elementary": (
        "Unless it is lost, Homeroom does not track where the laptop is. It does not read your files or "
        "e-mail, or see the websites you visit or your screen. It never turns on the camera or the "
        "microphone."
    ),
}


def level_for(audience: str, reading_level: str) -> Level:
    """Whose words suit the readers of a policy: staff read the adult list; students in grades K-5
    (a policy whose reading_level names them) the elementary one; other students the secondary."""
    if audience != "student":
        return "adult"
    if re.search(r"\bK\b|\bK-|\bgrades? [1-5]\b|\belementary\b", reading_level, re.IGNORECASE):
        return "elementary"
    return "secondary"


def topic_lines(level: Level) -> list[str]:
    """The list people read, one line per topic, in order."""
    return [topic.words(level) for topic in TOPICS]


def policy_section(level: Level) -> str:
    """The Markdown list of what is sent, as each shipped policy must hold it (hard-wrapped at 100)."""
    import textwrap

    lines = [INTRO[level], ""]
    for words in topic_lines(level):
        lines += textwrap.wrap(f"- {words}", width=100, subsequent_indent="  ")
    lines += ["", *textwrap.wrap(NOT_COLLECTED[level], width=100)]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m contract.collected LEVEL`: print the section a policy at that level must hold."""
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 1 or args[0] not in LEVELS:
        print(f"usage: python -m contract.collected {{{'|'.join(LEVELS)}}}", file=sys.stderr)
        return 2
    sys.stdout.write(policy_section(args[0]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
