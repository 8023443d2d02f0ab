"""Reading the TOML files a district edits by hand, and saying exactly what is wrong with them.

A mistake must come back as the file, the line and the fix, never as a traceback,
and an unknown key is a mistake (a misspelt `max_idle_minute` would otherwise
silently keep the default). The agent's `agent.toml` and the shared
`requirements.toml` both use this small schema language.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from contract.errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

# The defaults shipped with Homeroom: agent.toml, requirements.toml and the policies; installed from
# a package (no source tree beside the code), the package's /etc/homeroom.
SOURCE_CONFIG_DIR = Path(__file__).resolve().parent.parent / "config"
CONFIG_DIR = SOURCE_CONFIG_DIR if SOURCE_CONFIG_DIR.is_dir() else Path("/etc/homeroom")


# --- locating keys in the source, for line numbers ---------------------------------

_HEADER = re.compile(r"^\s*\[\[?\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")


def _key_pattern(key: str) -> re.Pattern[str]:
    quoted = re.escape(key)
    return re.compile(rf"^\s*(?:{quoted}|\"{quoted}\"|'{quoted}')\s*=")


def locate(text: str, table: str, key: str | None) -> int | None:
    """The 1-based line of `key` inside `[table]` (or of the header itself when key is None)."""
    current = ""
    pattern = _key_pattern(key) if key is not None else None
    for number, line in enumerate(text.splitlines(), start=1):
        header = _HEADER.match(line)
        if header:
            current = header.group(1).replace(" ", "")
            if key is None and current == table:
                return number
            continue
        if pattern is not None and current == table and pattern.match(line):
            return number
    return None


# --- a small schema -------------------------------------------------------------------

Validator = Callable[[Any], str | None]  # returns the problem, or None when fine


def int_range(low: int, high: int) -> Validator:
    def check(value: Any) -> str | None:
        if isinstance(value, bool) or not isinstance(value, int):
            return f"must be a whole number, not {type(value).__name__}"
        if not low <= value <= high:
            return f"must be between {low} and {high}, not {value}"
        return None

    return check


def number_range(low: float, high: float) -> Validator:
    def check(value: Any) -> str | None:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return f"must be a number, not {type(value).__name__}"
        if not low <= value <= high:
            return f"must be between {low:g} and {high:g}, not {value}"
        return None

    return check


def quoted_string(value: Any) -> str | None:
    return None if isinstance(value, str) else f"must be a quoted string, not {type(value).__name__}"


def boolean(value: Any) -> str | None:
    return None if isinstance(value, bool) else "must be true or false"


def one_of(*choices: str) -> Validator:
    def check(value: Any) -> str | None:
        if value not in choices:
            return f"must be one of {', '.join(repr(c) for c in choices)}, not {value!r}"
        return None

    return check


Schema = dict[str, dict[str, tuple[Validator, str]]]  # table -> key -> (validator, fix hint)


def toml_error_position(exc: tomllib.TOMLDecodeError) -> tuple[int | None, str]:
    """The line and the bare message of a TOML syntax error (older tomllib and tomli give only text)."""
    line = getattr(exc, "lineno", None)
    if line is None:
        match = re.search(r"line (\d+)", str(exc))
        line = int(match.group(1)) if match else None
    return line, re.sub(r"\s*\(at line \d+, column \d+\)", "", getattr(exc, "msg", str(exc)))


def parse_toml(name: str, text: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        line, message = toml_error_position(exc)
        raise ConfigError(
            name,
            line,
            f"is not valid TOML: {message}",
            'keys are written key = value, strings in "quotes", tables as [name]',
        ) from None


def read_config_text(path: Path) -> str:
    name = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            name, None, "file not found", "check the path, or remove the option to use the default"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(
            name, None, f"cannot be read ({exc})", "make it a readable UTF-8 text file"
        ) from None
    return text


def validate(name: str, text: str, data: dict[str, Any], schema: Schema) -> None:
    for table, values in data.items():
        if table not in schema:
            raise ConfigError(
                name,
                locate(text, table, None) or locate(text, "", table),
                f"unknown section [{table}]",
                f"use one of {', '.join('[' + t + ']' for t in schema)}",
            )
        if not isinstance(values, dict):
            raise ConfigError(
                name, locate(text, "", table), f"{table} must be a section", f"write it as [{table}]"
            )
        for key, value in values.items():
            line = locate(text, table, key)
            if key not in schema[table]:
                known = ", ".join(schema[table])
                raise ConfigError(name, line, f"unknown key {key!r} in [{table}]", f"use one of: {known}")
            validator, fix = schema[table][key]
            problem = validator(value)
            if problem:
                raise ConfigError(name, line, f"[{table}] {key} {problem}", fix)
