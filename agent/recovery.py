"""What the service does when its own files are bad: keep running, keep the evidence, say so.

Under a service manager, a service that exits on a bad local file restarts, exits
again, and the laptop falls silent. So:

- a damaged outbox (garbage, truncated, foreign or wrong tables, from a newer
  agent) is moved aside under a timestamped name, kept for IT (it may hold
  unsent sign-offs), and a new outbox is started;
- a broken local requirements.toml is passed over when a good copy from the
  server is in effect (the server's copy wins anyway; see `agent.state`).

Each problem is noted in the new outbox (`Outbox.note_problem`): `status` shows
it, and the next report or heartbeat carries it to the server in
`local_problems`, where it lands in the audit log for IT. It rides in the
outbox rather than in a file of its own so that it is sent exactly once per
new problem, in the same transaction as the record that carries it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

from agent.errors import OutboxNotUsable
from agent.server_link.outbox import Outbox, restrict_to_owner
from agent.state import SERVER_REQUIREMENTS_FILE
from contract.errors import ConfigError
from contract.requirements import Requirements, requirements_from_text

log = logging.getLogger("homeroom.agent")

SET_ASIDE_PREFIX = "outbox-set-aside:"
LOCAL_REQUIREMENTS = "local-requirements"
SIDE_FILES = ("-wal", "-shm")

Clock = Callable[[], float]
RequirementsAndText = tuple[Requirements, str]


def set_aside_name(path: Path, now: float) -> Path:
    """`outbox.sqlite3.unusable-20261201T110500Z`, beside the original; never over an earlier one."""
    stamp = datetime.fromtimestamp(now, timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    candidate = path.with_name(f"{path.name}.unusable-{stamp}")
    number = 1
    while candidate.exists():
        number += 1
        candidate = path.with_name(f"{path.name}.unusable-{stamp}-{number}")
    return candidate


def set_aside(path: Path, now: float) -> Path:
    """Moves the file and its -wal and -shm together (SQLite pairs them by name), owner-only."""
    aside = set_aside_name(path, now)
    path.rename(aside)
    for suffix in SIDE_FILES:
        side = Path(f"{path}{suffix}")
        if side.exists():
            side.rename(Path(f"{aside}{suffix}"))
    restrict_to_owner(aside)
    return aside


def open_outbox(path: Path, max_bytes: int, clock: Clock) -> Outbox:
    """The outbox, or a new one if the old is not usable (the old kept aside, the move noted)."""
    try:
        outbox = Outbox(path, max_bytes=max_bytes, clock=clock)
    except OutboxNotUsable as exc:
        aside = set_aside(path, clock())
        log.error(
            "the outbox %s is not usable (%s): moved to %s for IT; starting a new one", path, exc, aside
        )
        outbox = Outbox(path, max_bytes=max_bytes, clock=clock)
        outbox.note_problem(
            f"{SET_ASIDE_PREFIX}{aside.name}",
            f"the outbox was not usable ({exc.detail}); it was moved to {aside} for IT and a new one started",
        )
        return outbox
    forget_collected_set_asides(outbox, path.parent)
    return outbox


def forget_collected_set_asides(outbox: Outbox, directory: Path) -> None:
    """Once IT has taken (deleted) a set-aside file, `status` stops showing it."""
    for problem in outbox.problems():
        name = problem.key.removeprefix(SET_ASIDE_PREFIX)
        if problem.key.startswith(SET_ASIDE_PREFIX) and not (directory / name).exists():
            outbox.clear_problem(problem.key)


def server_requirements(state_dir: Path) -> RequirementsAndText | None:
    """The server's copy, when one is in effect and good."""
    path = state_dir / SERVER_REQUIREMENTS_FILE
    try:
        text = path.read_text(encoding="utf-8")
        return requirements_from_text(str(path), text), text
    except (OSError, UnicodeDecodeError, ConfigError):
        return None


def service_requirements(
    state_dir: Path, load_local: Callable[[], RequirementsAndText]
) -> tuple[RequirementsAndText, str | None]:
    """The local requirements, or, when they are broken and a good server copy is in effect, that copy and
    the problem to report. With no good server copy the local error stands: there is nothing sound to run
    on, and the error names the file, the line and the fix."""
    try:
        return load_local(), None
    except ConfigError as exc:
        server_copy = server_requirements(state_dir)
        if server_copy is None:
            raise
        problem = f"the local requirements file is broken, running on the server's copy: {exc}"
        log.error("%s", problem)
        return server_copy, problem


def note_requirements_problem(outbox: Outbox, problem: str | None) -> None:
    if problem is None:
        outbox.clear_problem(LOCAL_REQUIREMENTS)
    else:
        outbox.note_problem(LOCAL_REQUIREMENTS, problem)
