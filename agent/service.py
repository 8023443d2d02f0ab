"""The agent's loop: check on schedule, report what changed, send a heartbeat, drain the outbox.

Timing lives in a small JSON file in the state directory, so a restart
neither floods the server with reports nor forgets that one is due.
Everything to send goes into the outbox first; a crash between "queued" and
"sent" loses nothing, and the server stores each record once by its id.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import signal
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from agent.approval_status import (
    RequestStatus,
    district_contact,
    moved_to,
    read_statuses,
    with_status,
    write_statuses,
)
from agent.checks import CHECKS_BY_ID, select, software_inventory
from agent.checks.context import CheckContext
from agent.checks.results import CheckResult, Status
from agent.checks.runner import run_checks
from agent.checks.software import Inventory
from agent.config import AgentConfig
from agent.desktop.approval_request import Request, request_problems
from agent.desktop.handoff import InboxEntry, ensure_inbox, printable, read_inbox, set_aside
from agent.errors import InsecureServerAddress, NotEnrolled
from agent.identity import local_macs, read_identity
from agent.lost.duties import LOST_EVIDENCE, LOST_REPORT, LostDuties
from agent.probes import LiveProbes, RecordingProbes, ReplayProbes
from agent.probes.facts import PlatformFacts
from agent.recovery import open_outbox
from agent.request_limit import PerUserLimit
from agent.server_link.address import transport_of
from agent.server_link.answers import RefusedAnswers
from agent.server_link.client import ServerClient, make_transport
from agent.server_link.keys import KeyStore, open_key_store
from agent.server_link.link_state import LinkState, watched
from agent.server_link.outbox import OutboxItem
from agent.server_link.sender import DrainResult, drain
from agent.service_log import cycle_line
from agent.software_changes import (
    SEEN_BY_SCHEDULE,
    SEEN_BY_WATCH,
    InventoryFile,
    KeptInventory,
    SoftwareChanges,
    changes,
)
from agent.state import (
    ENROLMENT_FILE,
    OUTBOX_FILE,
    POLICIES_DIR,
    POLICIES_INDEX,
    SCHEDULE_FILE,
    SERVER_REQUIREMENTS_FILE,
    STATUS_FILE,
    USER_RESULTS_FILE,
    USERS_FILE,
    BaselineFile,
    requirements_in_effect,
    write_atomically,
)
from agent.user_results import MAX_AGE_SECONDS, TrayReading, user_context_results
from agent.watch import InstallWatch, start_install_watch
from contract import __version__
from contract.errors import ConfigError
from contract.requirements import Requirements, requirements_from_text

log = logging.getLogger("homeroom.agent")

USER_RESULTS_MAX_AGE = MAX_AGE_SECONDS
# status.json is rewritten at least this often: the tray reads an older one as a stopped service.
STATUS_REFRESH_SECONDS = 60.0
SIGNOFF_FIELDS = ("record_id", "user", "full_name", "policy_id", "policy_version", "decision", "decided_at")
APPROVAL_FIELDS = ("record_id", "user", "full_name", "app", "publisher", "reason", "requested_at")


def result_from_json(item: Any) -> CheckResult | None:
    """A result the tray computed; anything malformed is ignored rather than trusted."""
    try:
        return CheckResult(
            id=str(item["id"]),
            title=str(item["title"]),
            status=Status(item["status"]),
            summary=str(item["summary"]),
            evidence=dict(item.get("evidence") or {}),
            remediation=item.get("remediation"),
            duration_ms=int(item.get("duration_ms", 0)),
        )
    except (KeyError, TypeError, ValueError):
        return None


def logged_in_users() -> set[str]:
    """Accounts with a session now: who ought to have signed the policy."""
    import psutil

    try:
        return {user.name for user in psutil.users() if user.name}
    except (OSError, RuntimeError):
        return set()


@dataclass(frozen=True)
class EnrolmentRecord:
    server_url: str
    device_id: str
    group: str
    enrolled_at: str
    # The server's answer-signing key (base64), pinned at enrolment; "" for a laptop enrolled before
    # keys were pinned, until its first signed answer (agent.server_link.answers).
    server_public_key: str = ""
    server_key_pinned: str = ""  # how and when it was pinned, for `status` and IT


PINNED_FIELDS = ("server_public_key", "server_key_pinned")


def read_enrolment(state_dir: Path) -> EnrolmentRecord | None:
    try:
        data = json.loads((state_dir / ENROLMENT_FILE).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise NotEnrolled(f"{state_dir / ENROLMENT_FILE} is damaged ({exc}): enrol again") from None
    try:
        required = {k: str(data[k]) for k in ("server_url", "device_id", "group", "enrolled_at")}
    except (KeyError, TypeError):
        raise NotEnrolled(
            f"{state_dir / ENROLMENT_FILE} is damaged (a field is missing): enrol again"
        ) from None
    return EnrolmentRecord(**required, **{k: str(data.get(k) or "") for k in PINNED_FIELDS})


def write_enrolment(state_dir: Path, record: EnrolmentRecord) -> None:
    write_atomically(state_dir / ENROLMENT_FILE, json.dumps(asdict(record), indent=1))


@dataclass
class Schedule:
    last_check_at: float = 0.0
    last_report_at: float = 0.0
    last_heartbeat_at: float = 0.0
    last_digest: str = ""
    requirements_etag: str = ""
    policies_etag: str = ""
    last_overall: str = "none"
    check_now: bool = False

    @classmethod
    def load(cls, path: Path) -> Schedule:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return cls()
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in data.items() if k in known})

    def save(self, path: Path) -> None:
        """Written (and fsynced) only when it changed: the loop calls this every few seconds."""
        text = json.dumps(asdict(self), indent=1)
        try:
            if path.read_text(encoding="utf-8") == text:
                return
        except (OSError, ValueError):
            pass
        write_atomically(path, text)


def results_digest(results: list[CheckResult]) -> str:
    """What counts as 'a result changed': the status and summary of each check, not timings."""
    essence = [(r.id, r.status.value, r.summary) for r in results]
    return hashlib.sha256(json.dumps(essence).encode()).hexdigest()


def overall(results: list[CheckResult]) -> str:
    statuses = {r.status.value for r in results}
    if not statuses:
        return "none"
    for status in ("fail", "error", "unknown"):
        if status in statuses:
            return "unknown" if status == "error" else status
    return "pass"


@dataclass
class CycleResult:
    checked: bool = False
    reported: bool = False
    heartbeat: bool = False
    drained: DrainResult | None = None
    queued_after: int = 0
    notes: list[str] = field(default_factory=list)


class AgentService:
    def __init__(
        self,
        state_dir: Path,
        config: AgentConfig,
        platform: PlatformFacts,
        default_requirements: tuple[Requirements, str],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.state_dir = state_dir
        self.config = config
        self.platform = platform
        self.default_requirements = default_requirements
        self.clock = clock
        self.rng = random.Random()  # noqa: S311 - jitter for retries, not a secret
        state_dir.mkdir(parents=True, exist_ok=True)
        self.schedule_path = state_dir / SCHEDULE_FILE
        self.schedule = Schedule.load(self.schedule_path)
        self.outbox = open_outbox(state_dir / OUTBOX_FILE, config.outbox_max_mb * 1024 * 1024, clock)
        self.keys: KeyStore = open_key_store(state_dir)
        self.inbox = ensure_inbox(state_dir)
        self._status_written_at = float("-inf")
        self._address_refused = ""
        self.check_now_limit = PerUserLimit(clock)
        # Install events (agent.watch): the watcher sets the flag and wakes the loop.
        self.wake = threading.Event()
        self._installs_changed = threading.Event()
        self._last_run: tuple[list[CheckResult], dict[str, Any]] | None = None
        self.inventory_file = InventoryFile(state_dir)
        self.lost = LostDuties(state_dir, platform.os, clock)  # agent.lost: reports and lost mode

    # --- requirements ------------------------------------------------------------------

    def requirements(self) -> Requirements:
        return requirements_in_effect(self.state_dir, lambda: self.default_requirements[0])

    def apply_requirements(self, etag: str, content: str) -> None:
        try:
            requirements_from_text("requirements from the server", content)
        except ConfigError as exc:
            log.warning(
                "the server sent requirements this agent cannot use; keeping the last good copy: %s", exc
            )
            return
        write_atomically(self.state_dir / SERVER_REQUIREMENTS_FILE, content)
        # The user's tray reads it too, for the screen-lock limit: requirements are not secret.
        (self.state_dir / SERVER_REQUIREMENTS_FILE).chmod(0o644)
        self.schedule.requirements_etag = etag
        self.schedule.check_now = True  # apply on the next cycle
        self.schedule.save(self.schedule_path)

    def apply_policies(self, etag: str, documents: list[Any]) -> None:
        """The policies users sign, as files the tray and the dialog can read (they run as the user)."""
        directory = self.state_dir / POLICIES_DIR
        directory.mkdir(parents=True, exist_ok=True)
        index: dict[str, dict[str, str]] = {}
        for document in documents:
            if not isinstance(document, dict) or document.get("audience") not in {"staff", "student"}:
                continue
            name = f"{document['audience']}.md"
            write_atomically(directory / name, str(document.get("content", "")))
            (directory / name).chmod(0o644)
            index[document["audience"]] = {
                "file": f"{POLICIES_DIR}/{name}",
                "policy_id": str(document.get("policy_id", "")),
                "version": str(document.get("version", "")),
            }
        write_atomically(self.state_dir / POLICIES_INDEX, json.dumps(index, indent=1))
        self.schedule.policies_etag = etag
        self.schedule.save(self.schedule_path)
        self.write_status()

    # --- what users' processes hand over ---------------------------------------------------

    def take_inbox(self) -> None:
        """Each entry on its own: a bad one is set aside and logged once, and the rest are still taken."""
        accepted, refused = read_inbox(self.inbox)
        for path, why in refused:
            log.warning("refused %s from the inbox (set aside): %s", printable(path.name), why)
        for entry in accepted:
            try:
                self._take_entry(entry)
            except ValueError as exc:  # the entry's fault (say, too large to queue); a disk fault is not
                log.warning("refused %s from the inbox (set aside): %s", printable(entry.path.name), exc)
                set_aside(entry.path)
                continue
            entry.path.unlink(missing_ok=True)

    def _take_entry(self, entry: InboxEntry) -> None:
        if entry.kind == "signoff":
            body = {key: entry.data.get(key) for key in SIGNOFF_FIELDS}
            self.outbox.put("signoff", body, record_id=str(body["record_id"]))
            self.note_user(entry.user)
        elif entry.kind == "user_results":
            before = self.user_results()
            write_atomically(
                self.state_dir / USER_RESULTS_FILE,
                json.dumps({"user": entry.user, "at": self.clock(), "results": entry.data["results"]}),
            )
            self.note_user(entry.user)
            self._report_if_user_results_changed(before)
        elif entry.kind == "approval_request":
            self.take_approval_request(entry)
        elif entry.kind == LOST_REPORT:
            if self.lost.take_report(entry, self.outbox):
                self.note_user(entry.user)
        elif entry.kind == "check_now":
            if self.check_now_limit.allow(entry.user):
                self.schedule.check_now = True
                self.schedule.save(self.schedule_path)
            elif self.check_now_limit.first_refusal(entry.user):
                log.warning(
                    "dropped 'Check now' from %s: at most one a minute per user is honoured",
                    printable(entry.user),
                )

    def note_user(self, user: str) -> None:
        users = self.users_seen()
        if user not in users:
            write_atomically(self.state_dir / USERS_FILE, json.dumps(sorted(users | {user})))

    def users_seen(self) -> set[str]:
        try:
            return set(json.loads((self.state_dir / USERS_FILE).read_text(encoding="utf-8")))
        except (OSError, ValueError):
            return set()

    def tray_reading(self) -> TrayReading | None:
        """The last user-context results the tray handed over, however old; None if it never did."""
        try:
            data = json.loads((self.state_dir / USER_RESULTS_FILE).read_text(encoding="utf-8"))
            listed = data.get("results", [])
            results = tuple(r for item in listed if (r := result_from_json(item)) is not None)
            return TrayReading(float(data.get("at", 0)), str(data.get("user", "")), results)
        except (OSError, ValueError, TypeError, AttributeError):
            return None

    def user_results(self) -> list[CheckResult]:
        """The user-context results (screen lock) the tray read in the user's session, if recent."""
        reading = self.tray_reading()
        if reading is None or self.clock() - reading.at > USER_RESULTS_MAX_AGE:
            return []
        return list(reading.results)

    def _report_if_user_results_changed(self, before: list[CheckResult]) -> None:
        """A new reading from the tray goes into a report in this same cycle, not at the next hourly check."""
        if results_digest(self.user_results()) != results_digest(before):
            self.schedule.check_now = True
            self.schedule.save(self.schedule_path)

    def write_status(self, results: list[CheckResult] | None = None) -> None:
        """status.json: what the tray shows. World-readable: it holds nothing a user may not see."""
        path = self.state_dir / STATUS_FILE
        previous: dict[str, Any] = {}
        if results is None:
            try:
                previous = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                previous = {}
        try:
            policies = json.loads((self.state_dir / POLICIES_INDEX).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            policies = {}
        enrolment = read_enrolment(self.state_dir)
        requirements = self.requirements()
        status = {
            "updated_at": datetime.now(timezone.utc).isoformat(),
            "results": [r.to_json() for r in results] if results is not None else previous.get("results", []),
            "device_id": enrolment.device_id if enrolment else None,
            "server_url": enrolment.server_url if enrolment else None,
            "audience": self.config.audience,
            "policies": policies,
            "signoff": {
                "renew_on": requirements.signoff_renew_on,
                "renew_after_days": requirements.signoff_renew_after_days,
                "ask_again_after_hours": requirements.signoff_ask_again_after_hours,
            },
        }
        write_atomically(path, json.dumps(status, indent=1))
        path.chmod(0o644)
        self._status_written_at = time.monotonic()

    def keep_status_fresh(self) -> None:
        """A running service says so: status.json's updated_at never gets older than a minute or so."""
        if time.monotonic() - self._status_written_at >= STATUS_REFRESH_SECONDS:
            self.write_status()

    # --- one cycle -------------------------------------------------------------------------

    def _on_response(self, item: OutboxItem, data: dict[str, Any]) -> None:
        if item.kind == "approval_request":
            self.approval_sent(item.record_id, data)
        if item.kind == LOST_REPORT:
            self.lost.report_delivered(item.record_id, data)
        if item.kind != "heartbeat":
            return
        self.lost.answered(data.get("lost_mode"))  # a signed answer only: the transport refused others
        if not self.lost.active and (unsent := self.outbox.discard(LOST_EVIDENCE)):
            log.info("lost mode has ended: %d evidence record(s) collected before it ended not sent", unsent)
        self.apply_approval_answers(data.get("approvals"))
        requirements = data.get("requirements")
        if isinstance(requirements, dict) and {"etag", "content"} <= requirements.keys():
            self.apply_requirements(str(requirements["etag"]), str(requirements["content"]))
        policies = data.get("policies")
        if isinstance(policies, dict) and isinstance(policies.get("documents"), list):
            self.apply_policies(str(policies.get("etag", "")), policies["documents"])
        for command in data.get("commands") or []:
            if isinstance(command, dict) and command.get("command") == "check_now":
                self.schedule.check_now = True
                self.schedule.save(self.schedule_path)

    def run_checks(
        self, software_only: bool = False
    ) -> tuple[list[CheckResult], dict[str, Any], Inventory | None]:
        """`software_only` (after an install event): the software check again, the rest as last run."""
        requirements = self.requirements()
        # The service runs as root/SYSTEM: per-user settings (screen lock) are the tray's to read.
        where = "system" if self.platform.is_admin and not self.platform.desktop else None
        specs = select(requirements.enabled, where=where)  # type: ignore[arg-type]
        if software_only:
            specs = [spec for spec in specs if spec.id == "software"]
        recorder = RecordingProbes(LiveProbes())
        ctx = CheckContext(
            recorder, self.platform, requirements, datetime.now(timezone.utc), BaselineFile(self.state_dir)
        )
        results = run_checks(specs, ctx, requirements.check_timeout_seconds)
        if software_only and self._last_run is not None:
            fresh = {r.id: r for r in results}
            results = [fresh.pop(r.id, r) for r in self._last_run[0]] + list(fresh.values())
        ran = {r.id for r in results}
        # Every enabled user-context check is in the report: the tray's fresh reading, or unknown and why.
        waiting = [spec for spec in select(requirements.enabled, where="user") if spec.id not in ran]
        results += user_context_results(
            waiting, self.tray_reading(), self.users_seen() | logged_in_users(), self.clock()
        )
        order = {check_id: index for index, check_id in enumerate(CHECKS_BY_ID)}
        results.sort(key=lambda r: order.get(r.id, len(order)))
        replay = CheckContext(ReplayProbes(recorder.records), self.platform, requirements, ctx.now, None)
        inventory = software_inventory(replay) if "software" in requirements.enabled else None
        if software_only and self._last_run is not None:
            identity = self._last_run[1]
        else:
            identity = read_identity(LiveProbes(), self.platform, local_macs()).to_json()
        self._last_run = (results, identity)
        return results, identity, inventory

    def cycle(self, send: bool = True, force_report: bool = False) -> CycleResult:
        now = self.clock()
        result = CycleResult()
        schedule = self.schedule
        self.take_inbox()
        self.keep_status_fresh()
        installs = self._installs_changed.is_set()
        self._installs_changed.clear()
        check_due = now - schedule.last_check_at >= self.config.check_interval_minutes * 60
        full = check_due or schedule.check_now or force_report
        if full or installs:
            software_only = not full and self._last_run is not None
            results, identity, inventory = self.run_checks(software_only)
            result.checked = True
            self.write_status(results)
            digest = results_digest(results)
            kept, software_changes = self._software_changes(
                inventory, SEEN_BY_WATCH if installs else SEEN_BY_SCHEDULE
            )
            report_due = now - schedule.last_report_at >= self.config.report_interval_hours * 3600
            if force_report or report_due or digest != schedule.last_digest or software_changes:
                body = self._report_body(results, identity, inventory, software_changes)
                self.outbox.put("report", body, carry_dropped=True)
                schedule.last_report_at = now
                schedule.last_digest = digest
                result.reported = True
            if kept is not None:  # after the report is queued: a crash between reports the change again
                self.inventory_file.save(kept)
            if not software_only:
                schedule.last_check_at = now
                schedule.check_now = False
            schedule.last_overall = overall(results)
        heartbeat_every = self.lost.heartbeat_seconds(self.config.heartbeat_interval_minutes * 60)
        if (
            not result.reported and now - schedule.last_heartbeat_at >= heartbeat_every
        ) or self.refused_answers.pending():  # IT hears of refused answers at once
            self.outbox.put("heartbeat", self._heartbeat_body(), carry_dropped=True)
            schedule.last_heartbeat_at = now
            result.heartbeat = True
        elif result.reported:
            schedule.last_heartbeat_at = now  # a report says "still here" too
        schedule.save(self.schedule_path)
        self.lost.collect_if_due(self.outbox)  # in lost mode only; outside it nothing is read
        if send:
            result.drained = self.drain()
            if result.drained is not None and result.drained.rejected:
                self.note_refused_requests()
        result.queued_after = sum(self.outbox.stats().queued.values())
        return result

    def _report_body(
        self,
        results: list[CheckResult],
        identity: dict[str, Any],
        inventory: Inventory | None,
        software_changes: SoftwareChanges | None = None,
    ) -> dict[str, Any]:
        body = {
            "report_id": uuid.uuid4().hex,
            "reported_at": datetime.now(timezone.utc).isoformat(),
            "agent_version": __version__,
            "identity": identity,
            "results": [r.to_json() for r in results],
            "software": [item.to_json() for item in inventory.items] if inventory else [],
            "users": sorted(self.users_seen() | logged_in_users()),
            "audience": self.config.audience,
        }
        if software_changes:
            body["software_changes"] = software_changes.to_json()
        return body

    # --- installs seen as they happen (agent.watch) --------------------------------------------

    def installs_changed(self) -> None:
        """Called by the install watch (its own thread) once a burst of events is quiet."""
        self._installs_changed.set()
        self.wake.set()

    def _software_changes(
        self, inventory: Inventory | None, seen_by: str
    ) -> tuple[KeptInventory | None, SoftwareChanges | None]:
        """What changed since the kept inventory, and the inventory to keep (None: software is off)."""
        if inventory is None:
            return None, None
        now = datetime.now(timezone.utc).isoformat()
        return changes(self.inventory_file.load(), inventory, now, seen_by)

    def start_install_watch(self) -> InstallWatch | None:
        """A watcher that cannot start is logged; the loop goes on, on its schedule."""
        try:
            watch = start_install_watch(self.platform.os, self.installs_changed)
        except Exception:
            log.exception("the install watch could not start; installs are seen at the scheduled check")
            return None
        log.info("install watch: %s", watch.describe())
        return watch

    def _heartbeat_body(self) -> dict[str, Any]:
        body = {
            "heartbeat_id": uuid.uuid4().hex,
            "sent_at": datetime.now(timezone.utc).isoformat(),
            "agent_version": __version__,
            "overall": self.schedule.last_overall,
            "requirements_etag": self.schedule.requirements_etag or None,
            "policies_etag": self.schedule.policies_etag or None,
        }
        return self._with_refused_answers(body)

    def drain(self) -> DrainResult | None:
        enrolment = read_enrolment(self.state_dir)
        key = self.keys.load() if enrolment else None
        if enrolment is None or key is None:
            return None
        try:
            client = ServerClient(enrolment.server_url, allow_insecure_http=self.config.allow_insecure_http)
        except InsecureServerAddress as exc:
            if str(exc) != self._address_refused:  # once, not every 5 s
                log.warning("not sending: %s", exc)  # checks go on; records wait in the outbox
                self._address_refused = str(exc)
            return None
        transport = make_transport(
            client,
            key,
            enrolment.device_id,
            self._on_response,
            pinned_server_key=enrolment.server_public_key,
            on_refused=lambda item, why: self._answer_refused(enrolment, item, why),
            on_pin=lambda server_key: self._pin_server_key(enrolment, server_key),
        )
        link = LinkState.load(self.state_dir)
        try:
            return drain(self.outbox, watched(transport, link, self.clock), self.clock, self.rng)
        finally:
            link.save(self.state_dir)

    # --- asking IT to approve an app ------------------------------------------------------------

    def take_approval_request(self, entry: InboxEntry) -> None:
        """Checked again here (the form may have been skipped): a refusal is written where the tray
        reads it, with the words the form would have shown; an accepted request is queued, never
        dropped (outbox KIND_RULES), and shown as waiting until the server has it."""
        data = entry.data
        record_id = str(data["record_id"])
        statuses = read_statuses(self.state_dir)
        if any(status.record_id == record_id for status in statuses):
            log.warning("ignored an approval request from %s: its id is taken", printable(entry.user))
            return
        request = Request(data["app"], data["publisher"], data["reason"], data["full_name"])
        problems = request_problems(request, self.requirements(), district_contact(self.state_dir))
        now = datetime.now(timezone.utc).isoformat()
        if problems:
            message = " ".join(problems.values())
            status = RequestStatus(record_id, entry.user, request.app, "refused", message, now)
            log.warning("refused an approval request from %s: %s", printable(entry.user), printable(message))
        else:
            body = {key: data[key] for key in APPROVAL_FIELDS}
            self.outbox.put("approval_request", body, record_id=record_id)
            status = RequestStatus(record_id, entry.user, request.app, "waiting", "", now)
            self.note_user(entry.user)
        write_statuses(self.state_dir, with_status(statuses, status))

    def approval_sent(self, record_id: str, answer: dict[str, Any]) -> None:
        """The server has the request; if IT had already answered it (a resend), that answer shows."""
        now = datetime.now(timezone.utc).isoformat()
        statuses = moved_to(read_statuses(self.state_dir), record_id, "sent", "", now)
        decision = answer.get("decision")
        if decision in ("approved", "declined"):
            statuses = moved_to(statuses, record_id, decision, str(answer.get("message") or ""), now)
        write_statuses(self.state_dir, statuses)

    def note_refused_requests(self) -> None:
        """A request the server refused for good (kept in the outbox's rejected table) is no longer
        "waiting": the tray shows that it was not sent, and why."""
        statuses = read_statuses(self.state_dir)
        waiting = {s.record_id for s in statuses if s.state == "waiting"}
        rejected = self.outbox.rejected_items()
        self.lost.reports_refused(rejected)
        refused = [item for item in rejected if item.kind == "approval_request" and item.record_id in waiting]
        if not refused:
            return
        now = datetime.now(timezone.utc).isoformat()
        for item in refused:
            message = (
                f"the district's server refused it ({item.reason[:300]}); please tell your school's IT team."
            )
            statuses = moved_to(statuses, item.record_id, "refused", message, now)
        write_statuses(self.state_dir, statuses)

    def apply_approval_answers(self, answers: object) -> None:
        """IT's answers, in a heartbeat's signed answer: each moves its request to approved or declined.
        An approval arrives with the requirements that approve the app, applied in the same answer."""
        if not isinstance(answers, list) or not answers:
            return
        statuses = read_statuses(self.state_dir)
        now = datetime.now(timezone.utc).isoformat()
        for answer in answers:
            if not isinstance(answer, dict) or answer.get("decision") not in ("approved", "declined"):
                continue
            message = str(answer.get("message") or "")[:1000]
            statuses = moved_to(statuses, str(answer.get("request_id")), answer["decision"], message, now)
            log.info("IT %s the request %s", answer["decision"], printable(str(answer.get("request_id"))))
        write_statuses(self.state_dir, statuses)

    # --- trusting only this district's server ------------------------------------------------------

    @property
    def refused_answers(self) -> RefusedAnswers:
        return RefusedAnswers(self.state_dir)

    def _answer_refused(self, enrolment: EnrolmentRecord, item: OutboxItem, why: str) -> None:
        log.warning(
            "refused the answer from %s to %s %s, nothing in it applied: %s",
            enrolment.server_url,
            item.kind,
            item.record_id,
            why,
        )
        self.refused_answers.record(why, enrolment.server_url, datetime.now(timezone.utc).isoformat())

    def _pin_server_key(self, enrolment: EnrolmentRecord, server_key: str) -> None:
        """Enrolled before keys were pinned: the first signed answer's key is pinned, and how is kept."""
        how = f"from the first signed answer over {transport_of(enrolment.server_url)}"
        when = datetime.now(timezone.utc).isoformat()
        log.warning("pinned the server's signing key %s (%s)", server_key, how)
        write_enrolment(
            self.state_dir,
            replace(enrolment, server_public_key=server_key, server_key_pinned=f"{how}, {when}"),
        )

    def _with_refused_answers(self, body: dict[str, Any]) -> dict[str, Any]:
        """A heartbeat tells IT of answers refused since the last one that did (then they are carried)."""
        pending = self.refused_answers.pending()
        if pending is not None:
            body["refused_answers"] = pending
            self.refused_answers.carried(pending)
        return body

    # --- the long-running service ---------------------------------------------------------------

    @staticmethod
    def _log_cycle(result: CycleResult) -> None:
        """One INFO line per cycle that checked, queued or sent (agent/service_log.py)."""
        drained = result.drained
        line = cycle_line(
            result.checked,
            result.reported,
            result.heartbeat,
            drained.delivered if drained else 0,
            drained.rejected if drained else 0,
            result.queued_after,
        )
        if line:
            log.info("%s", line)

    def run_forever(self, stop: threading.Event | None = None, tick: float = 5.0) -> None:
        stop = stop or threading.Event()
        if self.keys.backend == "file":  # said once, in the service's log; `status` says it to a person
            log.warning("device key: %s", self.keys.description)

        def request_stop(_signum: int, _frame: object) -> None:
            stop.set()
            self.wake.set()

        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, request_stop)
            signal.signal(signal.SIGINT, request_stop)
        watch = self.start_install_watch()
        while not stop.is_set():
            self.wake.clear()  # before the cycle: an install seen during it wakes the next one at once
            try:
                self._log_cycle(self.cycle())
            except Exception:
                log.exception("check cycle failed; trying again in %s s", tick)
            self.wake.wait(tick)  # woken early by an install event or a stop request
        if watch is not None:
            watch.stop()
        self.outbox.close()
