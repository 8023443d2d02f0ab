"""What `homeroom-server` prints: device text escaped, spreadsheet-safe CSV; only `init` makes a database."""

from __future__ import annotations

import csv
import io
import os
import subprocess
import sys
from pathlib import Path

import pytest

from contract.policy import load_policy
from server.fleet.spreadsheet import spreadsheet_safe
from server.terminal import printable
from tests.helpers.cli_forks import fork_server, forks_enabled
from tests.helpers.paths import CONFIG, ROOT
from tests.helpers.servers import ServerProcess
from tests.helpers.signed_device import IDENTITY, Device, report
from tests.server.test_signoffs import signoff

# Retitles the window, clears the screen, then forges a table row of its own.
HOSTILE_HOSTNAME = "lt042\x1b]0;owned\x07\x1b[2J\nFAKE-ROW          Lincoln High   all pass"
HOSTILE_USER = "ada\r\x1b[1Agrace"
HOSTILE_NAME = "\u202eecalevol adA\u2028forged"


def lines_starting(text: str, prefix: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith(prefix)]


def test_device_text_cannot_drive_the_terminal_or_the_spreadsheet(server: ServerProcess) -> None:
    assert server.cli("policy", "publish", str(CONFIG / "policies" / "secondary.md")).returncode == 0
    version = load_policy(CONFIG / "policies" / "secondary.md").version
    device = Device(server, {**IDENTITY, "hostname": HOSTILE_HOSTNAME})
    assert device.enrol(server.token("Lincoln High")).status_code == 200
    body = {**report(), "identity": {**IDENTITY, "hostname": HOSTILE_HOSTNAME}, "users": [HOSTILE_USER]}
    assert device.post("/reports", body).status_code == 200
    for user, name in (
        (HOSTILE_USER, HOSTILE_NAME),
        ("bob", '  =HYPERLINK("http://x")'),
        ("cy", "\uff1d1+1"),
    ):
        assert device.post("/signoffs", signoff(user, version, full_name=name)).status_code == 200

    for command in (("devices",), ("signoffs",), ("audit",)):
        shown = server.cli(*command)
        assert shown.returncode == 0, shown.stderr
        out = shown.stdout
        assert "\x1b" not in out and "\r" not in out and "\x07" not in out, command
        assert "\u202e" not in out and "\u2028" not in out, command
        assert not lines_starting(out, "FAKE-ROW"), command
    assert "lt042\\x1b]0;owned\\x07" in server.cli("devices").stdout
    assert "\\u202e" in server.cli("signoffs").stdout

    exported = server.cli("signoffs", "--csv").stdout
    rows = {row["user"]: row for row in csv.DictReader(io.StringIO(exported))}
    assert rows["bob"]["full_name"] == '\'  =HYPERLINK("http://x")'
    assert rows["cy"]["full_name"] == "'\uff1d1+1"
    assert "\x1b" not in exported  # ESC stripped from the hostname and the user


@pytest.mark.parametrize(
    ("value", "safe"),
    [
        ("=1+1", "'=1+1"),
        ("   =1+1", "'   =1+1"),  # leading spaces
        ("\n=cmd|'/C calc'!A0", "'\n=cmd|'/C calc'!A0"),  # a line break first
        ("\u3000+1", "'\u3000+1"),  # ideographic space
        ("\uff1dSUM(A1)", "'\uff1dSUM(A1)"),  # full-width ＝
        ("\uff0b1", "'\uff0b1"),
        ("\uff0d1", "'\uff0d1"),
        ("\uff20SUM(A1)", "'\uff20SUM(A1)"),
        ("\ufe66x", "'\ufe66x"),  # small ﹦
        ("\x00=1+1", "'=1+1"),  # NUL removed, then seen
        ("a\x1b[2Jb", "a[2Jb"),  # ESC removed (the rest is harmless text)
        ("\t@x", "'\t@x"),
        ("Ada Lovelace", "Ada Lovelace"),
        ("O'Neil - 3rd grade", "O'Neil - 3rd grade"),
        ("   ", "   "),
        (None, ""),
        (-5, "'-5"),
    ],
)
def test_spreadsheet_safe_covers_the_owasp_forms(value: object, safe: str) -> None:
    assert spreadsheet_safe(value) == safe


def test_printable_escapes_controls_and_keeps_text() -> None:
    assert printable("Zoë’s laptop 中文 DOMAIN\\ada") == "Zoë’s laptop 中文 DOMAIN\\ada"
    assert printable("a\x1b[2J\nb\x7f\x9b\u202e") == "a\\x1b[2J\\nb\\x7f\\x9b\\u202e"
    assert printable(None) == ""


def _cli_in(
    directory: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """A command run from `directory` without --database: forked from the CLI fork server
    (tests/helpers/cli_forks.py) in that folder and environment, so only the imports are shared."""
    clean = {k: v for k, v in os.environ.items() if k not in ("HOMEROOM_DATA_DIR", "HOMEROOM_DATABASE_URL")}
    environment = {**clean, "PYTHONPATH": str(ROOT), **(env or {})}
    if forks_enabled():
        return fork_server().run(list(args), directory, timeout=120, env=environment)
    return subprocess.run(
        [sys.executable, "-m", "server.cli", *args],
        cwd=directory,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_only_init_creates_a_database(tmp_path: Path) -> None:
    elsewhere = tmp_path / "home"
    elsewhere.mkdir()
    requirements = CONFIG / "requirements.toml"
    for args in (
        ("devices",),
        ("audit",),
        ("signoffs",),
        ("token", "create", "--group", "x"),
        ("requirements", "publish", str(requirements)),
        ("serve",),
    ):
        done = _cli_in(elsewhere, *args)
        assert done.returncode == 2, (args, done.stdout, done.stderr)
        assert f"no database at {elsewhere / 'var' / 'homeroom.db'}" in done.stderr, args
        assert "current directory" in done.stderr and "--data-dir" in done.stderr, args
        assert "HOMEROOM_DATA_DIR" in done.stderr, args
    assert list(elsewhere.iterdir()) == []  # nothing was created

    data = tmp_path / "data"
    assert _cli_in(elsewhere, "init", "--data-dir", str(data)).returncode == 0
    assert (data / "var" / "homeroom.db").is_file() and list(elsewhere.iterdir()) == []
    found = _cli_in(elsewhere, "devices", env={"HOMEROOM_DATA_DIR": str(data)})
    assert found.returncode == 0 and "No devices enrolled yet" in found.stdout, found.stderr
    flagged = _cli_in(elsewhere, "audit", "--data-dir", str(tmp_path / "typo"))
    assert flagged.returncode == 2 and "under --data-dir" in flagged.stderr
    assert not (tmp_path / "typo").exists()
