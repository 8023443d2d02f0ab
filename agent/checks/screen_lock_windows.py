"""Screen lock on Windows: the session locks with a password after at most N idle minutes.

Two Windows mechanisms lock an idle session, and the earlier one wins:

1. The password-protected screen saver, per user. It locks after
   ScreenSaveTimeOut seconds when ScreenSaveActive is "1", ScreenSaverIsSecure
   is "1" (“On resume, display logon screen”) and a screen saver is chosen
   (SCRNSAVE.EXE; choosing “(None)” removes it and nothing ever starts). Values
   live in HKCU\\Control Panel\\Desktop as strings; Group Policy writes the same
   names under HKCU\\Software\\Policies\\Microsoft\\Windows\\Control Panel\\Desktop
   and each policy value overrides the user's value of the same name.
2. The machine inactivity limit (Group Policy “Interactive logon: Machine
   inactivity limit”), HKLM\\...\\Policies\\System InactivityTimeoutSecs, a DWORD:
   Windows locks the session after that many seconds, whatever the screen saver.

Pass when the earliest lock comes within ctx.requirements.screen_lock_max_idle_minutes.
This reads HKCU, so it runs in the user's own session. Locking that relies only
on sleep (“Require sign-in when PC wakes up”) is not seen here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from agent.checks.context import CheckContext
from agent.checks.results import Finding, failed, passed, unknown
from agent.probes import RegistryKey

USER_DESKTOP_KEY = "HKCU\\Control Panel\\Desktop"
POLICY_DESKTOP_KEY = "HKCU\\Software\\Policies\\Microsoft\\Windows\\Control Panel\\Desktop"
MACHINE_POLICY_KEY = "HKLM\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Policies\\System"
SCREEN_SAVER_VALUES = ("ScreenSaveActive", "ScreenSaverIsSecure", "ScreenSaveTimeOut", "SCRNSAVE.EXE")
INACTIVITY_LIMIT = "InactivityTimeoutSecs"


@dataclass(frozen=True)
class ScreenLockSettings:
    screen_saver_active: bool
    screen_saver_secure: bool
    screen_saver_chosen: bool
    screen_saver_seconds: int | None
    inactivity_limit_seconds: int | None

    @property
    def screen_saver_lock_seconds(self) -> int | None:
        """When the screen saver locks, or None when it never does."""
        if self.screen_saver_active and self.screen_saver_secure and self.screen_saver_chosen:
            return self.screen_saver_seconds
        return None

    @property
    def lock_seconds(self) -> int | None:
        """The earliest lock of either mechanism, or None when nothing locks."""
        candidates = [s for s in (self.screen_saver_lock_seconds, self.inactivity_limit_seconds) if s]
        return min(candidates) if candidates else None

    def to_json(self) -> dict[str, object]:
        return {
            "screen_saver_active": self.screen_saver_active,
            "screen_saver_secure": self.screen_saver_secure,
            "screen_saver_chosen": self.screen_saver_chosen,
            "screen_saver_timeout_seconds": self.screen_saver_seconds,
            "inactivity_limit_seconds": self.inactivity_limit_seconds,
            "lock_after_seconds": self.lock_seconds,
        }


def _seconds(value: Any) -> int | None:
    """A positive number of seconds from a REG_SZ ("900") or REG_DWORD (900); None when absent or zero."""
    if isinstance(value, bool):
        return None
    try:
        number = int(str(value).strip()) if value is not None else 0
    except ValueError:
        return None
    return number if number > 0 else None


def effective_screen_saver(user: dict[str, Any], policy: dict[str, Any]) -> dict[str, Any]:
    """The user's values with each policy value of the same name laid over them."""
    merged = {name: user[name] for name in SCREEN_SAVER_VALUES if name in user}
    merged.update({name: policy[name] for name in SCREEN_SAVER_VALUES if name in policy})
    return merged


def parse_settings(
    user: dict[str, Any], policy: dict[str, Any], machine: dict[str, Any]
) -> ScreenLockSettings:
    values = effective_screen_saver(user, policy)
    return ScreenLockSettings(
        screen_saver_active=str(values.get("ScreenSaveActive", "")).strip() == "1",
        screen_saver_secure=str(values.get("ScreenSaverIsSecure", "")).strip() == "1",
        screen_saver_chosen=bool(str(values.get("SCRNSAVE.EXE", "")).strip()),
        screen_saver_seconds=_seconds(values.get("ScreenSaveTimeOut")),
        inactivity_limit_seconds=_seconds(machine.get(INACTIVITY_LIMIT)),
    )


def remedy(max_minutes: int) -> str:
    return (
        f"Set the screen to lock after {max_minutes} minutes: Settings → Personalization → Lock screen → "
        f"Screen saver → choose a screen saver, set Wait to {max_minutes} minutes or less and tick "
        "“On resume, display logon screen”."
    )


def _minutes(seconds: int) -> str:
    return f"{seconds / 60:g} minutes"


def decide(settings: ScreenLockSettings, max_minutes: int) -> Finding:
    evidence = {**settings.to_json(), "max_idle_minutes": max_minutes}
    lock = settings.lock_seconds
    if lock is not None and lock <= max_minutes * 60:
        return passed(f"the screen locks after {_minutes(lock)} idle", **evidence)
    if lock is not None:
        return failed(
            f"the screen locks only after {_minutes(lock)} idle (the district allows {max_minutes})",
            remedy(max_minutes),
            **evidence,
        )
    if settings.screen_saver_active and settings.screen_saver_seconds and not settings.screen_saver_secure:
        why = "the screen saver does not ask for a password on resume"
    elif settings.screen_saver_active and settings.screen_saver_seconds and not settings.screen_saver_chosen:
        why = "no screen saver is chosen, so it never starts"
    else:
        why = "no screen saver timeout and no inactivity limit are set"
    return failed(f"the screen never locks by itself: {why}", remedy(max_minutes), **evidence)


def _values(key: RegistryKey, names: tuple[str, ...]) -> dict[str, Any] | None:
    """The key's values among `names` (any spelling); {} when the key does not exist; None when unread."""
    if key.missing:
        return {}
    if key.error:
        return None
    return key.values_named(names)


def check(ctx: CheckContext) -> Finding:
    keys = [
        ctx.probes.registry_key(path) for path in (USER_DESKTOP_KEY, POLICY_DESKTOP_KEY, MACHINE_POLICY_KEY)
    ]
    wanted = (SCREEN_SAVER_VALUES, SCREEN_SAVER_VALUES, (INACTIVITY_LIMIT,))
    values = [_values(key, names) for key, names in zip(keys, wanted, strict=True)]
    max_minutes = ctx.requirements.screen_lock_max_idle_minutes
    user, policy, machine = (v if v is not None else {} for v in values)
    settings = parse_settings(user, policy, machine)
    unread = [key for key, v in zip(keys, values, strict=True) if v is None]
    if unread and not (settings.lock_seconds and settings.lock_seconds <= max_minutes * 60):
        problems = {key.path: key.error for key in unread}
        return unknown(
            "the screen-lock settings could not be read: "
            + "; ".join(f"{p}: {e}" for p, e in problems.items()),
            "Ask your school's IT team to check the screen-lock settings on this laptop.",
            unreadable=problems,
        )
    return decide(settings, max_minutes)
