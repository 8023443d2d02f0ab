"""The tray icon in each person's session: a coloured light for the laptop, a menu, gentle notifications.

It only reads what the service (root) publishes in its state directory
(`status.json`, `policies/`) and hands requests back by dropping one JSON file
per record into the service's `inbox/`. It also runs the user-context checks
(screen lock), whose settings only the user's own session can read.

The decisions (colour, tooltip, when to notify) live in `agent.desktop.tray_state`;
windows open in a separate process (`agent.desktop.panels`) so Tk's main loop
never shares a thread with the tray backend's GTK loop.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

from PIL import Image, ImageDraw

from agent.approval_status import ANSWERED, for_user, read_statuses
from agent.checks import select
from agent.checks.context import CheckContext
from agent.checks.runner import run_checks
from agent.config import load_agent_config
from agent.desktop.approval_request import form_command
from agent.desktop.consent.decide import is_signed
from agent.desktop.consent.flow import applicable_policy, ask_if_needed, policy_title, reading_level
from agent.desktop.consent.records import SIGNOFFS_FILE, SignOffLog, user_dir
from agent.desktop.handoff import INBOX_DIR, write_entry
from agent.desktop.lost_notice import notice_command
from agent.desktop.lost_report import form_command as lost_form_command
from agent.desktop.lost_report import read_copy, with_outcomes, write_copy
from agent.desktop.lost_view import ended_words, lost_state, untold
from agent.desktop.tray_state import (
    Colour,
    Notification,
    NotifyMemory,
    StatusSnapshot,
    TrayState,
    approval_notifications,
    merge_results,
    not_running_state,
    notifications,
    parse_status,
    service_stopped,
    tray_state,
)
from agent.lost.lock import lock_screen
from agent.lost.mode import read_history, read_notice
from agent.lost.reports import read_report_statuses, status_map
from agent.probes import LiveProbes
from agent.probes.facts import detect
from agent.state import STATUS_FILE, requirements_in_effect, write_atomically
from contract import __version__
from contract.errors import ConfigError
from contract.requirements import Requirements, load_requirements

log = logging.getLogger("homeroom.tray")

POLL_SECONDS = 3.0
USER_CHECK_MINUTES = 15.0
ICON_SIZE = 64
COLOURS: dict[Colour, str] = {
    "green": "#2E7D32",
    "amber": "#F9A825",
    "red": "#C62828",
    "grey": "#616161",
    "lost": "#4A148C",  # lost mode with a notice: a colour and a shape no other state has
}

MENU_STATUS = "My laptop's status"
MENU_CHECK_NOW = "Check now"
MENU_ASK_APPROVAL = "Ask IT to approve an app…"
MENU_REPORT_LOST = "Report lost or stolen…"
MENU_POLICY = "Acceptable Use Policy"
MENU_COLLECTS = "What Homeroom collects"
MENU_ABOUT = "About"
MENU_QUIT = "Quit"
MENU_ITEMS = (
    MENU_STATUS,
    MENU_CHECK_NOW,
    MENU_POLICY,
    MENU_COLLECTS,
    MENU_ASK_APPROVAL,
    MENU_REPORT_LOST,
    MENU_ABOUT,
    MENU_QUIT,
)


Symbol = Literal["tick", "exclamation", "cross", "dash", "ring"]
# Colour alone fails a colour-blind person (red and green look alike to many): each state has its shape.
SYMBOLS: dict[Colour, Symbol] = {
    "green": "tick",
    "amber": "exclamation",
    "red": "cross",
    "grey": "dash",
    "lost": "ring",
}
INK: dict[Colour, tuple[int, int, int, int]] = {
    "lost": (255, 255, 255, 255),
    "green": (255, 255, 255, 255),
    "amber": (33, 33, 33, 255),  # dark on yellow: white would barely show
    "red": (255, 255, 255, 255),
    "grey": (255, 255, 255, 255),
}


def draw_icon(colour: Colour, size: int = ICON_SIZE) -> Image.Image:
    """A rounded square in the state's colour with the state's symbol, drawn from shapes (no font needed)."""
    image = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    draw.rounded_rectangle((0, 0, size - 1, size - 1), radius=size // 5, fill=COLOURS[colour])
    ink, stroke = INK[colour], max(2, size // 7)

    def at(x: float, y: float) -> tuple[int, int]:
        return round(x * size), round(y * size)

    symbol = SYMBOLS[colour]
    if symbol == "tick":
        draw.line([at(0.22, 0.52), at(0.42, 0.72), at(0.78, 0.30)], fill=ink, width=stroke, joint="curve")
    elif symbol == "cross":
        draw.line([at(0.28, 0.28), at(0.72, 0.72)], fill=ink, width=stroke)
        draw.line([at(0.72, 0.28), at(0.28, 0.72)], fill=ink, width=stroke)
    elif symbol == "ring":  # lost mode: a ring with a dot, like a map's "you are here"
        draw.ellipse((*at(0.22, 0.22), *at(0.78, 0.78)), outline=ink, width=stroke)
        draw.ellipse((*at(0.42, 0.42), *at(0.58, 0.58)), fill=ink)
    elif symbol == "exclamation":
        draw.rectangle((*at(0.43, 0.16), *at(0.57, 0.60)), fill=ink)
        draw.rectangle((*at(0.43, 0.70), *at(0.57, 0.84)), fill=ink)
    else:
        draw.rectangle((*at(0.22, 0.43), *at(0.78, 0.57)), fill=ink)
    return image


def title_for(backend: str, text: str) -> str:
    """The tooltip as the backend can show it: pystray's xorg backend sets WM_NAME, which is Latin-1 only."""
    if not backend.endswith("_xorg"):
        return text
    plain = text.translate({0x2014: "-", 0x2013: "-", 0x2192: "->", 0x2018: "'", 0x2019: "'", 0x2026: "..."})
    return plain.encode("latin-1", errors="replace").decode("latin-1")


def user_requirements(state_dir: Path) -> Requirements:
    """What the service checks against, so the tray's own checks use the same thresholds."""

    def local() -> Requirements:
        try:
            return load_requirements()
        except ConfigError as exc:
            log.warning("using the default requirements: %s", exc)
            return Requirements()

    return requirements_in_effect(state_dir, local)


def run_user_checks(state_dir: Path) -> list[dict[str, Any]]:
    """The checks that read this person's own settings, as CheckResult JSON."""
    requirements = user_requirements(state_dir)
    specs = select(requirements.enabled, where="user")
    if not specs:
        return []
    ctx = CheckContext(LiveProbes(), detect(), requirements, datetime.now(timezone.utc), None)
    return [r.to_json() for r in run_checks(specs, ctx, requirements.check_timeout_seconds)]


class Tray:
    """The tray's state and actions, kept apart from pystray so they can be driven without a display."""

    def __init__(self, state_dir: Path, user_dir: Path, account: str, notify: Callable[[str, str], None]):
        self.state_dir = state_dir
        self.user_dir = user_dir
        self.account = account
        self.notify = notify
        self.snapshot = StatusSnapshot()
        self.user_results: list[dict[str, Any]] = []
        self.state: TrayState | None = None
        self.signoff_pending = True
        self.signed_policy: Path | None = None
        self.windows: dict[str, subprocess.Popen[bytes]] = {}
        self.lock = threading.Lock()
        self.asking = threading.Lock()
        self.started_at = datetime.now(timezone.utc)
        self.lost_locked_at = float("-inf")
        self.os_name = detect().os

    @property
    def inbox(self) -> Path:
        return self.state_dir / INBOX_DIR

    @property
    def memory_path(self) -> Path:
        return self.user_dir / "tray.json"

    @property
    def approvals_seen_path(self) -> Path:
        return self.user_dir / "approvals-seen.json"

    def results(self) -> list[dict[str, Any]]:
        return merge_results(self.snapshot.results, self.user_results)

    # --- reading ------------------------------------------------------------------------

    def read_status(self) -> StatusSnapshot:
        try:
            return parse_status((self.state_dir / STATUS_FILE).read_text(encoding="utf-8"))
        except OSError:
            return StatusSnapshot()

    def read_signoff(self, now: datetime) -> tuple[bool, Path | None]:
        """Whether this person still has to sign (the consent rules: version, renewal, decline), and the
        policy file that applies. Nothing published yet means nothing to sign."""
        policy = applicable_policy(self.state_dir)
        if isinstance(policy, str):
            return False, None
        document = policy.document
        log_file = SignOffLog(self.user_dir / SIGNOFFS_FILE)
        signed = is_signed(log_file.read(), document.id, document.version, policy.renewal, now)
        return not signed, policy.path

    def load_memory(self) -> NotifyMemory:
        try:
            return NotifyMemory.from_json(json.loads(self.memory_path.read_text(encoding="utf-8")))
        except (OSError, ValueError):
            return NotifyMemory()

    # --- acting --------------------------------------------------------------------------

    def refresh(self, now: datetime | None = None) -> TrayState:
        """Reads the service's status and this person's sign-off; returns the state to show and notifies."""
        with self.lock:
            self.snapshot = self.read_status()
            self.signoff_pending, self.signed_policy = self.read_signoff(now or datetime.now(timezone.utc))
            results = self.results()
            moment = now or datetime.now(timezone.utc)
            if service_stopped(self.snapshot.updated_at, moment, self.started_at):
                state = not_running_state()
            else:
                state = tray_state(results, self.signoff_pending)
            lost = read_notice(self.state_dir)
            state = lost_state(lost["notice"] if lost else None) or state
            if state != self.state:
                log.info("icon: %s — %s", state.colour, state.tooltip)
            self.state = state
            memory = self.load_memory()
            told, memory_after = notifications(memory, results, now or datetime.now(timezone.utc))
            if memory_after != memory:
                try:
                    write_atomically(self.memory_path, json.dumps(memory_after.to_json(), indent=1))
                except OSError as exc:
                    log.warning("could not remember notifications in %s: %s", self.memory_path, exc)
        for note in told + self.approval_answers():
            log.info("notify: %s — %s", note.title, note.message)
            self.notify(note.title, note.message)
        self.keep_lost_notice(lost)
        self.lock_if_asked(lost)
        self.keep_lost_reports()
        return state

    # --- lost and stolen laptops --------------------------------------------------------------

    def report_lost(self) -> None:
        """The form (its own process): this laptop or another, lost or stolen, what happened."""
        self.reap_windows()
        if "lost-report" in self.windows:
            return
        log.info("window: lost-report")
        self.windows["lost-report"] = subprocess.Popen(lost_form_command(self.state_dir, self.account))

    def keep_lost_notice(self, lost: dict[str, Any] | None) -> None:
        """While the district shows a notice, its window is on screen: closed, it opens again at the
        next poll. When lost mode ends it is closed."""
        self.reap_windows()
        window = self.windows.get("lost-notice")
        notice = lost["notice"] if lost else None
        if notice is None:
            if window is not None:
                window.terminate()
                del self.windows["lost-notice"]
            return
        if window is None:
            log.info("window: lost-notice")
            self.windows["lost-notice"] = subprocess.Popen(notice_command(notice))

    def lock_if_asked(self, lost: dict[str, Any] | None, now: float | None = None) -> None:
        """Windows and macOS lock only from inside the user's session: the tray does it, every
        interval while lost mode asks (on Linux the service locks every session itself)."""
        if not lost or not lost["lock_screen"] or self.os_name == "linux":
            return
        moment = time.monotonic() if now is None else now
        if moment - self.lost_locked_at < lost["interval_seconds"]:
            return
        self.lost_locked_at = moment
        if not lock_screen(self.os_name):
            log.warning("lost mode: the screen could not be locked")

    def keep_lost_reports(self) -> None:
        """The person's own copy of their reports, with what the district answered."""
        try:
            kept = read_copy(self.user_dir)
            if not kept:
                return
            updated = with_outcomes(kept, status_map(read_report_statuses(self.state_dir)))
            if updated != kept:
                write_copy(self.user_dir, updated)
        except OSError as exc:
            log.warning("could not keep your lost-device reports in %s: %s", self.user_dir, exc)

    @property
    def lost_told_path(self) -> Path:
        return self.user_dir / "lost-told.json"

    def tell_ended_lost_mode(self) -> bool:
        """At login: once per person, that location evidence was collected, and between which times."""
        try:
            told = frozenset(json.loads(self.lost_told_path.read_text(encoding="utf-8")))
        except (OSError, ValueError, TypeError):
            told = frozenset()
        news = untold(read_history(self.state_dir), told)
        if not news:
            return False
        log.info("window: lost-ended (%d period(s))", len(news))
        self.windows["lost-ended"] = subprocess.Popen(notice_command(ended_words(news), ended=True))
        try:
            write_atomically(self.lost_told_path, json.dumps(sorted(told | {p.period_id for p in news})))
        except OSError as exc:
            log.warning("could not remember the lost-mode notice in %s: %s", self.lost_told_path, exc)
        return True

    # --- asking IT to approve an app ----------------------------------------------------------

    def my_requests(self) -> list[dict[str, str]]:
        """This person's requests and where each stands (approvals.json, written by the service)."""
        return [
            {"app": s.app, "state": s.state, "message": s.message, "updated_at": s.updated_at}
            for s in for_user(read_statuses(self.state_dir), self.account)
        ]

    def approval_answers(self) -> list[Notification]:
        """IT's answers (and the service's refusals) not yet told, each told once."""
        answered = [
            (s.record_id, s.app, s.state, s.message)
            for s in for_user(read_statuses(self.state_dir), self.account)
            if s.state in ANSWERED
        ]
        if not answered:
            return []
        try:
            seen = frozenset(json.loads(self.approvals_seen_path.read_text(encoding="utf-8")))
        except (OSError, ValueError, TypeError):
            seen = frozenset()
        told, now_seen = approval_notifications(answered, seen)
        if told:
            try:
                write_atomically(self.approvals_seen_path, json.dumps(sorted(now_seen)))
            except OSError as exc:
                log.warning("could not remember answers told in %s: %s", self.approvals_seen_path, exc)
        return told

    def raw_software_result(self) -> list[dict[str, Any]]:
        """The software result with its evidence (the unapproved apps), which the tray's view leaves out."""
        try:
            data = json.loads((self.state_dir / STATUS_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return []
        listed = data.get("results") if isinstance(data, dict) else None
        return [r for r in listed or [] if isinstance(r, dict) and r.get("id") == "software"][:1]

    def ask_for_approval(self) -> None:
        """The form, offering the unapproved apps the last software check found."""
        path = self.user_dir / "tray-approval.json"
        write_atomically(path, json.dumps({"software": self.raw_software_result()}))
        self.reap_windows()
        if "approval" in self.windows:
            return
        log.info("window: approval")
        self.windows["approval"] = subprocess.Popen(form_command(self.state_dir, self.account, path))

    def request_check_now(self) -> Path | None:
        try:
            path = write_entry(self.inbox, "check_now", uuid.uuid4().hex, {"user": self.account})
        except OSError as exc:
            log.warning("could not ask the service to check now (%s): is the Homeroom service running?", exc)
            return None
        log.info("check now requested: %s", path.name)
        return path

    def check_user_context(self) -> Path | None:
        """Runs the user-context checks and hands their results to the service."""
        results = run_user_checks(self.state_dir)
        with self.lock:
            self.user_results = results
        if not results:
            return None
        record = {"user": self.account, "results": results}
        try:
            path = write_entry(self.inbox, "user_results", uuid.uuid4().hex, record)
        except OSError as exc:
            log.warning("could not hand user-context results to the service: %s", exc)
            return None
        log.info("user results: %s", ", ".join(f"{r['id']}={r['status']}" for r in results))
        return path

    def reap_windows(self) -> None:
        """Collects closed windows' processes so none lingers as a zombie."""
        for name, process in list(self.windows.items()):
            if process.poll() is not None:
                del self.windows[name]

    def open_window(self, kind: str, *args: str) -> None:
        """One window of each kind at a time, each in its own process (Tk and GTK loops stay apart)."""
        self.reap_windows()
        if kind in self.windows:
            return
        log.info("window: %s", kind)
        self.windows[kind] = subprocess.Popen([sys.executable, "-m", "agent.desktop.panels", kind, *args])

    def show_status(self) -> None:
        with self.lock:
            results = self.results()
            pending = self.signoff_pending
        data = {
            "results": results,
            "signoff_pending": pending,
            # For the window's "Ask IT to approve an app…" and "Your requests to IT".
            "software": self.raw_software_result(),
            "approvals": self.my_requests(),
            "state_dir": str(self.state_dir),
            "user": self.account,
        }
        path = self.user_dir / "tray-status.json"
        write_atomically(path, json.dumps(data))
        self.open_window("status", str(path))

    def show_policy(self) -> None:
        self.open_window("policy", str(self.signed_policy) if self.signed_policy else "")

    def ask_to_sign(self, at_login: bool) -> None:
        """The sign-off dialog when one is due: at login, and after that as the rules say (one at a time)."""
        if not self.asking.acquire(blocking=False):
            return
        try:
            outcome = ask_if_needed(
                self.state_dir,
                datetime.now(timezone.utc).astimezone(),
                at_login=at_login,
                user=self.account,
                log=SignOffLog(self.user_dir / SIGNOFFS_FILE),
            )
            if outcome.asked:
                log.info("sign-off: %s (%s)", outcome.decision, outcome.note)
        finally:
            self.asking.release()

    def show_about(self) -> None:
        self.open_window(
            "about",
            "--version",
            __version__,
            "--server",
            self.snapshot.server_url or "not enrolled yet",
            "--device",
            self.snapshot.device_id or "not enrolled yet",
        )


def _safe(action: Callable[[], object], name: str, menu: bool = True) -> Callable[[], None]:
    """A handler that logs instead of taking the tray down when an action fails."""

    def handler() -> None:
        if menu:
            log.info("menu: %s", name)
        try:
            action()
        except Exception:  # the tray must outlive any one action
            log.exception("%s failed", name)

    return handler


def menu_names(show_quit: bool) -> tuple[str, ...]:
    """The menu's items; districts hide Quit on student laptops (`[tray] show_quit = false`)."""
    return MENU_ITEMS if show_quit else tuple(name for name in MENU_ITEMS if name != MENU_QUIT)


def refresh_icon(icon: Any, tray: Tray, shown: TrayState) -> TrayState:
    """One poll: read, decide, show. A failure is logged and the next poll tries again, on any backend:
    a tray that stops refreshing would keep showing a colour that is no longer true."""
    try:
        tray.reap_windows()
        current = tray.refresh()
    except Exception:  # the loop must outlive any one bad reading
        log.exception("refresh failed; trying again at the next poll")
        return shown
    try:
        backend = type(icon).__module__
        retitled = current.tooltip != shown.tooltip
        if retitled:
            icon.title = title_for(backend, current.tooltip)
        # On pystray's xorg backend a new title (the window's WM_NAME) can stay queued in python-xlib,
        # unsent, for as long as nothing else is drawn: seen as a window still named "still
        # checking" a minute after the icon turned red. Drawing the icon after it makes a round trip
        # to the X server, which sends everything queued before it.
        if current.colour != shown.colour or (retitled and backend.endswith("_xorg")):
            icon.icon = draw_icon(current.colour)
    except Exception:  # a backend that cannot show this state must not end the polling
        log.exception("the icon could not show %s (%s); polling goes on", current.colour, current.tooltip)
    return current


def load_show_quit(config: Path | None) -> bool:
    """agent.toml's [tray] show_quit; a broken agent.toml is logged and the default (shown) kept."""
    try:
        return (load_agent_config(config) if config else load_agent_config()).tray_show_quit
    except ConfigError as exc:
        log.warning("showing Quit: %s", exc)
        return True


def run_tray(
    state_dir: Path,
    poll_seconds: float = POLL_SECONDS,
    user_check_minutes: float = USER_CHECK_MINUTES,
    show_quit: bool = True,
) -> int:
    """Shows the icon until Quit; polls status.json and runs the user-context checks on schedule."""
    import pystray  # chooses its backend (PYSTRAY_BACKEND, else appindicator/gtk/xorg) on import

    stop = threading.Event()
    wake = threading.Event()
    icon: Any = None

    def notify(title: str, message: str) -> None:
        if icon is None or not getattr(icon, "HAS_NOTIFICATION", False):
            return
        try:
            icon.notify(message, title)
        except Exception as exc:  # noqa: BLE001 - no notification daemon is a normal desktop too
            log.info("notification not shown: %s", exc)

    tray = Tray(state_dir, user_dir(), detect().user, notify)

    def check_now() -> None:
        tray.request_check_now()
        wake.set()

    def quit_tray() -> None:
        stop.set()
        wake.set()
        icon.stop()

    actions: dict[str, Callable[[], object]] = {
        MENU_STATUS: tray.show_status,
        MENU_CHECK_NOW: check_now,
        MENU_ASK_APPROVAL: tray.ask_for_approval,
        MENU_REPORT_LOST: tray.report_lost,
        MENU_POLICY: tray.show_policy,
        MENU_COLLECTS: lambda: tray.open_window("collects", "--level", reading_level(state_dir)),
        MENU_ABOUT: tray.show_about,
        MENU_QUIT: quit_tray,
    }
    names = menu_names(show_quit)
    # The policy item is named like the document ("My School Laptop Promise"), read at start.
    labels = {name: policy_title(state_dir, name) if name == MENU_POLICY else name for name in names}
    items: list[Any] = [
        pystray.MenuItem(labels[name], _safe(actions[name], name), default=name == MENU_STATUS)
        for name in names
    ]
    if show_quit:
        items.insert(len(items) - 1, pystray.Menu.SEPARATOR)
    # The first real reading happens once the icon runs, so a first notification has somewhere to go.
    state = tray_state([], signoff_pending=False)
    icon = pystray.Icon("homeroom", draw_icon(state.colour), state.tooltip, pystray.Menu(*items))
    log.info("backend: %s; menu: %s", type(icon).__module__, " | ".join(labels.values()))

    def poll(icon: Any) -> None:
        icon.visible = True
        shown = state
        next_user_check = 0.0
        next_signoff = time.monotonic() + user_check_minutes * 60
        # The tray starts with the user's session: this is "at login" for the sign-off.
        threading.Thread(
            target=_safe(lambda: tray.ask_to_sign(True), "sign-off", menu=False), daemon=True
        ).start()
        _safe(tray.tell_ended_lost_mode, "lost-mode notice", menu=False)()
        while not stop.is_set():
            try:
                if time.monotonic() >= next_signoff:
                    next_signoff = time.monotonic() + user_check_minutes * 60
                    threading.Thread(
                        target=_safe(lambda: tray.ask_to_sign(False), "sign-off", menu=False), daemon=True
                    ).start()
                if time.monotonic() >= next_user_check or wake.is_set():
                    next_user_check = time.monotonic() + user_check_minutes * 60
                    threading.Thread(
                        target=_safe(tray.check_user_context, "user checks", menu=False), daemon=True
                    ).start()
            except Exception:  # e.g. no thread could be started: the next poll tries again
                log.exception("could not start the scheduled sign-off or user checks")
            wake.clear()
            shown = refresh_icon(icon, tray, shown)
            wake.wait(poll_seconds)

    try:
        icon.run(setup=poll)
    except Exception as exc:  # pystray's GTK backend raises on stop without a notifier
        if not stop.is_set():
            raise
        log.debug("tray stopped: %s", exc)
    stop.set()
    wake.set()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="homeroom-agent tray", description="The Homeroom tray icon.")
    parser.add_argument("--state-dir", type=Path, default=None, help="the service's state directory")
    parser.add_argument("--poll-seconds", type=float, default=POLL_SECONDS)
    parser.add_argument("--config", type=Path, default=None, help="agent.toml (for [tray] show_quit)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    state_dir = args.state_dir or Path(os.environ.get("HOMEROOM_STATE_DIR") or "/var/lib/homeroom")
    return run_tray(state_dir, poll_seconds=args.poll_seconds, show_quit=load_show_quit(args.config))


if __name__ == "__main__":
    sys.exit(main())
