"""`homeroom-server counts`: the overview's roll-up recounted from scratch, with any drift shown.

The roll-up is written by every path that changes what it counts (server/fleet/counted.py); this
is how a district (or a test) checks that none forgot. `--fix` writes the difference as today's
rows. Past days' rows are folded first (as the overview does once a day).
"""

from __future__ import annotations

import argparse
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import Engine

from server.fleet import counts
from server.terminal import printable

DRIFT_EXIT = 1


def add_parser(commands: Any, db: argparse.ArgumentParser) -> None:
    parser = commands.add_parser(
        "counts",
        parents=[db],
        help="recount the overview's counts from scratch and show any drift from the kept roll-up",
    )
    parser.add_argument("--fix", action="store_true", help="correct a drift (as today's change)")


def run(engine: Engine, fix: bool) -> int:
    today = datetime.now(timezone.utc).date()
    with engine.begin() as connection:
        folded = counts.compact(connection, today)
        found = counts.drift(connection)
        if found and fix:
            counts.correct(connection, found, today)
    if folded:
        print(f"Folded {folded} rows of past days.")
    if not found:
        print("The overview's counts equal a full recount: no drift.")
        return 0
    print(f"{len(found)} counts drifted from a full recount (school, OS, audience, measure: kept → counted):")
    for (school, os, audience, measure), (kept, counted) in found.items():
        print(f"  {printable(school)}, {os}, {audience}, {measure}: {kept} → {counted}")
    if fix:
        print("Corrected: the roll-up now equals the recount.")
        return 0
    print("Run `homeroom-server counts --fix` to correct them, and tell the developers: a path forgot them.")
    return DRIFT_EXIT
