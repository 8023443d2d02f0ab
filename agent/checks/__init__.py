"""The one list of checks, and the one place that picks the OS-specific code.

Each check `X` has a module `X_windows.py`, `X_macos.py` and `X_linux.py`
beside this file, each with `check(ctx) -> Finding`. Parsers inside them are
pure functions; only `check` touches `ctx.probes`.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Literal

from agent.checks.context import CheckContext
from agent.checks.results import Finding
from agent.checks.software import Inventory
from agent.probes.facts import OsName

Where = Literal["system", "user"]


@dataclass(frozen=True)
class CheckSpec:
    id: str
    title: str
    # Where the truth is visible: "system" checks run in the service (root/SYSTEM);
    # "user" checks read per-user settings and run in the user's own session.
    where: Where
    # OSes on which the probe needs admin rights to see everything.
    needs_admin_on: frozenset[OsName] = frozenset()

    def module(self, os_name: OsName) -> ModuleType:
        return importlib.import_module(f"agent.checks.{self.id}_{os_name}")

    def implementation(self, os_name: OsName) -> Callable[[CheckContext], Finding]:
        check: Callable[[CheckContext], Finding] = self.module(os_name).check
        return check


CHECKS: tuple[CheckSpec, ...] = (
    CheckSpec("disk_encryption", "Disk encryption", "system", frozenset({"windows"})),
    CheckSpec("firewall", "Firewall", "system", frozenset({"linux"})),
    CheckSpec("power_on_password", "Power-on password", "system", frozenset({"windows", "linux"})),
    CheckSpec("antivirus", "Antivirus", "system"),
    CheckSpec("screen_lock", "Screen lock", "user"),
    CheckSpec("software", "Authorised software", "system"),
)
CHECKS_BY_ID = {spec.id: spec for spec in CHECKS}


def select(enabled: tuple[str, ...], only: str | None = None, where: Where | None = None) -> list[CheckSpec]:
    """The checks to run: enabled by the district, narrowed to one id or one context."""
    chosen = [spec for spec in CHECKS if spec.id in enabled]
    if only is not None:
        chosen = [spec for spec in chosen if spec.id == only]
    if where is not None:
        chosen = [spec for spec in chosen if spec.where == where]
    return chosen


def software_inventory(ctx: CheckContext) -> Inventory:
    """The full inventory the compliance report carries (the check itself only keeps what failed)."""
    collect: Callable[[CheckContext], Inventory] = CHECKS_BY_ID["software"].module(ctx.platform.os).inventory
    return collect(ctx)
