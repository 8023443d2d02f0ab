"""`homeroom-server users …` and `init`'s first administrator, as real commands on a real database."""

from __future__ import annotations

import getpass
import json
import socket
from pathlib import Path

from tests.helpers.console import password_of
from tests.helpers.servers import ServerProcess


def test_users_add_list_disable_and_their_refusals(tmp_path: Path) -> None:
    server = ServerProcess(f"sqlite:///{tmp_path / 'var' / 'homeroom.db'}", tmp_path)
    first = server.init()
    assert "Administrator: admin@localhost" in first and password_of(first)
    assert "Administrator" not in server.init()  # a second init keeps the one there is

    added = server.cli(
        "users", "add", "Tech@Lincoln.example", "--role", "technician", "--school", "Lincoln High"
    )
    assert added.returncode == 0 and "Created tech@lincoln.example (technician)" in added.stdout
    assert len(password_of(added.stdout)) >= 12
    refusals = {
        ("users", "add", "not-an-address", "--role", "viewer", "--district"): "is not an e-mail address",
        ("users", "add", "t2@x.example", "--role", "technician"): "needs at least one --school",
        ("users", "add", "t3@x.example", "--role", "technician", "--district"): "assigned schools only",
        ("users", "add", "v@x.example", "--role", "viewer"): "either some schools",
        ("users", "add", "a@x.example", "--role", "district_admin", "--school", "X"): "reads every school",
        ("users", "add", "tech@lincoln.example", "--role", "viewer", "--district"): "already has an account",
        ("users", "disable", "nobody@x.example"): "no console user",
    }
    for command, reason in refusals.items():
        done = server.cli(*command)
        assert done.returncode == 2 and reason in done.stderr, (command, done.stderr)

    assert server.cli("users", "add", "auditor@x.example", "--role", "viewer", "--district").returncode == 0
    assert server.cli("users", "disable", "tech@lincoln.example").returncode == 0
    listed = json.loads(server.cli("users", "list", "--json").stdout)["users"]
    assert [(u["email"], u["role"], u["schools"], u["district_wide"], u["disabled"]) for u in listed] == [
        ("admin@localhost", "district_admin", [], False, False),
        ("auditor@x.example", "viewer", [], True, False),
        ("tech@lincoln.example", "technician", ["Lincoln High"], False, True),
    ]
    table = server.cli("users", "list").stdout
    assert "tech@lincoln.example" in table and "disabled" in table and "every school" in table

    audit = json.loads(server.cli("audit", "--json").stdout)["audit"]
    assert [e["action"] for e in audit if e["action"].startswith("user.")] == [
        "user.created",
        "user.created",
        "user.disabled",
    ]
    assert all(e["actor"] == "cli" for e in audit if e["action"].startswith("user."))
    # Who ran the command, and on which machine: the account is the audit's "who" for the CLI.
    me = f"command line: {getpass.getuser()}@{socket.gethostname()}"
    assert server.token("Lincoln High")
    audit = json.loads(server.cli("audit", "--json").stdout)["audit"]
    assert {e["address"] for e in audit if e["action"].startswith(("user.", "token.", "admin."))} == {me}
