"""The Requirements page's form, as pure functions: the document's settings as form fields, the
fields written back into the document (with tomlkit, so comments and layout stay), and the diff IT
reads before saving.

Nothing is judged here: the text this builds is checked by `requirements_from_text`, the same
validation `homeroom-server requirements publish` and the agents apply. A field that is not a
number is written as text, so that validation names the key and the fix.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping, MutableMapping, Sequence
from dataclasses import dataclass
from typing import Any

import tomlkit
from tomlkit.exceptions import TOMLKitError

from contract.config_files import parse_toml
from contract.errors import ConfigError
from contract.requirements import CHECK_IDS, Requirements


@dataclass(frozen=True)
class Field:
    name: str  # the form field's name
    table: str
    key: str
    label: str
    kind: str  # "checks" | "whole" | "number" | "mode" | "switch" | "rules" | "month_day"


FIELDS: tuple[Field, ...] = (
    Field("enabled", "checks", "enabled", "Requirements checked", "checks"),
    Field("timeout_seconds", "checks", "timeout_seconds", "Time limit per check (seconds)", "number"),
    Field(
        "max_idle_minutes",
        "screen_lock",
        "max_idle_minutes",
        "Screen lock: longest idle time (minutes)",
        "whole",
    ),
    Field(
        "max_signature_age_days",
        "antivirus",
        "max_signature_age_days",
        "Antivirus: oldest signatures accepted (days)",
        "whole",
    ),
    Field(
        "max_xprotect_age_days",
        "antivirus",
        "max_xprotect_age_days",
        "Antivirus: oldest XProtect accepted on macOS (days)",
        "whole",
    ),
    Field("mode", "software", "mode", "Software: what is enforced", "mode"),
    Field("baseline", "software", "baseline", "Software already there at enrolment is accepted", "switch"),
    Field("approved", "software", "approved", "Approved apps", "rules"),
    Field("blocked", "software", "blocked", "Blocked apps", "rules"),
    Field("renew_on", "signoff", "renew_on", "Sign again each year on (MM-DD, empty: never)", "month_day"),
    Field("renew_after_days", "signoff", "renew_after_days", "Or sign again after (days, 0: never)", "whole"),
    Field(
        "ask_again_after_hours",
        "signoff",
        "ask_again_after_hours",
        "After “I do not agree”, ask again after (hours, 0: at the next login)",
        "whole",
    ),
)
PUBLISHER_SEPARATOR = " | "  # "Zoom* | Zoom Video Communications*": a name narrowed by its publisher


def rule_lines(rules: Sequence[Any]) -> str:
    """A list of rules as the form's lines: a name, or `name | publisher`."""
    lines = []
    for rule in rules:
        if isinstance(rule, Mapping):
            name, publisher = str(rule.get("name", "")), rule.get("publisher")
            lines.append(f"{name}{PUBLISHER_SEPARATOR}{publisher}" if publisher is not None else name)
        else:
            lines.append(str(rule))
    return "\n".join(lines)


def form_values(text: str, defaults: Requirements) -> dict[str, Any]:
    """The document's settings as the form shows them; a key the document leaves out shows the default
    the agents use for it."""
    data = parse_toml("requirements", text)
    shown: dict[str, Any] = {
        "enabled": list(defaults.enabled),
        "timeout_seconds": f"{defaults.check_timeout_seconds:g}",
        "max_idle_minutes": str(defaults.screen_lock_max_idle_minutes),
        "max_signature_age_days": str(defaults.antivirus_max_signature_age_days),
        "max_xprotect_age_days": str(defaults.antivirus_max_xprotect_age_days),
        "mode": defaults.software_mode,
        "baseline": defaults.software_baseline,
        "approved": "",
        "blocked": "",
        "renew_on": defaults.signoff_renew_on,
        "renew_after_days": str(defaults.signoff_renew_after_days),
        "ask_again_after_hours": str(defaults.signoff_ask_again_after_hours),
    }
    for field in FIELDS:
        table = data.get(field.table)
        if not isinstance(table, Mapping) or field.key not in table:
            continue
        value = table[field.key]
        if field.kind == "rules":
            shown[field.name] = rule_lines(value if isinstance(value, list) else [])
        elif field.kind in ("checks", "switch"):
            shown[field.name] = value
        elif isinstance(value, float):
            shown[field.name] = f"{value:g}"
        else:
            shown[field.name] = str(value)
    return shown


_WHOLE = re.compile(r"[+-]?\d{1,9}")
_NUMBER = re.compile(r"[+-]?(\d{1,9}(\.\d{0,6})?|\.\d{1,6})")


def _typed(field: Field, raw: Any) -> Any:
    """The TOML value a field's input stands for; None removes the key (an empty renewal date)."""
    if field.kind == "checks":
        chosen = {str(item) for item in (raw or [])}
        return [check for check in CHECK_IDS if check in chosen] + sorted(chosen - set(CHECK_IDS))
    if field.kind == "switch":
        return bool(raw)
    if field.kind == "rules":
        rules: list[Any] = []
        for line in str(raw or "").splitlines():
            line = line.strip()
            if not line:
                continue
            name, separator, publisher = line.partition(PUBLISHER_SEPARATOR.strip())
            if separator and name.strip() and publisher.strip():
                rules.append({"name": name.strip(), "publisher": publisher.strip()})
            else:
                rules.append(line)
        return rules
    text = str(raw or "").strip()
    if field.kind == "month_day":
        return text or None
    if field.kind == "whole" and _WHOLE.fullmatch(text):
        return int(text)
    if field.kind == "number" and _NUMBER.fullmatch(text):
        number = float(text)
        return int(number) if number.is_integer() else number
    return text  # "mode", or a number field holding words: the validation says what is wrong


def _rules_array(rules: list[Any]) -> Any:
    array = tomlkit.array()
    array.multiline(True)
    for rule in rules:
        if isinstance(rule, dict):
            table = tomlkit.inline_table()
            table.update(rule)
            array.append(table)
        else:
            array.append(rule)
    return array


def edited_text(current: str, posted: Mapping[str, Any]) -> str:
    """`current` with each field's posted value; a setting the form shows unchanged is left exactly
    as written (its comments and layout, or its absence), so the diff shows only what IT changed."""
    try:
        document = tomlkit.parse(current)
    except TOMLKitError as exc:
        raise ConfigError(
            "the requirements in force", None, f"cannot be edited ({exc})", "publish a file"
        ) from None
    shown = form_values(current, Requirements())
    for field in FIELDS:
        value = _typed(field, posted.get(field.name))
        if value == _typed(field, shown.get(field.name)):
            continue
        table = document.get(field.table)
        if table is None:
            if value is None:
                continue
            table = tomlkit.table()
            document[field.table] = table
        if not isinstance(table, MutableMapping):
            raise ConfigError(
                "the requirements in force",
                None,
                f"{field.table} is not a section",
                f"write it as [{field.table}]",
            )
        existing: Any = table.get(field.key)
        unwrapped = existing.unwrap() if hasattr(existing, "unwrap") else existing
        if value is None:
            if field.key in table:
                del table[field.key]
            continue
        if unwrapped == value:
            continue
        table[field.key] = _rules_array(value) if field.kind == "rules" else value
    return tomlkit.dumps(document)


@dataclass(frozen=True)
class DiffLine:
    kind: str  # "added" | "removed" | "context" | "where"
    text: str


def diff(current: str, proposed: str) -> list[DiffLine]:
    """A unified diff of the document in force against the one about to be saved."""
    lines: list[DiffLine] = []
    for line in difflib.unified_diff(
        current.splitlines(), proposed.splitlines(), "in force", "after saving", lineterm="", n=2
    ):
        if line.startswith(("---", "+++")):
            continue
        if line.startswith("@@"):
            lines.append(DiffLine("where", line))
        elif line.startswith("+"):
            lines.append(DiffLine("added", line))
        elif line.startswith("-"):
            lines.append(DiffLine("removed", line))
        else:
            lines.append(DiffLine("context", line))
    return lines
