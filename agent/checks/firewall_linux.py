"""Firewall on Linux: ufw, firewalld, or a plain nftables/iptables ruleset that drops by default.

Distributions differ in the front end, but all of them end in the kernel's
netfilter, so a ruleset whose input chain drops or rejects what it does not
allow counts as a firewall even with no front end at all. ufw and nft need
root to read; without it the answer is `unknown`, not `fail`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Literal

from agent.checks.context import CheckContext
from agent.checks.results import Advice, Finding, failed, passed, unknown
from agent.probes import PERMISSION_DENIED, CommandOutput

State = Literal["on", "off", "absent", "denied", "error"]
# `verbose` adds "Default: deny (incoming), ...": an active ufw whose incoming default is allow lets
# everything in, yet plain `ufw status` says only "Status: active" (seen in the corpus capture
# netns-ufw-allow-incoming). Older recordings without the Default line read as before.
UFW_STATUS = ["ufw", "status", "verbose"]
UFW_ALLOWS_INCOMING = "but its default lets every incoming connection in"
FIREWALLD_STATE = ["firewall-cmd", "--state"]
NFT_RULESET = ["nft", "-j", "list", "ruleset"]
IPTABLES_INPUT = ["iptables", "-S", "INPUT"]
PROBE_IDS = {
    "ufw": "linux.firewall.ufw",
    "firewalld": "linux.firewall.firewalld",
    "nftables": "linux.firewall.nft",
    "iptables": "linux.firewall.iptables",
}
ASK_IT_FIREWALL = "Ask your school's IT team to turn on this laptop's firewall."
_DENIED = re.compile(r"need to be root|permission denied|operation not permitted|must be root", re.I)
_BLOCKING = {"drop", "reject"}


@dataclass(frozen=True)
class Source:
    name: str
    state: State
    detail: str


def _common(name: str, out: CommandOutput) -> Source | None:
    """The states every tool shares: not installed, not allowed, broken."""
    if out.missing:
        return Source(name, "absent", "not installed")
    text = f"{out.stdout}\n{out.stderr}"
    if out.error == PERMISSION_DENIED or (not out.ok and _DENIED.search(text)):
        return Source(name, "denied", "needs root to read")
    if out.error:
        return Source(name, "error", out.describe())
    return None


def parse_ufw(out: CommandOutput) -> Source:
    early = _common("ufw", out)
    if early:
        return early
    match = re.search(r"^Status:\s*(\w+)", out.stdout, re.M)
    if not match:
        return Source("ufw", "error", out.describe())
    incoming = re.search(r"^Default:.*?\b(\w+) \(incoming\)", out.stdout, re.M)
    if match.group(1) == "active" and incoming and incoming.group(1) == "allow":
        return Source("ufw", "off", f"Status: active, {UFW_ALLOWS_INCOMING} (Default: allow (incoming))")
    return Source("ufw", "on" if match.group(1) == "active" else "off", f"Status: {match.group(1)}")


def parse_firewalld(out: CommandOutput) -> Source:
    early = _common("firewalld", out)
    if early:
        return early
    state = (out.stdout or out.stderr).strip()
    return Source("firewalld", "on" if state == "running" else "off", state or out.describe())


def _is_catch_all_block(rule: dict[str, Any]) -> bool:
    """A rule with no match at all, ending in drop/reject (counters allowed)."""
    verbs = [next(iter(step)) for step in rule.get("expr", []) if isinstance(step, dict) and step]
    meaningful = [verb for verb in verbs if verb != "counter"]
    return len(meaningful) == 1 and meaningful[0] in _BLOCKING


def parse_nft_ruleset(out: CommandOutput) -> Source:
    early = _common("nftables", out)
    if early:
        return early
    if not out.ok:
        return Source("nftables", "error", out.describe())
    items = json.loads(out.stdout or '{"nftables": []}').get("nftables", [])
    chains: dict[tuple[str, str, str], dict[str, Any]] = {}
    last_rule: dict[tuple[str, str, str], dict[str, Any]] = {}
    for item in items:
        if "chain" in item:
            chain = item["chain"]
            chains[(chain.get("family"), chain.get("table"), chain.get("name"))] = chain
        elif "rule" in item:
            rule = item["rule"]
            last_rule[(rule.get("family"), rule.get("table"), rule.get("chain"))] = rule
    for key, chain in chains.items():
        if chain.get("hook") != "input" or chain.get("type", "filter") != "filter":
            continue
        if chain.get("policy") in _BLOCKING:
            return Source("nftables", "on", f"{key[0]} {key[1]} {key[2]}: policy {chain['policy']}")
        if key in last_rule and _is_catch_all_block(last_rule[key]):
            return Source("nftables", "on", f"{key[0]} {key[1]} {key[2]}: ends with a drop/reject rule")
    return Source("nftables", "off", "no input chain drops or rejects by default")


def parse_iptables_input(out: CommandOutput) -> Source:
    early = _common("iptables", out)
    if early:
        return early
    if not out.ok:
        return Source("iptables", "error", out.describe())
    lines = [line.strip() for line in out.stdout.splitlines() if line.strip()]
    policy = next((line.split()[2] for line in lines if line.startswith("-P INPUT")), "ACCEPT")
    if policy in {"DROP", "REJECT"}:
        return Source("iptables", "on", f"INPUT policy {policy}")
    rules = [line for line in lines if line.startswith("-A INPUT")]
    if rules and re.fullmatch(r"-A INPUT -j (DROP|REJECT)( .*)?", rules[-1]):
        return Source("iptables", "on", f"INPUT ends with: {rules[-1]}")
    return Source("iptables", "off", f"INPUT policy {policy}")


def remedy(sources: list[Source]) -> Advice:
    """The fix for the front end this laptop has: firewalld's own, ufw's own, or installing one.

    `sudo ufw enable` on a laptop run by firewalld (Fedora, RHEL, openSUSE) would fight it,
    and on one without ufw it does nothing but fail.
    """
    present = {source.name for source in sources if source.state not in ("absent", "error")}
    if "firewalld" in present:
        return Advice(
            "Turn on the firewall: open Firewall Configuration (firewall-config) and start the firewall.",
            ASK_IT_FIREWALL,
            "sudo systemctl enable --now firewalld",
        )
    if any(source.name == "ufw" and UFW_ALLOWS_INCOMING in source.detail for source in sources):
        return Advice(
            "Block incoming connections: open Firewall Configuration (Gufw) and set Incoming to Deny.",
            ASK_IT_FIREWALL,
            "sudo ufw default deny incoming",
        )
    if "ufw" in present:
        return Advice(
            "Turn on the firewall: open Firewall Configuration (Gufw) and switch Status on.",
            ASK_IT_FIREWALL,
            "sudo ufw enable",
        )
    return Advice(
        "No firewall program is installed: ask your school's IT team to install and turn on one.",
        "Ask your school's IT team to install and turn on a firewall on this laptop.",
        "no ufw or firewalld here: install one (Debian/Ubuntu: sudo apt install ufw && sudo ufw enable; "
        "Fedora/RHEL: sudo dnf install firewalld && sudo systemctl enable --now firewalld), or load an "
        "nftables ruleset whose input chain drops by default",
    )


def decide(sources: list[Source]) -> Finding:
    evidence = {source.name: f"{source.state}: {source.detail}" for source in sources}
    enforcing = [source for source in sources if source.state == "on"]
    if enforcing:
        return passed(f"firewall is on ({enforcing[0].name}: {enforcing[0].detail})", **evidence)
    if any(source.state == "denied" for source in sources):
        return unknown(
            "the firewall rules can only be read with root rights: run as root (the Homeroom service)",
            None,
            **evidence,
        )
    if all(source.state in {"absent", "error"} for source in sources) and any(
        source.state == "error" for source in sources
    ):
        return unknown("the firewall state could not be read", remedy(sources), **evidence)
    kernel_seen = any(s.name in ("nftables", "iptables") and s.state == "off" for s in sources)
    if not kernel_seen:
        # Only claim what was seen: without nft or iptables the kernel's own rules were not read.
        return failed(
            "no firewall program is on, and neither nft nor iptables is installed to show the kernel's rules",
            remedy(sources),
            **evidence,
        )
    return failed("no firewall is filtering incoming connections", remedy(sources), **evidence)


def check(ctx: CheckContext) -> Finding:
    run = ctx.probes.run
    return decide(
        [
            parse_ufw(run(UFW_STATUS, probe_id=PROBE_IDS["ufw"])),
            parse_firewalld(run(FIREWALLD_STATE, probe_id=PROBE_IDS["firewalld"])),
            parse_nft_ruleset(run(NFT_RULESET, probe_id=PROBE_IDS["nftables"])),
            parse_iptables_input(run(IPTABLES_INPUT, probe_id=PROBE_IDS["iptables"])),
        ]
    )
