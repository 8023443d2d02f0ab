"""Authorised software: the decision shared by every OS.

Each OS module only gathers an `Inventory`; whether an item is allowed is
decided here, from the district's lists, so the rule is the same on every
laptop and testable without any OS at all.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from agent.checks.context import CheckContext
from agent.checks.results import Advice, Finding, broken, failed, passed
from contract.requirements import Requirements, SoftwareRule
from contract.software_rules import rule_matches

MAX_LISTED = 200  # evidence stays readable and bounded on a laptop with thousands of packages


@dataclass(frozen=True)
class SoftwareItem:
    name: str
    version: str = ""
    publisher: str = ""
    # Where it was found: "dpkg", "flatpak", a registry key, an /Applications path...
    source: str = ""

    @property
    def identity(self) -> str:
        """What the baseline remembers: the name only.

        Not the version (an update must not turn accepted software into new
        software), and not the source: MSI upgrades change the registry key
        an entry lives under.
        """
        return self.name.casefold()

    def to_json(self) -> dict[str, str]:
        return {
            "name": self.name,
            "version": self.version,
            "publisher": self.publisher,
            "source": self.source,
        }


@dataclass(frozen=True)
class Inventory:
    items: tuple[SoftwareItem, ...]
    sources: tuple[str, ...] = ()  # the inventories that were read
    problems: tuple[str, ...] = field(default=())  # the inventories that could not be read, and why


def matches(rule: SoftwareRule, item: SoftwareItem) -> bool:
    return rule_matches(rule, item.name, item.publisher)  # the server judges apps by the same rule


def unapproved_items(
    items: tuple[SoftwareItem, ...], requirements: Requirements, baseline: frozenset[str]
) -> list[tuple[SoftwareItem, str]]:
    """Each item the district has not approved, with the reason."""
    found: list[tuple[SoftwareItem, str]] = []
    for item in items:
        if any(matches(rule, item) for rule in requirements.software_blocked):
            found.append((item, "blocked"))
        elif requirements.software_mode == "allowlist":
            if item.identity in baseline:
                continue
            if not any(matches(rule, item) for rule in requirements.software_approved):
                found.append((item, "not approved"))
    return found


def decide(inventory: Inventory, ctx: CheckContext, remedy: str) -> Finding:
    """`remedy` is the OS's own way to remove software, in friendly words."""
    if not inventory.sources:
        return broken(
            "could not read any software inventory: " + "; ".join(inventory.problems),
            problems=list(inventory.problems),
        )
    requirements = ctx.requirements
    baseline: frozenset[str] = frozenset()
    if requirements.software_mode == "allowlist" and requirements.software_baseline and ctx.baseline:
        baseline = ctx.baseline.establish(frozenset(item.identity for item in inventory.items))
    bad = unapproved_items(inventory.items, requirements, baseline)
    evidence: dict[str, object] = {
        "mode": requirements.software_mode,
        "inventory_sources": list(inventory.sources),
        "items_seen": len(inventory.items),
        "baseline_items": len(baseline),
    }
    if inventory.problems:
        evidence["problems"] = list(inventory.problems)
    if not bad:
        return passed(f"{len(inventory.items)} installed items, all approved", **evidence)
    evidence["unapproved"] = [{**item.to_json(), "reason": reason} for item, reason in bad[:MAX_LISTED]]
    if len(bad) > MAX_LISTED:
        evidence["unapproved_not_listed"] = len(bad) - MAX_LISTED
    names = ", ".join(sorted({item.name for item, _ in bad})[:5])
    more = f" and {len(bad) - 5} more" if len(bad) > 5 else ""
    return failed(
        f"{len(bad)} item(s) the district has not approved: {names}{more}",
        Advice(
            f"Please remove {names}{more}, or ask your school's IT team to approve it. {remedy}",
            f"Ask your school's IT team to remove {names}{more} from this laptop, or to approve it.",
            "the unapproved items, with where each was found, are in evidence.unapproved",
        ),
        **evidence,
    )
