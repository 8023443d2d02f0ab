"""Firewall on macOS: the application firewall's global state.

The application firewall has three states: 0 off, 1 on (signed and allowed
apps may accept connections), 2 on and blocking all incoming connections but
the essential ones. 1 and 2 pass. `socketfilterfw --getglobalstate` prints it
as "Firewall is enabled. (State = 1)".

socketfilterfw is asked first: it reports the state in force. The old
preference file /Library/Preferences/com.apple.alf.plist (key `globalstate`)
is gone from macOS 15 on, so it is only a fallback on macOS 14 and older, and
only when the version is known: an unknown version never falls back, because
reading a leftover file would be a guess.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from agent.checks.context import CheckContext
from agent.checks.results import Advice, Finding, broken, failed, passed
from agent.probes.macos import macos_major, read_plist

SOCKETFILTERFW_GLOBAL_STATE = ["/usr/libexec/ApplicationFirewall/socketfilterfw", "--getglobalstate"]
ALF_PLIST = "/Library/Preferences/com.apple.alf.plist"
LAST_MACOS_WITH_ALF_PLIST = 14
STATE_NAMES = {0: "off", 1: "on", 2: "on, blocking all incoming connections"}
SOCKETFILTERFW_PROBE = "macos.firewall.globalstate"
TURN_ON_FIREWALL = Advice(
    "Turn on the firewall: System Settings → Network → Firewall.",
    "Ask your school's IT team to turn on the firewall on this Mac.",
    "sudo /usr/libexec/ApplicationFirewall/socketfilterfw --setglobalstate on (or an MDM firewall profile)",
)


@dataclass(frozen=True)
class FirewallState:
    state: int  # 0, 1 or 2, as the application firewall numbers it
    source: str


_STATE = re.compile(r"\(State\s*=\s*([0-9]+)\)")


def parse_global_state(text: str) -> int | None:
    """The state number, or None when socketfilterfw said something else.

    Older releases print the sentence without "(State = N)"; the sentence alone
    then decides between 0 and 1.
    """
    match = _STATE.search(text)
    if match:
        value = int(match.group(1))
        return value if value in STATE_NAMES else None
    lowered = text.lower()
    if "firewall is disabled" in lowered:
        return 0
    if "firewall is enabled" in lowered:
        return 1
    return None


def state_from_alf_plist(data: dict[str, Any]) -> int | None:
    value = data.get("globalstate")
    if isinstance(value, bool) or not isinstance(value, int) or value not in STATE_NAMES:
        return None
    return value


def decide_firewall(found: FirewallState) -> Finding:
    evidence = {"state": found.state, "meaning": STATE_NAMES[found.state], "source": found.source}
    if found.state == 0:
        return failed("The macOS firewall is off", TURN_ON_FIREWALL, **evidence)
    if found.state == 2:
        return passed("The macOS firewall is on and blocks all incoming connections", **evidence)
    return passed("The macOS firewall is on", **evidence)


def read_alf_fallback(ctx: CheckContext) -> tuple[FirewallState | None, str]:
    """The plist's state on macOS 14 and older, with why it could not be used otherwise."""
    major = macos_major(ctx.platform.os_version)
    if major is None or major > LAST_MACOS_WITH_ALF_PLIST:
        return None, f"no fallback on macOS {ctx.platform.os_version or '(version unknown)'}"
    plist = read_plist(ctx.probes, ALF_PLIST)
    if plist.data is None:
        return None, f"{ALF_PLIST}: {plist.error}"
    state = state_from_alf_plist(plist.data)
    if state is None:
        return None, f"{ALF_PLIST}: no usable globalstate"
    return FirewallState(state, ALF_PLIST), ""


def check(ctx: CheckContext) -> Finding:
    output = ctx.probes.run(SOCKETFILTERFW_GLOBAL_STATE, probe_id=SOCKETFILTERFW_PROBE)
    if output.ok:
        state = parse_global_state(output.stdout)
        problem = "socketfilterfw answered: " + (output.stdout.strip()[:200] or "nothing")
    else:
        state = None
        problem = output.describe()
    if state is not None:
        return decide_firewall(FirewallState(state, "socketfilterfw --getglobalstate"))
    fallback, why_not = read_alf_fallback(ctx)
    if fallback is not None:
        return decide_firewall(fallback)
    return broken(
        f"could not read the firewall state: {problem}; {why_not}",
        socketfilterfw=problem,
        fallback=why_not,
    )
