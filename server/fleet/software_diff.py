"""What changed between a device's stored inventory and the one a report carries: pure.

An item is one (name, source) pair: the same name from dpkg and from flatpak are two installs.
A report may name a pair twice (dpkg lists a multi-arch package once per architecture, and a
tampered agent can send anything): one copy is kept, chosen by its values rather than its place
in the list, so the same inventory sent in another order is the same inventory and adds no
history.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal, Protocol

ChangeKind = Literal["added", "removed", "changed"]


class ReportedItem(Protocol):
    """What a report says of one item (`SoftwareItemIn`)."""

    @property
    def name(self) -> str: ...
    @property
    def version(self) -> str: ...
    @property
    def publisher(self) -> str: ...
    @property
    def source(self) -> str: ...
    @property
    def judged(self) -> bool | None: ...
    @property
    def basis(self) -> str: ...


@dataclass(frozen=True)
class Installed:
    name: str
    source: str
    version: str
    publisher: str
    judged: bool | None = None
    basis: str = ""  # why the agent judges it or not: kept for IT, never a change on its own

    @property
    def key(self) -> str:
        return item_key(self.name, self.source)

    def _rank(self) -> tuple[str, str, int, str]:
        return (self.version, self.publisher, {None: 0, False: 1, True: 2}[self.judged], self.basis)


@dataclass(frozen=True)
class Change:
    kind: ChangeKind
    item: Installed  # what is installed now; for "removed", what was removed
    previous: Installed | None = None  # for "changed": what it was before


def item_key(name: str, source: str) -> str:
    """A fixed-length key for (name, source): the two strings may be too long for one index entry."""
    return hashlib.sha256(f"{name}\x00{source}".encode()).hexdigest()[:32]


def inventory_from(items: Iterable[ReportedItem]) -> dict[str, Installed]:
    """The report's items by key, one per (name, source), the same whatever their order."""
    chosen: dict[str, Installed] = {}
    for reported in items:
        item = Installed(
            reported.name,
            reported.source,
            reported.version,
            reported.publisher,
            reported.judged,
            reported.basis,
        )
        key = item.key
        kept = chosen.get(key)
        if kept is None or item._rank() > kept._rank():
            chosen[key] = item
    return chosen


def inventory_digest(inventory: dict[str, Installed]) -> str:
    """Equal for equal inventories: a report that changes nothing is recognised without a diff."""
    digest = hashlib.sha256()
    for key in sorted(inventory):
        item = inventory[key]
        # Lengths first, so no choice of strings can make two inventories hash alike by shifting text.
        fields = (item.name, item.source, item.version, item.publisher, repr(item.judged), item.basis)
        digest.update(repr(tuple(len(f) for f in fields)).encode())
        digest.update("\x00".join(fields).encode())
    return digest.hexdigest()


def diff(current: dict[str, Installed], new: dict[str, Installed]) -> tuple[list[Change], list[Installed]]:
    """(the changes for the history, items to rewrite without a history row).

    A set difference of keys gives what was added and removed; items under both keys are changed
    when their version or publisher differs. Whether the agent judges an item (`judged`, `basis`) is
    its view of the item, not a change on the laptop: an agent upgrade that starts sending the flag
    would otherwise add a history row for every library. Such items are rewritten without history
    (the current inventory, and so `homeroom-server software`, shows the new flag).
    """
    changes: list[Change] = []
    quiet: list[Installed] = []
    for key in new.keys() - current.keys():
        changes.append(Change("added", new[key]))
    for key in current.keys() - new.keys():
        changes.append(Change("removed", current[key]))
    for key in new.keys() & current.keys():
        before, after = current[key], new[key]
        if before == after:
            continue
        if before.version == after.version and before.publisher == after.publisher:
            quiet.append(after)
        else:
            changes.append(Change("changed", after, before))
    changes.sort(key=lambda change: (change.item.name, change.item.source, change.kind))
    return changes, quiet
