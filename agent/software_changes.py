"""What was installed or removed since the last inventory, and the last inventory kept to tell.

An install event (agent.watch) or the scheduled check gathers a new inventory; comparing it with the
one kept in the state directory says what was added and removed, and that goes to the server in the
next report (`software_changes`). The comparison is per inventory source (dpkg, rpm, flatpak, an
Uninstall key, /Applications), so a source that could not be read this time is not reported as
everything removed: only what a source that was read says is trusted. An update is a removal of the
old version and an addition of the new one.

`changes` is pure; `InventoryFile` is the thin edge that keeps the last inventory.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent.checks.software import Inventory
from agent.state import INVENTORY_FILE, write_atomically

log = logging.getLogger("homeroom.agent")

# The events that start a re-inventory, as the server is told: a watcher saw an install location
# change, or the scheduled check (the safety net: events are never the only source) found it.
SEEN_BY_WATCH = "watch"
SEEN_BY_SCHEDULE = "schedule"
MAX_LISTED = 10_000  # what the server accepts per list; a re-imaged laptop can change thousands

# As in a report's `software[]`: name, version, publisher, source, and whether it is judged (an app).
Item = dict[str, str | bool]
ItemKey = tuple[str, str, str]


@dataclass(frozen=True)
class KeptInventory:
    """The last inventory: when it was gathered, and each source's items as sent to the server."""

    at: str
    by_source: dict[str, list[Item]]

    def to_json(self) -> dict[str, Any]:
        return {"at": self.at, "by_source": self.by_source}


@dataclass(frozen=True)
class SoftwareChanges:
    added: tuple[Item, ...]
    removed: tuple[Item, ...]
    since: str  # when the inventory compared against was gathered
    seen_by: str

    def __bool__(self) -> bool:
        return bool(self.added or self.removed)

    def to_json(self) -> dict[str, Any]:
        return {
            "added": list(self.added[:MAX_LISTED]),
            "removed": list(self.removed[:MAX_LISTED]),
            "since": self.since,
            "seen_by": self.seen_by,
        }


def _key(item: Item) -> ItemKey:
    return (str(item.get("name", "")), str(item.get("version", "")), str(item.get("source", "")))


def source_of(item_source: str, sources: tuple[str, ...]) -> str:
    """Which inventory source found an item: "dpkg" for "dpkg", "flatpak" for "flatpak:org.x",
    an Uninstall root for its subkey, /Applications for an app in it. "" when none claims it."""
    best = ""
    for source in sources:
        if item_source == source or (item_source.startswith(source) and item_source[len(source)] in ":\\/"):
            best = max(best, source, key=len)
    return best


def group_by_source(inventory: Inventory) -> dict[str, list[Item]]:
    grouped: dict[str, list[Item]] = {source: [] for source in inventory.sources}
    for item in inventory.items:
        grouped.setdefault(source_of(item.source, inventory.sources), []).append(item.to_json())
    return grouped


def _has_problem(source: str, problems: tuple[str, ...]) -> bool:
    return bool(source) and any(problem.startswith(source) for problem in problems)


def changes(
    kept: KeptInventory | None, inventory: Inventory, at: str, seen_by: str
) -> tuple[KeptInventory, SoftwareChanges | None]:
    """The inventory to keep now, and what changed since `kept` (None the first time: no baseline).

    A source read now is compared with what it said last time (all of it is new if it was not read
    then: the package manager was just installed). A source with a problem now (some entries could
    not be read) reports additions only, and keeps what it listed before. A source not read now
    keeps its last items when its failure is named in `problems`; a source that is simply gone (the
    tool was removed) reports its items removed.
    """
    now = group_by_source(inventory)
    if kept is None:
        return KeptInventory(at, now), None
    added: list[Item] = []
    removed: list[Item] = []
    keep: dict[str, list[Item]] = {}
    for source in sorted(set(now) | set(kept.by_source)):
        before = {_key(item): item for item in kept.by_source.get(source, [])}
        if source not in now:
            if _has_problem(source, inventory.problems):
                keep[source] = list(before.values())
            else:
                removed.extend(before.values())
            continue
        after = {_key(item): item for item in now[source]}
        added.extend(item for key, item in after.items() if key not in before)
        if _has_problem(source, inventory.problems):
            keep[source] = [*after.values(), *(item for key, item in before.items() if key not in after)]
        else:
            removed.extend(item for key, item in before.items() if key not in after)
            keep[source] = list(after.values())
    found = SoftwareChanges(
        tuple(sorted(added, key=_key)), tuple(sorted(removed, key=_key)), kept.at, seen_by
    )
    return KeptInventory(at, keep), found


def _value(value: object) -> str | bool:
    """`judged` stays a bool; everything else as text, whatever the file holds."""
    return value if isinstance(value, bool) else str(value)


class InventoryFile:
    """The last inventory in the state directory (0600: it is the service's own record)."""

    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / INVENTORY_FILE

    def load(self) -> KeptInventory | None:
        """None when there is none or it is damaged: the next inventory starts afresh, reports no
        changes, and the report carries the full inventory anyway."""
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            by_source: dict[str, list[Item]] = {
                str(source): [{str(k): _value(v) for k, v in item.items()} for item in items]
                for source, items in data["by_source"].items()
            }
            return KeptInventory(str(data["at"]), by_source)
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            log.warning("%s is damaged (%s): the next inventory starts afresh", self.path, exc)
            return None

    def save(self, kept: KeptInventory) -> None:
        write_atomically(self.path, json.dumps(kept.to_json(), separators=(",", ":")))
        self.path.chmod(0o600)
