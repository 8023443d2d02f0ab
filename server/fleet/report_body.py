"""A report's body read with its software list compared as bytes before anything parses it.

A laptop sends its whole software list (a few hundred items, most of a 50 KB report) in every
report, and it rarely changes. Parsing and validating it was most of a report's server time. So
the list's bytes are told apart from the rest of the body first:

- with the device's row locked (and so its stored inventory: `counted.before_report`), the bytes
  at the place of the top-level `"software"` key, as long as the list the inventory was stored
  from (`listed_length`), are hashed; equal to `listed_digest`, they are the very bytes that were
  validated then;
- the rest of the body, with a placeholder string in the list's place, is validated by the report
  model (`ReportRestIn`: every rule of `ReportIn` but the list's). Only if the placeholder is the
  top-level `software` value does it validate, so the bytes were the report's list;
- any other list (changed, or the device's first) is found by a JSON scan, validated item by item
  exactly as before, and its bytes' digest kept for next time.

Whatever cannot be told apart this way (no list, an escaped key, a list named twice, bad JSON) is
parsed whole by `ReportIn` as it always was: a bad body is a 422, never a 500, and nothing that was
not validated is stored or acted on.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Annotated, Any, Literal

from pydantic import TypeAdapter, ValidationError

from server.api.bodies import BodyInvalid, parse
from server.api.schemas import ReportIn, SoftwareItemIn
from server.fleet.inventory_state import InventoryState
from server.fleet.software_inventory import InventoryPlan, Listed, ReportedInventory

# Where the list was, in the rest of the body: a string, which no valid report has as its list.
PLACEHOLDER = "listed apart"
_PLACEHOLDER_JSON = json.dumps(PLACEHOLDER).encode()
# The top-level key (and any other key named so, outside the list, which sends the body down the
# whole parse): the name found with `bytes.find`, then what must follow a key. The list itself is
# not searched for a second key (a regular expression passing over all of it took 35 µs a report).
_SOFTWARE_NAME = b'"software"'
_AFTER_KEY = re.compile(rb"\s*:\s*")
_SCAN: Any = json.JSONDecoder().scan_once  # type: ignore[attr-defined]

# The list as `ReportIn` holds it, with the same bounds (at most 10,000 items).
SOFTWARE_LIST: TypeAdapter[list[SoftwareItemIn]] = TypeAdapter(
    Annotated[(list[SoftwareItemIn], *ReportIn.model_fields["software"].metadata)]
)


class ReportRestIn(ReportIn):
    """A report with its software list replaced by `PLACEHOLDER`: everything else validated as in
    `ReportIn`, and the placeholder only valid as the top-level `software` value."""

    software: Literal["listed apart"]  # type: ignore[assignment]


_REST = TypeAdapter(ReportRestIn)


def list_start(raw: bytes) -> int | None:
    """Where the value of the first `"software"` key begins, or None (none, or its quote escaped)."""
    key = _next_key(raw, 0)
    if key is None or (key[0] > 0 and raw[key[0] - 1] == ord("\\")):
        return None
    return key[1]


def named_again(raw: bytes, after: int) -> bool:
    """Whether a `"software"` key follows the list that ends at `after`. None can be inside it: the
    list's items are validated with no key but their own."""
    return _next_key(raw, after) is not None


def _next_key(raw: bytes, at: int) -> tuple[int, int] | None:
    """The next key named `software` from `at`: where its name and its value begin."""
    at = raw.find(_SOFTWARE_NAME, at)
    while at != -1:
        after = _AFTER_KEY.match(raw, at + len(_SOFTWARE_NAME))
        if after is not None:
            return at, after.end()
        at = raw.find(_SOFTWARE_NAME, at + 1)
    return None


def scanned_length(raw: bytes, start: int) -> int | None:
    """The length in bytes of the JSON array at `start`, by the standard library's scanner, or None."""
    if raw[start : start + 1] != b"[":
        return None
    try:
        text = raw[start:].decode("utf-8")
        _value, end = _SCAN(text, 0)
    except (UnicodeDecodeError, ValueError, StopIteration, RecursionError):
        return None
    return len(text[:end].encode("utf-8"))


def rest_of(raw: bytes, start: int, length: int) -> bytes:
    return raw[:start] + _PLACEHOLDER_JSON + raw[start + length :]


def _rest_report(raw: bytes, start: int, length: int) -> ReportIn | None:
    try:
        report: ReportIn = _REST.validate_json(rest_of(raw, start, length))
    except ValidationError:
        return None  # the whole parse says what is wrong, in the usual words
    return report


def validated_list(listed: bytes) -> list[SoftwareItemIn]:
    """Every item by `SoftwareItemIn`'s rules, or BodyInvalid (a 422 naming `software`'s items)."""
    try:
        return SOFTWARE_LIST.validate_json(listed)
    except ValidationError as exc:
        raise BodyInvalid(
            [{**error, "loc": ("body", "software", *error["loc"])} for error in exc.errors()]
        ) from None


def read_report(raw: bytes, state: InventoryState | None) -> tuple[ReportIn, InventoryPlan]:
    """The report (its `software` not to be used: the plan holds it) and what it does to the
    device's inventory, whose state (`state`, read with the device row locked: `counted.before_report`)
    says which list was stored last. BodyInvalid for a bad body."""
    start = list_start(raw)
    if start is None:
        return _whole(raw, state)
    if state is not None and state.listed_length and state.listed_digest:
        stored = int(state.listed_length)
        candidate = raw[start : start + stored]
        if (
            len(candidate) == stored
            and candidate.endswith(b"]")
            and hashlib.sha256(candidate).hexdigest() == state.listed_digest
            and not named_again(raw, start + stored)
        ):
            same = _rest_report(raw, start, stored)
            if same is not None:
                return same, InventoryPlan(state, None, Listed(state.listed_digest, stored))
    length = scanned_length(raw, start)
    if length is None or named_again(raw, start + length):
        return _whole(raw, state)
    report = _rest_report(raw, start, length)
    if report is None:
        return _whole(raw, state)
    listed = raw[start : start + length]
    inventory = ReportedInventory.of(validated_list(listed))
    return report, InventoryPlan(state, inventory, Listed(hashlib.sha256(listed).hexdigest(), length))


def _whole(raw: bytes, state: InventoryState | None) -> tuple[ReportIn, InventoryPlan]:
    """The body parsed whole, as every report was before (its errors are the 422's)."""
    report = parse(ReportIn, raw)
    return report, InventoryPlan(state, ReportedInventory.of(report.software))
