"""Enrolment by an installed package: the token waits in a root-only file until it has been used.

A district pushes the package with the server address and an enrolment token (debconf preseed,
or files it drops in /etc/homeroom/). The token must not sit where a student can read it (agent.toml
is world-readable: the tray reads it), so it lives in its own file, mode 0600, and is removed once
the laptop is enrolled (a stolen token enrols new devices until IT revokes it). The service's unit
runs `enroll --if-not-enrolled --token-file …` before each start, so a laptop installed while the
server was unreachable enrols at a later start.
"""

from __future__ import annotations

import re
import stat
import sys
from pathlib import Path

from agent.messages import server_url_problem
from agent.state import write_atomically

TOKEN_FILE = Path("/etc/homeroom/enrolment-token")


def token_from_file(path: Path) -> str:
    """The token in `path` (one line, blanks trimmed), or "" when there is none."""
    try:
        return path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return ""


def token_file_problem(path: Path) -> str | None:
    """Why the token file is not as private as it must be (readable by users), or None."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        return f"{path} is readable by other users (mode {stat.S_IMODE(mode):04o}); it is removed after use"
    return None


def forget_token(path: Path) -> None:
    """Used, or not needed any more: gone, so a later reader of the disk finds no token."""
    path.unlink(missing_ok=True)


SERVER_HEADER = re.compile(r"^\s*\[server\]\s*(#.*)?$")
ANY_HEADER = re.compile(r"^\s*\[")
URL_LINE = re.compile(r"^(\s*)url\s*=")


def toml_string(text: str) -> str:
    """A TOML basic string; control characters are refused, not escaped (no address holds one)."""
    if any(ord(char) < 0x20 or ord(char) == 0x7F for char in text):
        raise ValueError("the server address holds a control character")
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def with_server_url(text: str, url: str) -> str:
    """agent.toml with `[server] url` set to `url`, every other line (and comment) as it was."""
    if problem := server_url_problem(url):
        raise ValueError(problem)
    setting = f"url = {toml_string(url)}"
    lines = text.splitlines()
    start = next((i for i, line in enumerate(lines) if SERVER_HEADER.match(line)), None)
    if start is None:
        return "\n".join([*lines, "", "[server]", setting]) + "\n"
    end = next((i for i in range(start + 1, len(lines)) if ANY_HEADER.match(lines[i])), len(lines))
    for i in range(start + 1, end):
        if match := URL_LINE.match(lines[i]):
            lines[i] = match.group(1) + setting
            break
    else:
        lines.insert(start + 1, setting)
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    """`python -m agent.install_enrolment set-server-url FILE URL`: the package's postinst (debconf)."""
    if len(argv) != 3 or argv[0] != "set-server-url":
        print("usage: python -m agent.install_enrolment set-server-url FILE URL", file=sys.stderr)
        return 2
    path, url = Path(argv[1]), argv[2]
    try:
        text = with_server_url(path.read_text(encoding="utf-8"), url)
    except (OSError, ValueError) as exc:
        print(f"homeroom-agent: {path}: {exc}", file=sys.stderr)
        return 2
    write_atomically(path, text)
    path.chmod(0o644)  # the tray, run by each user, reads it
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
