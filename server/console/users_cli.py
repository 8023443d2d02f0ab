"""`homeroom-server users add | list | disable | enable | role | password | sign-out | token …`."""

from __future__ import annotations

import argparse
import json
import secrets
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

from sqlalchemy import Connection, Engine, func, select, update

from server.auth import hash_password
from server.console import accounts, api_tokens, audit_log, lockout
from server.console.roles import ROLES
from server.console.tables import ADMINS
from server.errors import CommandError
from server.terminal import cell, printable


def add_parser(
    commands: argparse._SubParsersAction[argparse.ArgumentParser], db: argparse.ArgumentParser
) -> None:
    users = commands.add_parser("users", help="people who sign in to the console, their roles and schools")
    actions = users.add_subparsers(dest="users_command", required=True, metavar="ACTION")

    def role_options(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--role", required=True, choices=ROLES, help="what they may do")
        parser.add_argument(
            "--school",
            action="append",
            default=[],
            metavar="GROUP",
            help="a school (device group); repeatable",
        )
        parser.add_argument("--district", action="store_true", help="a viewer who reads every school")

    add = actions.add_parser("add", parents=[db], help="create a user; prints a one-time password")
    add.add_argument("email")
    role_options(add)
    add.add_argument(
        "--password-file", type=Path, metavar="FILE", help="read the password instead of making one"
    )
    listing = actions.add_parser("list", parents=[db], help="list users, roles and schools")
    listing.add_argument("--json", action="store_true")
    for name, text in (
        ("disable", "stop a user signing in and end their sessions"),
        ("enable", "let a disabled user sign in again"),
        ("sign-out", "end every console session of a user"),
    ):
        action = actions.add_parser(name, parents=[db], help=text)
        action.add_argument("email")
    role = actions.add_parser(
        "role", parents=[db], help="change a user's role and schools (ends their sessions)"
    )
    role.add_argument("email")
    role_options(role)
    password = actions.add_parser("password", parents=[db], help="set a new password; ends their sessions")
    password.add_argument("email")
    password.add_argument("--password-file", type=Path, metavar="FILE", help="read it instead of making one")
    add_token_parser(actions, db)


def add_token_parser(
    actions: argparse._SubParsersAction[argparse.ArgumentParser], db: argparse.ArgumentParser
) -> None:
    """`users token create | list | revoke`: a user's own admin API tokens."""
    token = actions.add_parser("token", help="a user's admin API tokens (Authorization: Bearer)")
    token_actions = token.add_subparsers(dest="token_command", required=True, metavar="ACTION")
    create = token_actions.add_parser(
        "create", parents=[db], help="make a token for EMAIL; prints it once (it reads what they read)"
    )
    create.add_argument("email")
    create.add_argument("--name", required=True, help="what uses it, e.g. 'district dashboard'")
    listing = token_actions.add_parser("list", parents=[db], help="list EMAIL's tokens (never the tokens)")
    listing.add_argument("email")
    listing.add_argument("--json", action="store_true")
    revoke = token_actions.add_parser("revoke", parents=[db], help="stop one of EMAIL's tokens working")
    revoke.add_argument("email")
    revoke.add_argument("id", type=int, help="the token's id (`users token list EMAIL`)")


def _password(path: Path | None) -> tuple[str, bool]:
    if path is None:
        return secrets.token_urlsafe(12), True
    text = path.read_text(encoding="utf-8").strip()
    if len(text) < accounts.MIN_PASSWORD_LENGTH:
        raise CommandError(f"{path}: the password must be at least {accounts.MIN_PASSWORD_LENGTH} characters")
    return text, False


def command(args: argparse.Namespace, engine_for: Callable[[argparse.Namespace], Engine]) -> int:
    engine = engine_for(args)
    action = args.users_command
    here = audit_log.command_line_address()
    with engine.begin() as connection:
        if action == "token":
            return _token_command(connection, args, here)
        if action == "add":
            password, made = _password(args.password_file)
            email = accounts.add_user(
                connection,
                args.email,
                password,
                args.role,
                args.school,
                args.district,
                actor="cli",
                address=here,
            )
            print(f"Created {printable(email)} ({args.role}).")
            if made:
                print(f"One-time password: {password}")
                print("(shown once: hand it over privately)")
        elif action == "list":
            rows = accounts.list_users(connection)
            if args.json:
                print(json.dumps({"users": [asdict(row) for row in rows]}, indent=2))
            else:
                _print_users(rows)
        elif action in ("disable", "enable"):
            ended = accounts.set_disabled(
                connection, args.email, action == "disable", actor="cli", address=here
            )
            done = "Disabled" if action == "disable" else "Enabled"
            print(f"{done} {printable(args.email)}" + (f"; ended {ended} session(s)." if ended else "."))
        elif action == "sign-out":
            ended = accounts.end_sessions(connection, args.email, actor="cli", address=here)
            print(f"Ended {ended} session(s) of {printable(args.email)}.")
        elif action == "role":
            accounts.set_role(
                connection, args.email, args.role, args.school, args.district, actor="cli", address=here
            )
            print(f"{printable(args.email)} is now a {args.role}; they sign in again to use it.")
        else:
            password, made = _password(args.password_file)
            target = args.email.strip().lower()
            found = connection.execute(
                select(ADMINS.c.id).where(func.lower(ADMINS.c.username) == target)
            ).scalar_one_or_none()
            if found is None:
                raise CommandError(f"no console user {args.email!r}: `homeroom-server users list` lists them")
            connection.execute(
                update(ADMINS).where(ADMINS.c.id == found).values(password_hash=hash_password(password))
            )
            ended = accounts.revoke_sessions(connection, found)
            lockout.clear(connection, lockout.account_key(target))  # the new password works at once
            audit_log.record(
                connection, "cli", "user.password_set", {"user": target, "sessions_ended": ended}, here
            )
            print(f"New password set for {printable(target)}; ended {ended} session(s).")
            if made:
                print(f"One-time password: {password}")
    return 0


def _token_command(connection: Connection, args: argparse.Namespace, here: str) -> int:
    email = args.email.strip().lower()
    admin_id = accounts.find_id(connection, email)
    if args.token_command == "create":
        token_id, token = api_tokens.create(connection, admin_id, email, args.name, "cli", here)
        print(f"API token {token_id} for {printable(email)} ({printable(args.name.strip())}):")
        print(token)
        print("(shown once: it reads what this user reads; send it as 'Authorization: Bearer TOKEN')")
    elif args.token_command == "list":
        rows = api_tokens.list_tokens(connection, admin_id)
        if args.json:
            print(json.dumps({"tokens": [asdict(row) for row in rows]}, indent=2))
        elif not rows:
            print(f"{printable(email)} has no API tokens.")
        else:
            print(f"{'ID':>5} {'STATE':<8} {'MADE':<26} {'LAST USED':<26} NAME")
            for row in rows:
                state = "revoked" if row.revoked else "in use"
                used = row.last_used_at or "never"
                print(f"{row.id:>5} {state:<8} {row.created_at:<26} {used:<26} {printable(row.name)}")
    else:
        api_tokens.revoke(connection, admin_id, email, args.id, "cli", here)
        print(f"Revoked API token {args.id} of {printable(email)}.")
    return 0


def _print_users(rows: list[accounts.UserRow]) -> None:
    if not rows:
        print("No console users. `homeroom-server init` creates the first administrator.")
        return
    print(f"{'E-MAIL':<32} {'ROLE':<15} {'STATE':<9} SCHOOLS")
    for row in rows:
        reach = (
            "every school" if row.role == "district_admin" or row.district_wide else ", ".join(row.schools)
        )
        state = "disabled" if row.disabled else "active"
        print(f"{cell(row.email, 32)} {row.role:<15} {state:<9} {printable(reach)}")
