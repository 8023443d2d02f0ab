"""Screen lock on macOS: the screen locks with a password after at most N idle minutes.

The rule. macOS locks in two steps: after some idle time the screen saver
starts or the display turns off, whichever comes first, and then, after the
lock delay, a password is needed. So the longest time an unattended Mac stays
open is

    lock time = min(screen saver idle time, display sleep time) + lock delay

where a time of 0 means "never" and drops out of the min; if both are never,
the Mac never locks. Display sleep differs between battery and power adapter,
so every power source is computed and the worst one counts: a laptop left on
its charger all day matters as much as one on battery. The check passes when
the lock time is at most `screen_lock_max_idle_minutes`.

Where each part is read (all per user, so this runs in the user's session):
- lock delay: `sysadminctl -screenLock status` (macOS 13+), which writes to
  stderr "screenLock delay is 300 seconds", "screenLock delay is immediate" or
  "screenLock is off";
- screen saver idle time: `defaults -currentHost read com.apple.screensaver
  idleTime`, in seconds;
- display sleep: `pmset -g custom`, minutes per power source (`pmset -g`, the
  settings in use now, when custom cannot be read).

When the screen saver time was never set, macOS uses a built-in default this
check does not assume: the verdict then rests on display sleep alone, and is
`unknown` only when display sleep alone is not enough to pass.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from agent.checks.context import CheckContext
from agent.checks.results import Finding, broken, failed, passed, unknown
from agent.probes import CommandOutput
from agent.probes.macos import macos_major

SYSADMINCTL_SCREENLOCK = ["/usr/sbin/sysadminctl", "-screenLock", "status"]
SCREENSAVER_IDLE_TIME = ["/usr/bin/defaults", "-currentHost", "read", "com.apple.screensaver", "idleTime"]
PMSET_CUSTOM = ["/usr/bin/pmset", "-g", "custom"]
PMSET_IN_USE = ["/usr/bin/pmset", "-g"]
FIRST_MACOS_WITH_SCREENLOCK_STATUS = 13
NOT_SET = "does not exist"  # from "The domain/default pair of (...) does not exist"
POWER_SOURCE_NAMES = {"AC Power": "the power adapter", "Battery Power": "battery", "UPS Power": "UPS power"}
OS_REFUSALS = ("operation not permitted", "not authorized", "permission denied")


@dataclass(frozen=True)
class LockDelay:
    """How long after the screen saver or display sleep a password is asked; `off` when never."""

    off: bool
    seconds: int = 0


@dataclass(frozen=True)
class ScreenLockSettings:
    delay: LockDelay
    screensaver_idle_seconds: int | None  # None: not set (macOS default applies) or unreadable
    display_sleep_minutes: dict[str, int]  # power source -> minutes, 0 = never; empty when unreadable


@dataclass(frozen=True)
class LockTime:
    """One power source's lock time. `seconds` None means never; `certain` False means an
    unread setting could make it sooner."""

    source: str
    seconds: int | None
    certain: bool


_OFF = re.compile(r"screenLock is off", re.IGNORECASE)
_IMMEDIATE = re.compile(r"screenLock (?:delay )?is immediate", re.IGNORECASE)
_DELAY = re.compile(r"screenLock delay is (-?[0-9]+)(?:\.[0-9]+)? seconds?", re.IGNORECASE)
_SECTION = re.compile(r"^(\S.*?):\s*$")
_DISPLAYSLEEP = re.compile(r"^\s+displaysleep\s+([0-9]+)\b")


def parse_screenlock_status(text: str) -> LockDelay | None:
    """A negative delay is how some releases print "off"."""
    if _OFF.search(text):
        return LockDelay(off=True)
    if _IMMEDIATE.search(text):
        return LockDelay(off=False, seconds=0)
    match = _DELAY.search(text)
    if match is None:
        return None
    seconds = int(match.group(1))
    return LockDelay(off=True) if seconds < 0 else LockDelay(off=False, seconds=seconds)


def parse_idle_time(text: str) -> int | None:
    try:
        return max(0, round(float(text.strip())))
    except ValueError:
        return None


def parse_pmset_display_sleep(text: str) -> dict[str, int]:
    """displaysleep per section ("Battery Power", "AC Power", "Currently in use", ...)."""
    found: dict[str, int] = {}
    section = "in use"
    for line in text.splitlines():
        header = _SECTION.match(line)
        if header:
            section = header.group(1).strip()
            continue
        value = _DISPLAYSLEEP.match(line)
        if value:
            found[section] = int(value.group(1))
    return found


def lock_times(settings: ScreenLockSettings) -> list[LockTime]:
    saver = settings.screensaver_idle_seconds
    sources: dict[str, int | None] = dict(settings.display_sleep_minutes) or {"display sleep unknown": None}
    times: list[LockTime] = []
    for source, display_minutes in sources.items():
        idle_candidates = [
            t
            for t in (saver, display_minutes * 60 if display_minutes is not None else None)
            if t is not None and t > 0
        ]
        certain = saver is not None and display_minutes is not None
        idle = min(idle_candidates) if idle_candidates else None
        seconds = None if idle is None else idle + settings.delay.seconds
        times.append(LockTime(source, seconds, certain))
    return times


def decide_screen_lock(
    settings: ScreenLockSettings, max_minutes: int, read_problems: dict[str, str] | None = None
) -> Finding:
    limit = max_minutes * 60
    remedy = (
        f"Make your screen lock sooner: System Settings → Lock Screen → set “Start Screen Saver when "
        f"inactive” to {max_minutes} minutes or less, and “Require password after screen saver begins or "
        "display is turned off” to “Immediately”."
    )
    evidence: dict[str, object] = {
        "max_idle_minutes": max_minutes,
        "lock_off": settings.delay.off,
        "lock_delay_seconds": None if settings.delay.off else settings.delay.seconds,
        "screensaver_idle_seconds": settings.screensaver_idle_seconds,
        "display_sleep_minutes": settings.display_sleep_minutes,
        **(read_problems or {}),
    }
    if settings.delay.off:
        return failed(
            "The screen never asks for a password after the screen saver or display sleep", remedy, **evidence
        )
    times = lock_times(settings)
    evidence["lock_seconds"] = {t.source: t.seconds for t in times}
    too_late = [t for t in times if t.certain and (t.seconds is None or t.seconds > limit)]
    if too_late:
        worst = max(too_late, key=lambda t: float("inf") if t.seconds is None else t.seconds)
        when = "never locks" if worst.seconds is None else f"locks only after {worst.seconds / 60:g} minutes"
        where = f" on {POWER_SOURCE_NAMES[worst.source]}" if worst.source in POWER_SOURCE_NAMES else ""
        return failed(f"The screen {when}{where} (the limit is {max_minutes})", remedy, **evidence)
    if all(t.seconds is not None and t.seconds <= limit for t in times):
        longest = max(t.seconds or 0 for t in times)
        return passed(f"The screen locks after at most {longest / 60:g} minutes idle", **evidence)
    return unknown(
        "The lock time depends on a setting that cannot be read (a screen saver time never set "
        "uses macOS's built-in default, or the display sleep time could not be read)",
        remedy,
        **evidence,
    )


def read_display_sleep(ctx: CheckContext) -> tuple[dict[str, int], str | None]:
    problems: list[str] = []
    for argv in (PMSET_CUSTOM, PMSET_IN_USE):
        output = ctx.probes.run(argv, probe_id="macos.pmset." + argv[-1].lstrip("-"))
        if output.ok:
            found = parse_pmset_display_sleep(output.stdout)
            if found:
                return found, None
            problems.append(f"{' '.join(argv)}: no displaysleep")
        else:
            problems.append(output.describe())
    return {}, "; ".join(problems)


def read_screensaver_idle(ctx: CheckContext) -> tuple[int | None, str | None]:
    output = ctx.probes.run(SCREENSAVER_IDLE_TIME, probe_id="macos.screensaver.idle-time")
    if output.ok:
        value = parse_idle_time(output.stdout)
        return value, None if value is not None else f"idleTime is not a number: {output.stdout.strip()!r}"
    if output.error is None and NOT_SET in (output.stderr + output.stdout):
        return None, "not set"
    return None, output.describe()


def lock_delay_problem(output: CommandOutput, os_version: str) -> Finding:
    text = output.stderr + output.stdout
    if output.error:
        return broken(f"could not run sysadminctl: {output.describe()}")
    if any(phrase in text.lower() for phrase in OS_REFUSALS):
        return unknown(
            "macOS refused to tell this account the screen-lock delay: "
            "it is read in the logged-in user's own session (the Homeroom tray)",
            detail=output.describe(),
        )
    major = macos_major(os_version)
    if major is not None and major < FIRST_MACOS_WITH_SCREENLOCK_STATUS:
        return unknown(
            f"macOS {os_version} does not report the screen-lock delay (that needs macOS 13 or later)",
            "Update macOS: System Settings → General → Software Update.",
            detail=output.describe(),
        )
    return broken(
        "sysadminctl -screenLock status answered in a way this agent does not recognise",
        output=text.strip()[:300],
        exit_code=output.exit_code,
    )


def check(ctx: CheckContext) -> Finding:
    status = ctx.probes.run(SYSADMINCTL_SCREENLOCK, probe_id="macos.screenlock.status")
    delay = parse_screenlock_status(status.stderr + "\n" + status.stdout) if status.error is None else None
    if delay is None:
        return lock_delay_problem(status, ctx.platform.os_version)
    idle, idle_problem = read_screensaver_idle(ctx)
    display, display_problem = read_display_sleep(ctx)
    problems = {
        key: value
        for key, value in (
            ("screensaver_idle_problem", idle_problem),
            ("display_sleep_problem", display_problem),
        )
        if value
    }
    return decide_screen_lock(
        ScreenLockSettings(delay, idle, display), ctx.requirements.screen_lock_max_idle_minutes, problems
    )
