"""`homeroom-server devices set-asset-tag | mark-lost | lost-status | lost`, `networks import-ranges |
import-access-points | show` and `lost purge | notifications`: the command line of lost laptops.

server/cli.py adds these parsers and hands the parsed arguments here with its way of opening the
database (`engine_for`) and of reading server.toml (`config_for`).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, delete, insert, select

from contract.config_files import read_config_text
from contract.lost import KINDS
from server.config_file import ServerConfig
from server.console.audit_log import command_line_address
from server.console.audit_log import record as audit_record
from server.db.lost_models import DISTRICT_ACCESS_POINTS, DISTRICT_RANGES, NOTIFICATIONS
from server.lost import cases, listing
from server.lost.evidence import purge_expired_evidence
from server.lost.networks import parse_access_points, parse_ranges
from server.lost.summary import iso
from server.terminal import printable

DEVICE_ACTIONS = ("set-asset-tag", "mark-lost", "lost-status", "lost")
EngineFor = Callable[[argparse.Namespace], Engine]
ConfigFor = Callable[[argparse.Namespace], ServerConfig]


def add_device_actions(actions: Any, db_after: argparse.ArgumentParser) -> None:
    tag = actions.add_parser("set-asset-tag", parents=[db_after], help="set a laptop's asset tag")
    tag.add_argument("device", metavar="HOST-OR-SERIAL", help="the device's hostname, serial number or id")
    tag.add_argument("tag", help="the district's asset tag on the laptop")

    mark = actions.add_parser(
        "mark-lost",
        parents=[db_after],
        help="mark a laptop lost or stolen: lost mode from its next heartbeat",
    )
    mark.add_argument("device", metavar="SERIAL-OR-HOSTNAME", help="serial number, hostname, asset tag or id")
    mark.add_argument("--kind", required=True, choices=KINDS)
    shown = mark.add_mutually_exclusive_group()
    shown.add_argument(
        "--notice", metavar="TEXT", help="the message the laptop shows (default: server.toml's)"
    )
    shown.add_argument(
        "--quiet", action="store_true", help="show nothing on the laptop (a thief may wipe it)"
    )
    mark.add_argument("--lock", action="store_true", help="lock the laptop's screen while it is lost")
    mark.add_argument(
        "--drill",
        action="store_true",
        help="test lost mode on this laptop: no status change, nobody notified",
    )

    status = actions.add_parser(
        "lost-status",
        parents=[db_after],
        help="change a lost case: confirmed_lost, confirmed_stolen, recovered, written_off",
    )
    status.add_argument("case", type=int, help="the case's id, from `homeroom-server devices lost`")
    status.add_argument("status", choices=cases.IT_STATUSES)
    status.add_argument("--note", default="", help="why, for the timeline and the notification")
    shown = status.add_mutually_exclusive_group()
    shown.add_argument("--notice", metavar="TEXT", help="show this message on the laptop from now on")
    shown.add_argument("--quiet", action="store_true", help="show no message on the laptop from now on")
    lock = status.add_mutually_exclusive_group()
    lock.add_argument(
        "--lock", dest="lock", action="store_true", default=None, help="lock its screen from now on"
    )
    lock.add_argument("--no-lock", dest="lock", action="store_false", help="stop locking its screen")

    lost = actions.add_parser(
        "lost", parents=[db_after], help="lost laptops: status, where last seen; --case ID for its timeline"
    )
    lost.add_argument(
        "--case", type=int, metavar="ID", help="one case: timeline, reports, evidence, notifications"
    )
    lost.add_argument("--all", action="store_true", help="closed cases too")
    lost.add_argument("--json", action="store_true", default=argparse.SUPPRESS)


def device_command(args: argparse.Namespace, engine_for: EngineFor, config_for: ConfigFor) -> int:
    engine = engine_for(args)
    config = config_for(args)
    action = args.devices_command
    if action == "set-asset-tag":
        print(cases.set_asset_tag(engine, args.device, args.tag))
    elif action == "mark-lost":
        print(
            cases.mark_lost(
                engine,
                args.device,
                args.kind,
                config,
                notice=args.notice,
                quiet=args.quiet,
                lock=args.lock,
                drill=args.drill,
            )
        )
    elif action == "lost-status":
        print(
            cases.change_status(
                engine,
                args.case,
                args.status,
                config,
                note=args.note,
                notice=args.notice,
                quiet=args.quiet,
                lock=args.lock,
            )
        )
    else:
        with engine.connect() as connection:
            rows = listing.case_rows(connection, everything=args.all, case_id=args.case)
        if getattr(args, "json", False):
            print(json.dumps({"lost": listing.as_json(rows)}, indent=2, ensure_ascii=False))
        elif args.case is not None:
            sys.stdout.write(listing.render_case(rows[0]))
        else:
            sys.stdout.write(listing.render_table(rows))
    return 0


# --- networks and lost -----------------------------------------------------------------------------


def add_parsers(commands: Any, db: argparse.ArgumentParser) -> None:
    networks = commands.add_parser("networks", help="the district's address ranges and Wi-Fi access points")
    actions = networks.add_subparsers(dest="networks_command", required=True, metavar="ACTION")
    ranges = actions.add_parser(
        "import-ranges",
        parents=[db],
        help="replace the district's address ranges: one `CIDR BUILDING` a line",
    )
    ranges.add_argument("file", type=Path)
    points = actions.add_parser(
        "import-access-points",
        parents=[db],
        help="replace the district's access points from a controller's CSV export (BSSID, building, room)",
    )
    points.add_argument("file", type=Path)
    show = actions.add_parser("show", parents=[db], help="the ranges and access points the server knows")
    show.add_argument("--json", action="store_true")

    lost = commands.add_parser(
        "lost", help="lost-mode housekeeping: evidence deletion, the notifications queue"
    )
    lost_actions = lost.add_subparsers(dest="lost_command", required=True, metavar="ACTION")
    lost_actions.add_parser(
        "purge",
        parents=[db],
        help="delete evidence of cases closed longer ago than server.toml's evidence_keep_days",
    )
    queued = lost_actions.add_parser(
        "notifications", parents=[db], help="notifications: sent, waiting, failing"
    )
    queued.add_argument("--json", action="store_true")


def import_ranges(engine: Engine, path: Path) -> str:
    found = parse_ranges(str(path), read_config_text(path))
    with engine.begin() as connection:
        connection.execute(delete(DISTRICT_RANGES))
        connection.execute(
            insert(DISTRICT_RANGES), [{"network": str(r.network), "building": r.building} for r in found]
        )
        audit_record(
            connection,
            "cli",
            "networks.ranges_imported",
            {"file": str(path), "ranges": len(found)},
            command_line_address(),
        )
    buildings = len({r.building for r in found})
    return (
        f"Imported {len(found)} address ranges in {buildings} buildings from {path} "
        "(the previous list is replaced)."
    )


def import_access_points(engine: Engine, path: Path) -> str:
    found = parse_access_points(str(path), read_config_text(path))
    with engine.begin() as connection:
        connection.execute(delete(DISTRICT_ACCESS_POINTS))
        connection.execute(
            insert(DISTRICT_ACCESS_POINTS),
            [{"bssid": p.bssid, "building": p.building, "room": p.room} for p in found],
        )
        audit_record(
            connection,
            "cli",
            "networks.access_points_imported",
            {"file": str(path), "access_points": len(found)},
            command_line_address(),
        )
    buildings = len({p.building for p in found})
    return (
        f"Imported {len(found)} access points in {buildings} buildings from {path} "
        "(the previous list is replaced)."
    )


def networks_command(args: argparse.Namespace, engine_for: EngineFor) -> int:
    engine = engine_for(args)
    if args.networks_command == "import-ranges":
        print(import_ranges(engine, args.file))
        return 0
    if args.networks_command == "import-access-points":
        print(import_access_points(engine, args.file))
        return 0
    with engine.connect() as connection:
        ranges = [
            dict(r._mapping)
            for r in connection.execute(select(DISTRICT_RANGES.c.network, DISTRICT_RANGES.c.building))
        ]
        points = [dict(p._mapping) for p in connection.execute(select(DISTRICT_ACCESS_POINTS))]
    if args.json:
        print(json.dumps({"ranges": ranges, "access_points": points}, indent=2, ensure_ascii=False))
        return 0
    print(f"{len(ranges)} address ranges, {len(points)} access points.")
    for r in ranges:
        print(f"  {r['network']:<24} {printable(r['building'])}")
    for p in points:
        print(f"  {p['bssid']:<24} {printable(p['building'])}, {printable(p['room'] or '-')}")
    return 0


def lost_command(args: argparse.Namespace, engine_for: EngineFor, config_for: ConfigFor) -> int:
    engine = engine_for(args)
    if args.lost_command == "purge":
        keep = config_for(args).lost.evidence_keep_days
        deleted = purge_expired_evidence(engine, keep, datetime.now(timezone.utc), command_line_address())
        if not deleted:
            print(f"No evidence to delete (kept {keep} days after a case closes).")
        for case_id, count in sorted(deleted.items()):
            print(f"Case {case_id}: deleted {count} evidence records (closed more than {keep} days ago).")
        return 0
    with engine.connect() as connection:
        rows = connection.execute(select(NOTIFICATIONS).order_by(NOTIFICATIONS.c.id)).all()
    listed = [
        {
            "id": n.id,
            "case": n.case_id,
            "event": n.event_id,
            "channel": n.channel,
            "recipient": n.recipient,
            "created_at": iso(n.created_at),
            "sent_at": iso(n.sent_at),
            "attempts": n.attempts,
            "next_attempt_at": None if n.sent_at else iso(n.next_attempt_at),
            "last_error": n.last_error,
        }
        for n in rows
    ]
    if args.json:
        print(json.dumps({"notifications": listed}, indent=2))
        return 0
    if not listed:
        print("No notifications yet.")
        return 0
    for n in listed:
        state = f"sent {n['sent_at'][:19]}" if n["sent_at"] else f"waiting, {n['attempts']} attempts"
        error = f" — {printable(n['last_error'])}" if n["last_error"] and not n["sent_at"] else ""
        print(
            f"{n['id']:<5} case {n['case']:<5} {n['channel']:<8} {printable(n['recipient']):<40} "
            f"{state}{error}"
        )
    return 0
