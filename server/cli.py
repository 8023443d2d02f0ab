"""`homeroom-server …`: set up the database, serve, hand out enrolment tokens, list devices."""

from __future__ import annotations

import argparse
import json
import os
import secrets
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, get_args

from sqlalchemy import Engine, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session

from contract.config_files import read_config_text
from contract.errors import ConfigError
from contract.requirements import CHECK_IDS, requirements_from_text
from server import device_show
from server.auth import hash_password, utc
from server.config_file import Security, ServerConfig, SmtpConfig, load_config
from server.console import users_cli
from server.console.accounts import normalised_email
from server.console.audit_log import command_line_address
from server.db.engine import is_current, make_engine, migrate
from server.db.models import (
    Admin,
    AuditEntry,
    Device,
    DeviceCommand,
    DeviceStatus,
    RequirementsDocument,
)
from server.errors import CommandError, DatabaseError
from server.fleet import (
    counts_cli,
    device_record,
    enrolment_tokens,
    published,
    requirement_status,
    software_history,
    software_list,
)
from server.fleet.approvals import approval_rows, approve_request, decline_request
from server.fleet.approvals import rows_as_json as approval_rows_json
from server.fleet.ingest import now_utc
from server.fleet.signoffs import rows_as_csv, rows_as_json, signoff_rows
from server.fleet.silence import (
    DEFAULT_SILENT_DAYS,
    SILENT_DAYS_VARIABLE,
    not_reporting,
    silent_days,
    silent_devices,
)
from server.lost import commands as lost_commands
from server.notify.sender import DeliveryFailed, send_email
from server.settings import (
    BODY_TIMEOUT_VARIABLE,
    HEADER_TIMEOUT_VARIABLE,
    Settings,
    default_data_dir,
    resolve_database_url,
)
from server.silence_digest import digest_message
from server.terminal import cell, printable
from server.trail import (
    approve_claim,
    audit_entries,
    claims_by_device,
    device_flags,
    print_audit,
    print_waiting_claims,
)

DEFAULT_REQUIREMENTS = Path(__file__).resolve().parent.parent / "config" / "requirements.toml"
USAGE_ERROR = 2
FIRST_ADMIN = "admin@localhost"
DEVICE_COMMANDS = ("check_now",)
SMTP_PASSWORD = "HOMEROOM_SMTP_PASSWORD"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="homeroom-server", description="The Homeroom server.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    db = argparse.ArgumentParser(add_help=False)
    db.add_argument(
        "--database", metavar="URL", help="sqlite:///PATH or postgresql://… (default: var/homeroom.db)"
    )
    db.add_argument("--data-dir", type=Path, metavar="DIR", help="where var/homeroom.db lives (default: .)")

    init = commands.add_parser(
        "init", parents=[db], help="create or migrate the database and a first administrator"
    )
    init.add_argument(
        "--admin",
        default=FIRST_ADMIN,
        metavar="EMAIL",
        help=f"the first administrator's e-mail, their console sign-in (default: {FIRST_ADMIN})",
    )
    init.add_argument(
        "--password-file", type=Path, metavar="FILE", help="read the password instead of making one"
    )

    serve = commands.add_parser("serve", parents=[db], help="serve the agent API and the console")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=int, default=1)
    serve.add_argument(
        "--header-timeout", type=float, default=10.0, metavar="SECONDS", help="time to send request headers"
    )
    serve.add_argument(
        "--body-timeout", type=float, default=30.0, metavar="SECONDS", help="time to send a request body"
    )
    serve.add_argument(
        "--trusted-proxy",
        action="append",
        metavar="ADDRESS",
        help="a proxy (IP or network) whose X-Forwarded-For and -Proto are believed; repeat for more; "
        "`none` for nobody (default: HOMEROOM_TRUSTED_PROXIES, else 127.0.0.1 and ::1)",
    )

    token = commands.add_parser("token", help="enrolment tokens")
    token_commands = token.add_subparsers(dest="token_command", required=True, metavar="ACTION")
    create = token_commands.add_parser("create", parents=[db], help="print a new enrolment token")
    create.add_argument("--group", required=True, help="the group devices enrolled with it join")
    create.add_argument("--expires", type=int, metavar="DAYS", help="days until it stops working")
    revoke = token_commands.add_parser(
        "revoke", parents=[db], help="stop a token from enrolling more devices"
    )
    revoke.add_argument("token")

    devices = commands.add_parser(
        "devices", parents=[db], help="list devices, their status, re-keys, waiting claims and collisions"
    )
    devices.add_argument("--json", action="store_true")
    add_silent_days(devices)
    add_device_actions(devices)
    add_digest_command(commands, db)

    audit = commands.add_parser("audit", parents=[db], help="list the audit log, oldest first")
    audit.add_argument("--json", action="store_true")
    audit.add_argument("--limit", type=int, default=200, help="the newest N entries (default: 200)")
    audit.add_argument("--device", metavar="ID", help="only entries by or about this device")

    command = commands.add_parser("command", parents=[db], help="ask a device to act at its next heartbeat")
    command.add_argument("name", choices=DEVICE_COMMANDS, help="check_now: run the checks and report")
    command.add_argument("--device", required=True, help="the device's id or hostname")

    policy = commands.add_parser("policy", help="the Acceptable Use Policy devices ask users to sign")
    policy_commands = policy.add_subparsers(dest="policy_command", required=True, metavar="ACTION")
    policy_publish = policy_commands.add_parser("publish", parents=[db], help="publish a policy document")
    policy_publish.add_argument("file", type=Path)
    policy_publish.add_argument("--group", default="", help="only for this group (default: every group)")

    signoffs = commands.add_parser("signoffs", parents=[db], help="who signed, who declined, who has not")
    signoffs.add_argument("--group", help="only this group")
    output = signoffs.add_mutually_exclusive_group()
    output.add_argument("--json", action="store_true")
    output.add_argument("--csv", action="store_true", help="spreadsheet-safe CSV")

    add_software_command(commands, db)
    users_cli.add_parser(commands, db)
    add_approvals_command(commands, db)
    add_backup_commands(commands, db)
    lost_commands.add_parsers(commands, db)
    counts_cli.add_parser(commands, db)

    requirements = commands.add_parser("requirements", help="the requirements sent to devices")
    req_commands = requirements.add_subparsers(dest="requirements_command", required=True, metavar="ACTION")
    publish = req_commands.add_parser("publish", parents=[db], help="publish a requirements.toml")
    publish.add_argument("file", type=Path)
    publish.add_argument("--group", default="", help="only for this group (default: every group)")
    return parser


def add_silent_days(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--silent-days",
        type=int,
        metavar="N",
        help=f"a device silent for more than N days is not reporting (default: ${SILENT_DAYS_VARIABLE} or "
        f"{DEFAULT_SILENT_DAYS})",
    )


def add_digest_command(commands: Any, db: argparse.ArgumentParser) -> None:
    """`digest`: the daily e-mail listing devices that stopped reporting (server/silence_digest.py)."""
    digest = commands.add_parser(
        "digest", parents=[db], help="e-mail IT the devices not reporting (run daily: cron or a timer)"
    )
    add_silent_days(digest)
    digest.add_argument("--to", action="append", required=True, metavar="EMAIL", help="repeat for several")
    digest.add_argument("--from", dest="sender", metavar="EMAIL", help="default: server.toml's [smtp] sender")
    # The mail server is server.toml's [smtp], as for the lost-laptop notifications; these override it.
    digest.add_argument("--smtp-host", metavar="HOST", help="default: server.toml's [smtp] host")
    digest.add_argument("--smtp-port", type=int, metavar="PORT")
    digest.add_argument("--smtp-security", choices=get_args(Security))
    digest.add_argument("--smtp-user", metavar="NAME", help="the password comes from $HOMEROOM_SMTP_PASSWORD")
    digest.add_argument("--dry-run", action="store_true", help="print the message instead of sending it")


def digest_smtp(args: argparse.Namespace, configured: SmtpConfig | None) -> SmtpConfig:
    """server.toml's [smtp] with what the command line gives over it; a clear error when neither
    names a mail server or a sender."""
    if configured is None and not args.smtp_host:
        raise CommandError(
            "no mail server: add [smtp] (host, sender) to server.toml, or give --smtp-host and --from"
        )
    smtp = configured or SmtpConfig(host=args.smtp_host, sender=args.sender or "")
    changes: dict[str, Any] = {
        "host": args.smtp_host,
        "sender": args.sender,
        "port": args.smtp_port,
        "security": args.smtp_security,
        "username": args.smtp_user,
    }
    smtp = replace(smtp, **{name: value for name, value in changes.items() if value is not None})
    if args.smtp_user is not None:
        smtp = replace(smtp, password=os.environ.get(SMTP_PASSWORD, ""))
    if not smtp.sender:
        raise CommandError("no sender: give --from, or set sender in server.toml's [smtp]")
    return smtp


def command_digest(args: argparse.Namespace) -> int:
    days = silent_days(args.silent_days)
    now = now_utc()
    smtp = digest_smtp(args, None if args.smtp_host and args.sender else config_from(args).smtp)
    with _engine(args).connect() as connection:
        silent = silent_devices(connection, now, days)
    if not silent:
        print(f"Every device has reported in the last {days} days: no digest sent.")
        return 0
    message = digest_message(silent, now, days, smtp.sender, args.to)
    if args.dry_run:
        print(message.as_string())
        return 0
    try:
        send_email(smtp, message)
    except DeliveryFailed as exc:
        print(f"homeroom-server: the digest was not sent: {exc}", file=sys.stderr)
        return 1
    print(f"Sent the digest of {len(silent)} devices not reporting to {', '.join(args.to)}.")
    return 0


def add_device_actions(devices: argparse.ArgumentParser) -> None:
    """`devices approve-claim ID`. Its own copy of the database options leaves values given before the
    action alone (argparse's sub-parser defaults would overwrite them)."""
    db_after = argparse.ArgumentParser(add_help=False)
    db_after.add_argument("--database", metavar="URL", default=argparse.SUPPRESS, help="as for devices")
    db_after.add_argument(
        "--data-dir", type=Path, metavar="DIR", default=argparse.SUPPRESS, help="as for devices"
    )
    actions = devices.add_subparsers(dest="devices_command", metavar="ACTION")
    approve = actions.add_parser(
        "approve-claim",
        parents=[db_after],
        help="let a waiting enrolment claim take over its device record (the laptop's new key)",
    )
    approve.add_argument("claim", type=int, help="the claim's id, from `homeroom-server devices`")
    show = actions.add_parser(
        "show",
        parents=[db_after],
        help="the whole device: identity, results, software, sign-offs, history, audit entries",
    )
    show.add_argument("host", help="the device's id or hostname")
    show.add_argument("--json", action="store_true", default=argparse.SUPPRESS)
    lost_commands.add_device_actions(actions, db_after)


def add_software_command(commands: Any, db: argparse.ArgumentParser) -> None:
    """`software [--group NAME] [--unapproved] [--json | --csv]`: the apps, to build the approved list."""
    software = commands.add_parser(
        "software", parents=[db], help="the apps on the laptops: versions, how many, approved or not"
    )
    software.add_argument("--group", help="only this group's laptops, judged by its requirements")
    software.add_argument(
        "--unapproved", action="store_true", help="only apps not approved (blocked or neither)"
    )
    software.add_argument(
        "--device",
        metavar="ID",
        help="instead: this laptop's software changes, newest first (id or hostname)",
    )
    software.add_argument("--limit", type=int, default=200, help="with --device: the newest N (default: 200)")
    output = software.add_mutually_exclusive_group()
    output.add_argument("--json", action="store_true")
    output.add_argument("--csv", action="store_true", help="spreadsheet-safe CSV")


def command_software(args: argparse.Namespace) -> int:
    engine = _engine(args)
    output = "json" if args.json else "csv" if args.csv else "table"
    with engine.connect() as connection:
        if args.device is not None:
            if args.group is not None or args.unapproved:
                raise CommandError("--device lists one laptop's changes: leave out --group and --unapproved")
            history = software_history.device_history(connection, args.device, args.limit)
            sys.stdout.write(software_history.render(history, output))
        else:
            listed = software_list.app_list(connection, args.group, args.unapproved)
            sys.stdout.write(software_list.render(listed, output))
    return 0


def add_approvals_command(commands: Any, db: argparse.ArgumentParser) -> None:
    """`approvals [--group NAME] [--json]`, `approvals approve ID`, `approvals decline ID --message TEXT`."""
    approvals = commands.add_parser(
        "approvals", parents=[db], help="users' requests to approve an app: list, approve, decline"
    )
    approvals.add_argument("--group", help="only requests from devices in this group")
    approvals.add_argument("--json", action="store_true")
    db_after = argparse.ArgumentParser(add_help=False)
    db_after.add_argument("--database", metavar="URL", default=argparse.SUPPRESS, help="as for approvals")
    db_after.add_argument(
        "--data-dir", type=Path, metavar="DIR", default=argparse.SUPPRESS, help="as for approvals"
    )
    actions = approvals.add_subparsers(dest="approvals_command", metavar="ACTION")
    approve = actions.add_parser(
        "approve",
        parents=[db_after],
        help="add the app to the device's group's approved list (publishes its requirements again)",
    )
    approve.add_argument("request", type=int, help="the request's id, from `homeroom-server approvals`")
    decline = actions.add_parser("decline", parents=[db_after], help="decline, with a message for the user")
    decline.add_argument("request", type=int, help="the request's id, from `homeroom-server approvals`")
    decline.add_argument("--message", required=True, help="why, in words the user reads in the tray")


def add_backup_commands(commands: Any, db: argparse.ArgumentParser) -> None:
    """`backup FILE` and `restore FILE [--force]`: the SQLite database, copied while it serves."""
    backup = commands.add_parser(
        "backup", parents=[db], help="copy the SQLite database to FILE, consistently, even while serving"
    )
    backup.add_argument("file", type=Path, help="a new file (never overwritten)")
    restore = commands.add_parser(
        "restore", parents=[db], help="put a backup back (the database as it was is kept beside it)"
    )
    restore.add_argument("file", type=Path, help="a file `homeroom-server backup` made")
    restore.add_argument(
        "--force", action="store_true", help="restore even while a server is serving this database"
    )


def command_backup(args: argparse.Namespace) -> int:
    from server import backup

    print(backup.backup(settings_from(args).database_url, args.file))
    return 0


def command_restore(args: argparse.Namespace) -> int:
    from server import backup

    print(backup.restore(settings_from(args).database_url, args.file, args.force))
    return 0


def settings_from(args: argparse.Namespace) -> Settings:
    data_dir = args.data_dir or default_data_dir()
    return Settings(database_url=resolve_database_url(args.database, data_dir), data_dir=data_dir)


def config_from(args: argparse.Namespace) -> ServerConfig:
    """server.toml, read only by the commands that use it: a mistake in it stops no other command."""
    return load_config(settings_from(args).data_dir)


def _where_the_database_was_looked_for(args: argparse.Namespace) -> str:
    if args.database:
        return "from --database"
    if os.environ.get("HOMEROOM_DATABASE_URL"):
        return "from HOMEROOM_DATABASE_URL"
    if args.data_dir:
        return f"under --data-dir {args.data_dir}"
    if os.environ.get("HOMEROOM_DATA_DIR"):
        return f"under HOMEROOM_DATA_DIR={os.environ['HOMEROOM_DATA_DIR']}"
    return f"under the current directory {Path.cwd()} (no --data-dir, HOMEROOM_DATA_DIR or --database given)"


def _refuse_missing_sqlite_file(args: argparse.Namespace, url: str) -> None:
    """Only `init` creates a database: any other command run in the wrong directory would otherwise
    make an empty one there and report on a fleet of nothing."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database or parsed.database == ":memory:":
        return
    path = Path(parsed.database)
    if not path.is_file():
        raise CommandError(
            f"no database at {path} (looked {_where_the_database_was_looked_for(args)}): run the command "
            "in the server's data directory, or pass --data-dir DIR (or set HOMEROOM_DATA_DIR), or "
            "--database URL (or HOMEROOM_DATABASE_URL); `homeroom-server init` creates a new database"
        )


def _engine(args: argparse.Namespace, must_be_current: bool = True) -> Engine:
    url = settings_from(args).database_url
    if must_be_current:
        _refuse_missing_sqlite_file(args, url)
    engine = make_engine(url)
    if must_be_current:
        try:
            current = is_current(engine)
        except OperationalError as exc:
            raise CommandError(f"cannot open the database: {exc.orig}") from None
        if not current:
            raise CommandError(
                "the database is not set up or is out of date: run `homeroom-server init` first"
            )
    return engine


def _audit(session: Session, action: str, detail: dict[str, Any]) -> None:
    session.add(
        AuditEntry(at=now_utc(), actor="cli", action=action, detail=detail, address=command_line_address())
    )


def publish_requirements(session: Session, content: str, group: str, source: str = "requirements") -> str:
    """The path the console publishes by too (server.fleet.published): validated, versioned, audited."""
    return published.publish_requirements(
        session.connection(), source, content, group, "cli", command_line_address()
    )


def command_init(args: argparse.Namespace) -> int:
    engine = _engine(args, must_be_current=False)
    try:
        migrate(engine)
    except OperationalError as exc:
        raise CommandError(f"cannot set up the database: {exc.orig}") from None
    password: str | None = None
    admin = normalised_email(args.admin)
    with Session(engine) as session, session.begin():
        if session.scalars(select(Admin)).first() is None:
            if args.password_file:
                password = args.password_file.read_text(encoding="utf-8").strip()
                if len(password) < 12:
                    raise CommandError(f"{args.password_file}: the password must be at least 12 characters")
                shown = False
            else:
                password = secrets.token_urlsafe(12)
                shown = True
            session.add(
                Admin(
                    username=admin,
                    password_hash=hash_password(password),
                    created_at=now_utc(),
                    role="district_admin",
                )
            )
            _audit(session, "admin.created", {"username": admin})
            if not shown:
                password = None
        if session.get(RequirementsDocument, "") is None:
            publish_requirements(session, DEFAULT_REQUIREMENTS.read_text(encoding="utf-8"), "")
    print(f"Database ready: {engine.url.render_as_string(hide_password=True)}")
    print(signing_key_line(engine))
    if password:
        print(f"Administrator: {admin}")
        print(f"One-time password: {password}")
        print("(shown once: write it down now)")
    return 0


def signing_key_line(engine: Engine) -> str:
    """The answers key, made now if the database has none; its fingerprint is what agents pin."""
    from contract.wire import key_fingerprint
    from server.answer_signing import load_or_create_signing_key

    key = load_or_create_signing_key(engine)
    return f"Server signing key: {key_fingerprint(key.public_key)} (agents pin it at enrolment)"


def command_serve(args: argparse.Namespace) -> int:
    import uvicorn  # only the serve command needs the web server

    from server.backup import hold_while_serving
    from server.proxies import TRUSTED_PROXIES_VARIABLE, trusted_proxies

    settings = settings_from(args)
    proxies = trusted_proxies(args.trusted_proxy, os.environ.get(TRUSTED_PROXIES_VARIABLE))
    _engine(args)  # refuse to start on a database that is not set up
    serving = hold_while_serving(settings.database_url)  # `restore` waits for it (server.backup)
    config_from(args)  # or on a server.toml with a mistake (its workers read it again)
    os.environ["HOMEROOM_DATABASE_URL"] = settings.database_url
    os.environ["HOMEROOM_DATA_DIR"] = str(settings.data_dir)
    try:
        uvicorn.run(
            "server.asgi:app",
            host=args.host,
            port=args.port,
            workers=args.workers,
            forwarded_allow_ips=proxies,
            **_slow_client_limits(args),
        )
    finally:
        if serving is not None:
            serving.release()
    return 0


def _slow_client_limits(args: argparse.Namespace) -> dict[str, Any]:
    """Headers and bodies are timed (server.http_protocol, server.middleware); idle keep-alive closes."""
    os.environ[HEADER_TIMEOUT_VARIABLE] = str(args.header_timeout)
    os.environ[BODY_TIMEOUT_VARIABLE] = str(args.body_timeout)
    from server.http_protocol import UVICORN_OPTIONS

    return dict(UVICORN_OPTIONS)


def command_token(args: argparse.Namespace) -> int:
    engine = _engine(args)
    address = command_line_address()
    with engine.begin() as connection:
        if args.token_command == "create":
            if args.expires is not None and args.expires < 1:
                raise CommandError("--expires must be at least 1 day")
            print(enrolment_tokens.create_token(connection, args.group, args.expires, "cli", address).token)
            return 0
        found = enrolment_tokens.revoke_by_text(connection, args.token, "cli", address)
    print(f"Revoked the enrolment token for group {printable(found.group)}.")
    return 0


def command_devices(args: argparse.Namespace) -> int:
    engine = _engine(args)
    if args.devices_command == "approve-claim":
        print(approve_claim(engine, args.claim))
        return 0
    if args.devices_command == "show":
        return command_device_show(engine, args.host, args.json)
    if args.devices_command in lost_commands.DEVICE_ACTIONS:
        return lost_commands.device_command(args, lambda _args: engine, config_from)
    days, now = silent_days(args.silent_days), now_utc()
    with Session(engine) as session:
        rows = session.execute(
            select(Device, DeviceStatus)
            .outerjoin(DeviceStatus, DeviceStatus.device_id == Device.id)
            .order_by(Device.group_name, Device.hostname)
        ).all()
        claims = claims_by_device(session.connection())
    listed: list[dict[str, Any]] = []
    for device, status in rows:
        checks = {r["id"]: r["status"] for r in (status.results if status else [])}
        listed.append(
            {
                "device_id": device.id,
                "hostname": device.hostname,
                "group": device.group_name,
                "serial": device.serial,
                "os": device.os,
                "last_seen": utc(device.last_seen_at).isoformat() if device.last_seen_at else None,
                "overall": status.overall if status else None,
                "checks": checks,
                "failing": [
                    {"id": check, "summary": summary}
                    for check, summary in requirement_status.failing(status.results if status else [])
                ],
                "key_replaced_at": utc(device.key_replaced_at).isoformat()
                if device.key_replaced_at
                else None,
                "identity_collision": device.identity_collision,
                "claims": claims.get(device.id, []),
                "not_reporting": not_reporting(device.last_seen_at, device.enrolled_at, now, days),
            }
        )
    if args.json:
        print(json.dumps({"devices": listed}, indent=2))
        return 0
    if not listed:
        print("No devices enrolled yet. Create a token with `homeroom-server token create --group NAME`.")
        return 0
    short = {
        "disk_encryption": "disk",
        "firewall": "fw",
        "power_on_password": "pwd",
        "antivirus": "av",
        "screen_lock": "lock",
        "software": "sw",
    }
    header = f"{'HOSTNAME':<24} {'GROUP':<16} {'LAST SEEN':<20} {'OVERALL':<8} " + " ".join(
        f"{short[c]:<7}" for c in CHECK_IDS
    )
    print(header + " FLAGS")
    for item in listed:
        seen = (item["last_seen"] or "never")[:19].replace("T", " ")
        cells = " ".join(f"{item['checks'].get(c, '-'):<7}" for c in CHECK_IDS)
        name, group, overall = cell(item["hostname"], 24), cell(item["group"], 16), item["overall"] or "-"
        print(f"{name} {group} {seen:<20} {overall:<8} {cells} {device_flags(item)}")
        for failed in item["failing"]:
            print(f"    {short[failed['id']]} fails: {printable(failed['summary'] or 'no summary given')}")
    print_waiting_claims(listed)
    return 0


def command_device_show(engine: Engine, host: str, as_json: bool) -> int:
    with engine.connect() as connection:
        record = device_record.device_record(connection, device_record.one_device(connection, host))
    assert record is not None  # one_device found it, in the same connection
    if as_json:
        print(json.dumps(device_show.as_json(record), indent=2))
    else:
        sys.stdout.write(device_show.as_text(record))
    return 0


def command_audit(args: argparse.Namespace) -> int:
    if args.limit < 1:
        raise CommandError("--limit must be at least 1")
    engine = _engine(args)
    with engine.connect() as connection:
        entries = audit_entries(connection, args.limit, args.device)
    if args.json:
        print(json.dumps({"audit": entries}, indent=2))
        return 0
    print_audit(entries)
    return 0


def command_command(args: argparse.Namespace) -> int:
    engine = _engine(args)
    with Session(engine) as session, session.begin():
        found = session.scalars(
            select(Device).where((Device.id == args.device) | (Device.hostname == args.device))
        ).all()
        if not found:
            raise CommandError(f"no device with id or hostname {args.device!r}")
        if len(found) > 1:
            ids = ", ".join(device.id for device in found)
            raise CommandError(f"{len(found)} devices are called {args.device!r}: give the device id ({ids})")
        device = found[0]
        session.add(DeviceCommand(device_id=device.id, command=args.name, created_at=now_utc()))
        device.commands_pending = True
        _audit(session, "device.command", {"device": device.id, "command": args.name})
        hostname = device.hostname
    print(f"{printable(hostname)} will {args.name.replace('_', ' ')} at its next heartbeat.")
    return 0


def command_policy(args: argparse.Namespace) -> int:
    from contract.policy import PolicyError, load_policy

    try:
        document = load_policy(args.file)
    except PolicyError as exc:
        raise CommandError(str(exc)) from None
    # The exact text load_policy hashed (no newline translation), so the stored version matches it.
    content = args.file.read_bytes().decode("utf-8")
    engine = _engine(args)
    with Session(engine) as session, session.begin():
        try:
            document = published.publish_policy(
                session.connection(), str(args.file), content, args.group, "cli", command_line_address()
            )
        except PolicyError as exc:
            raise CommandError(str(exc)) from None
    who = (
        f"{document.audience} users in {args.group}"
        if args.group
        else f"{document.audience} users everywhere"
    )
    print(f"Published {document.title} (version {document.version[:12]}) for {who}.")
    print("Users are asked to sign it at their next login.")
    return 0


def command_signoffs(args: argparse.Namespace) -> int:
    engine = _engine(args)
    with Session(engine) as session:
        rows = signoff_rows(session, args.group)
    if args.json:
        print(json.dumps({"signoffs": rows_as_json(rows)}, indent=2))
        return 0
    if args.csv:
        sys.stdout.write(rows_as_csv(rows))
        return 0
    if not rows:
        print("No users seen on enrolled devices yet.")
        return 0
    print(f"{'GROUP':<16} {'HOSTNAME':<20} {'USER':<16} {'STATUS':<15} {'FULL NAME':<24} WHEN")
    for row in rows:
        when = (row.decided_at or "")[:16].replace("T", " ")
        print(
            f"{cell(row.group, 16)} {cell(row.hostname, 20)} {cell(row.user, 16)} {row.status:<15} "
            f"{cell(row.full_name or row.note, 24)} {printable(when)}"
        )
    counts = {
        status: sum(r.status == status for r in rows)
        for status in ("signed", "must sign again", "declined", "not signed")
    }
    renew = f", {counts['must sign again']} must sign again" if counts["must sign again"] else ""
    print(
        f"\n{counts['signed']} signed{renew}, {counts['declined']} declined, "
        f"{counts['not signed']} not signed."
    )
    return 0


def command_approvals(args: argparse.Namespace) -> int:
    engine = _engine(args)
    if args.approvals_command == "approve":
        print(approve_request(engine, args.request))
        return 0
    if args.approvals_command == "decline":
        print(decline_request(engine, args.request, args.message))
        return 0
    with engine.connect() as connection:
        rows = approval_rows(connection, args.group)
    if args.json:
        print(json.dumps({"approvals": approval_rows_json(rows)}, indent=2))
        return 0
    if not rows:
        print("No requests to approve an app yet.")
        return 0
    print(f"{'ID':<5} {'STATE':<9} {'GROUP':<16} {'HOSTNAME':<20} {'USER':<14} {'APP':<24} {'NAME':<20} WHY")
    for row in rows:
        print(
            f"{row.id:<5} {row.state:<9} {cell(row.group, 16)} {cell(row.hostname, 20)} {cell(row.user, 14)} "
            f"{cell(row.app, 24)} {cell(row.full_name, 20)} {printable(row.reason)}"
        )
    waiting = sum(row.state == "waiting" for row in rows)
    print(
        f"\n{waiting} waiting. Answer one with `homeroom-server approvals approve ID` or "
        "`homeroom-server approvals decline ID --message TEXT`."
    )
    return 0


def command_requirements(args: argparse.Namespace) -> int:
    content = read_config_text(args.file)
    requirements_from_text(str(args.file), content)  # refuse to publish what agents would reject
    engine = _engine(args)
    with Session(engine) as session, session.begin():
        etag = publish_requirements(session, content, args.group, str(args.file))
    print(f"Published {args.file} for {args.group or 'every group'} (ETag {etag[:12]}…).")
    return 0


def command_networks(args: argparse.Namespace) -> int:
    return lost_commands.networks_command(args, _engine)


def command_lost(args: argparse.Namespace) -> int:
    return lost_commands.lost_command(args, _engine, config_from)


def command_users(args: argparse.Namespace) -> int:
    return users_cli.command(args, _engine)


def command_counts(args: argparse.Namespace) -> int:
    return counts_cli.run(_engine(args), args.fix)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handlers = {
        "init": command_init,
        "serve": command_serve,
        "token": command_token,
        "devices": command_devices,
        "audit": command_audit,
        "requirements": command_requirements,
        "command": command_command,
        "policy": command_policy,
        "signoffs": command_signoffs,
        "software": command_software,
        "users": command_users,
        "approvals": command_approvals,
        "backup": command_backup,
        "restore": command_restore,
        "networks": command_networks,
        "lost": command_lost,
        "digest": command_digest,
        "counts": command_counts,
    }
    try:
        return handlers[args.command](args)
    except (CommandError, ConfigError, DatabaseError) as exc:
        print(f"homeroom-server: {exc}", file=sys.stderr)
        return USAGE_ERROR
    except SQLAlchemyError as exc:
        print(f"homeroom-server: database error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
