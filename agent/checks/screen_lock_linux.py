"""Screen lock on Linux desktops: GNOME (and Ubuntu, Budgie), Cinnamon, KDE Plasma, XFCE.

The time until the screen is locked is the idle time before the screen
blanks plus the lock delay after that: GNOME's `idle-delay` + `lock-delay`
(seconds; an idle-delay of 0 means the screen never blanks, so it never
locks), KDE's `Timeout` (minutes) + `LockGrace` (seconds), XFCE's idle
activation delay + lock delay (minutes). These are per-user settings, so
this check runs in the user's own session (the tray); run as a service with
no desktop it says so instead of reading root's settings.
"""

from __future__ import annotations

import contextlib
import xml.etree.ElementTree as ET
from dataclasses import dataclass

from agent.checks.context import CheckContext
from agent.checks.results import Finding, broken, failed, passed, unknown
from agent.probes import Probes
from agent.probes.linux import read_ini

GNOME_REMEDY = (
    "Turn on the automatic screen lock: Settings → Privacy → Screen Lock → Automatic Screen Lock on, "
    "and set Blank Screen Delay to {limit} minutes or less."
)
CINNAMON_REMEDY = (
    "Turn on the screen lock: System Settings → Screensaver → Lock the computer when put to sleep, "
    "with the screensaver starting after {limit} minutes or less."
)
KDE_REMEDY = (
    "Turn on the screen lock: System Settings → Screen Locking → Lock screen automatically after "
    "{limit} minutes or less."
)
XFCE_REMEDY = (
    "Turn on the screen lock: Settings → Screensaver → Lock Screen → Enable Lock Screen, "
    "with the screensaver starting after {limit} minutes or less."
)


@dataclass(frozen=True)
class LockSettings:
    desktop: str
    lock_enabled: bool
    idle_seconds: int  # 0: the screen never blanks by itself
    lock_delay_seconds: int

    @property
    def locks_after_seconds(self) -> int | None:
        """None when the screen never locks by itself."""
        if not self.lock_enabled or self.idle_seconds <= 0:
            return None
        return self.idle_seconds + self.lock_delay_seconds


def parse_gvariant_uint(text: str) -> int:
    """`gsettings get` prints unsigned values as `uint32 300`."""
    return int(text.strip().split()[-1])


def parse_gvariant_bool(text: str) -> bool:
    value = text.strip()
    if value not in {"true", "false"}:
        raise ValueError(f"not a boolean: {value!r}")
    return value == "true"


def parse_kscreenlockerrc(text: str) -> LockSettings:
    """KDE's defaults apply to missing keys: Autolock on, Timeout 5 minutes, LockGrace 5 seconds."""
    parser = read_ini(text)
    daemon = parser["Daemon"] if parser.has_section("Daemon") else {}
    autolock = str(daemon.get("Autolock", "true")).strip().casefold() != "false"
    timeout_minutes = int(str(daemon.get("Timeout", "5")).strip() or "5")
    grace = int(str(daemon.get("LockGrace", "5")).strip() or "5")
    return LockSettings("KDE", autolock, timeout_minutes * 60, grace)


def _xfconf_value(root: ET.Element, path: str) -> str | None:
    node: ET.Element | None = root
    for name in path.strip("/").split("/"):
        if node is None:
            return None
        node = next((p for p in node.findall("property") if p.get("name") == name), None)
    return None if node is None else node.get("value")


def parse_xfce_screensaver_xml(text: str) -> LockSettings:
    """xfce4-screensaver's xfconf channel; its defaults fill what the file leaves out."""
    root = ET.fromstring(text)  # noqa: S314 - the user's own settings file, not network input
    saver_on = (_xfconf_value(root, "/saver/enabled") or "true") == "true"
    idle_on = (_xfconf_value(root, "/saver/idle-activation/enabled") or "true") == "true"
    idle_minutes = int(_xfconf_value(root, "/saver/idle-activation/delay") or "5")
    lock_on = (_xfconf_value(root, "/lock/enabled") or "true") == "true"
    lock_with_saver = (_xfconf_value(root, "/lock/saver-activation/enabled") or "true") == "true"
    lock_minutes = int(_xfconf_value(root, "/lock/saver-activation/delay") or "0")
    return LockSettings(
        "XFCE",
        saver_on and lock_on and lock_with_saver,
        idle_minutes * 60 if idle_on else 0,
        lock_minutes * 60,
    )


def decide(settings: LockSettings, limit_minutes: int, remedy: str) -> Finding:
    evidence = {
        "desktop": settings.desktop,
        "lock_enabled": settings.lock_enabled,
        "idle_seconds": settings.idle_seconds,
        "lock_delay_seconds": settings.lock_delay_seconds,
        "limit_minutes": limit_minutes,
    }
    fix = remedy.format(limit=limit_minutes)
    after = settings.locks_after_seconds
    if not settings.lock_enabled:
        return failed("the screen does not lock automatically", fix, **evidence)
    if after is None:
        return failed("the screen never blanks by itself, so it never locks", fix, **evidence)
    minutes = after / 60
    if after <= limit_minutes * 60:
        return passed(f"the screen locks after {minutes:g} minutes idle", **evidence)
    return failed(
        f"the screen locks only after {minutes:g} minutes idle (limit {limit_minutes})", fix, **evidence
    )


def _gsettings(probes: Probes, schema: str, key: str) -> str:
    out = probes.run(["gsettings", "get", schema, key], probe_id=f"linux.gsettings {schema} {key}")
    if not out.ok:
        raise LookupError(out.describe())
    return out.stdout


def gnome_like(probes: Probes, desktop: str, prefix: str) -> LockSettings:
    """GNOME and Cinnamon keep the same keys under different schema names."""
    lock = parse_gvariant_bool(_gsettings(probes, f"{prefix}.desktop.screensaver", "lock-enabled"))
    delay = parse_gvariant_uint(_gsettings(probes, f"{prefix}.desktop.screensaver", "lock-delay"))
    idle = parse_gvariant_uint(_gsettings(probes, f"{prefix}.desktop.session", "idle-delay"))
    if prefix == "org.gnome":
        # Lockdown (set by an administrator or an extension) removes the lock screen altogether.
        with contextlib.suppress(LookupError, ValueError):
            if parse_gvariant_bool(_gsettings(probes, "org.gnome.desktop.lockdown", "disable-lock-screen")):
                lock = False
    return LockSettings(desktop, lock, idle, delay)


def check(ctx: CheckContext) -> Finding:
    desktops = {part.casefold() for part in ctx.platform.desktop.split(":") if part}
    limit = ctx.requirements.screen_lock_max_idle_minutes
    config_home = f"{ctx.platform.home}/.config"
    try:
        if desktops & {"kde"}:
            content = ctx.probes.read_file(f"{config_home}/kscreenlockerrc")
            if content.text is None and not content.missing:
                return broken(f"could not read {content.path}: {content.error}")
            return decide(parse_kscreenlockerrc(content.text or ""), limit, KDE_REMEDY)
        if desktops & {"xfce"}:
            path = f"{config_home}/xfce4/xfconf/xfce-perchannel-xml/xfce4-screensaver.xml"
            content = ctx.probes.read_file(path)
            if content.text is None:
                return unknown(
                    f"the XFCE screensaver settings were not found ({content.error})",
                    XFCE_REMEDY.format(limit=limit),
                )
            return decide(parse_xfce_screensaver_xml(content.text), limit, XFCE_REMEDY)
        if desktops & {"x-cinnamon", "cinnamon"}:
            return decide(gnome_like(ctx.probes, "Cinnamon", "org.cinnamon"), limit, CINNAMON_REMEDY)
        if desktops & {"gnome", "ubuntu", "unity", "budgie", "pop"}:
            return decide(gnome_like(ctx.probes, "GNOME", "org.gnome"), limit, GNOME_REMEDY)
    except LookupError as exc:
        return unknown(f"the desktop's screen-lock settings could not be read: {exc}")
    except (ValueError, ET.ParseError) as exc:
        return broken(f"the screen-lock settings could not be understood: {exc}")
    if not desktops:
        return unknown(
            "no desktop session here: the screen lock is a per-user setting, read in the user's own "
            "session (the Homeroom tray)"
        )
    return unknown(f"screen-lock settings of the {ctx.platform.desktop} desktop are not known to Homeroom")
