"""Authorised software: the decision shared by every OS.

Each OS module only gathers an `Inventory`; whether an item is allowed is
decided here, from the district's lists, so the rule is the same on every
laptop and testable without any OS at all.

The inventory holds everything the OS lists (libraries, runtimes, updates too: IT
wants the full picture), but only the items marked `judged` are the applications
a person chose to install, and only they decide pass or fail. A library installed
because an app needed it belongs to that app. Each OS module says why it judged
an item or not (`basis`), so IT can see the reasoning in the report.
"""

from __future__ import annotations

from collections.abc import Callable
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
    # Whether it is an application the check judges (False: a library, runtime, update, OS part).
    judged: bool = True
    # Why it is judged or not, in a few words: "manually installed (apt)", "a dependency of vlc".
    basis: str = ""
    # Other inventory items (by name) it cannot work without: an approved app's approval covers them.
    # Kept on the laptop only; not sent.
    needs: tuple[str, ...] = field(default=(), compare=False)

    @property
    def identity(self) -> str:
        """What the baseline remembers: the name only.

        Not the version (an update must not turn accepted software into new
        software), and not the source: MSI upgrades change the registry key
        an entry lives under.
        """
        return self.name.casefold()

    def to_json(self) -> dict[str, str | bool]:
        return {
            "name": self.name,
            "version": self.version,
            "publisher": self.publisher,
            "source": self.source,
            "judged": self.judged,
            "basis": self.basis,
        }


@dataclass(frozen=True)
class Inventory:
    items: tuple[SoftwareItem, ...]
    sources: tuple[str, ...] = ()  # the inventories that were read
    problems: tuple[str, ...] = field(default=())  # the inventories that could not be read, and why

    @property
    def apps(self) -> tuple[SoftwareItem, ...]:
        """The items the check judges; `items` stays the full inventory IT receives."""
        return tuple(item for item in self.items if item.judged)


def matches(rule: SoftwareRule, item: SoftwareItem) -> bool:
    return rule_matches(rule, item.name, item.publisher)  # the server judges apps by the same rule


def _approved(item: SoftwareItem, requirements: Requirements, baseline: frozenset[str]) -> bool:
    if any(matches(rule, item) for rule in requirements.software_blocked):
        return False
    if requirements.software_mode != "allowlist":
        return True
    return item.identity in baseline or any(matches(rule, item) for rule in requirements.software_approved)


def needed_by_approved(
    items: tuple[SoftwareItem, ...], requirements: Requirements, baseline: frozenset[str]
) -> dict[str, str]:
    """Each item an approved app needs (directly or through others), with the app that needs it.

    Removing such an item would remove the approved app with it (apt removes what depends on what
    it removes), so its approval covers it: it is never listed as unapproved, even if a person
    installed it by hand first.
    """
    by_name: dict[str, SoftwareItem] = {}
    for item in items:
        by_name.setdefault(item.name, item)
    covered: dict[str, str] = {}
    for app in items:
        if not app.judged or not app.needs or not _approved(app, requirements, baseline):
            continue
        waiting = list(app.needs)
        while waiting:
            name = waiting.pop()
            if name in covered or name == app.name or name not in by_name:
                continue
            covered[name] = app.name
            waiting.extend(by_name[name].needs)
    return covered


def unapproved_items(
    items: tuple[SoftwareItem, ...], requirements: Requirements, baseline: frozenset[str]
) -> list[tuple[SoftwareItem, str]]:
    """Each judged item the district has not approved, with the reason.

    Items that are not judged (libraries, runtimes, updates) are never listed: they belong to the
    app that needed them. Neither is a judged item an approved app needs.
    """
    covered = needed_by_approved(items, requirements, baseline)
    found: list[tuple[SoftwareItem, str]] = []
    for item in items:
        if not item.judged:
            continue
        if any(matches(rule, item) for rule in requirements.software_blocked):
            found.append((item, "blocked"))
        elif requirements.software_mode == "allowlist":
            if item.identity in baseline or item.name in covered:
                continue
            if not any(matches(rule, item) for rule in requirements.software_approved):
                found.append((item, "not approved"))
    return found


def decide(
    inventory: Inventory,
    ctx: CheckContext,
    remedy: str,
    it_command: Callable[[list[SoftwareItem]], str | None] | None = None,
) -> Finding:
    """`remedy` is the OS's own way to remove software, in friendly words; `it_command` gives IT's
    exact command for the unapproved items, where the OS has one."""
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
        "apps_judged": len(inventory.apps),
        "baseline_items": len(baseline),
    }
    covered = needed_by_approved(inventory.items, requirements, baseline)
    # The judged items that would be listed but for an approved app needing them.
    hand_installed_but_needed = sorted(
        {
            item.name
            for item in inventory.items
            if item.judged and item.name in covered and not _approved(item, requirements, baseline)
        }
    )
    if hand_installed_but_needed:
        evidence["covered_by_approved_apps"] = [
            {"name": name, "needed_by": covered[name]} for name in hand_installed_but_needed[:MAX_LISTED]
        ]
    if inventory.problems:
        evidence["problems"] = list(inventory.problems)
    if not bad:
        return passed(
            f"{len(inventory.apps)} installed apps, all approved "
            f"({len(inventory.items)} items in the full inventory)",
            **evidence,
        )
    evidence["unapproved"] = [{**item.to_json(), "reason": reason} for item, reason in bad[:MAX_LISTED]]
    if len(bad) > MAX_LISTED:
        evidence["unapproved_not_listed"] = len(bad) - MAX_LISTED
    names = ", ".join(sorted({item.name for item, _ in bad})[:5])
    more = f" and {len(bad) - 5} more" if len(bad) > 5 else ""
    command = it_command([item for item, _ in bad]) if it_command else None
    where = "the unapproved apps, with where each was found, are in evidence.unapproved"
    return failed(
        f"{len(bad)} app(s) the district has not approved: {names}{more}",
        Advice(
            f"Please remove {names}{more}, or ask your school's IT team to approve it. {remedy}",
            f"Ask your school's IT team to remove {names}{more} from this laptop, or to approve it.",
            f"{command} ({where})" if command else where,
        ),
        **evidence,
    )
