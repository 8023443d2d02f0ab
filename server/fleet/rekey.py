"""When an enrolment may take over the record of a laptop the server already knows: pure decisions.

Hardware identity (serial, SMBIOS UUID, the keyed machine id) is copyable: a student can read
it, and an enrolment token is shared by a whole group. So matching an existing record is only a
*claim*. The rule (docs/architecture.md, "Re-keying a record"):

- re-key at once only when the token is of the record's own group, the match is by firmware
  identity (serial and SMBIOS UUID, not the machine id alone) and names one record only, and the
  old key has been silent for at least `quiet` (a laptop being re-installed is
  not reporting; one in use is);
- a claim of the same group made while the old key still reports waits: it is re-keyed when its
  own key signs a request after `quiet` of silence from the old key, and refused as soon as the
  old key signs again (the original keeps reporting);
- anything else (another group's token, the machine id alone, a collision) waits for IT;
- after an automatic re-key the old key is kept for `keep`: if it signs again, the re-key was a
  takeover and is undone.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

WaitsFor = Literal["quiet", "it"]


@dataclass(frozen=True)
class RekeyRule:
    quiet: timedelta = timedelta(minutes=60)
    keep: timedelta = timedelta(days=30)
    max_pending_claims: int = 10


@dataclass(frozen=True)
class MatchedRecord:
    """What the rule needs to know about the record (or records) a claim matched."""

    group_name: str
    last_seen_at: datetime | None
    by_firmware: bool  # serial and SMBIOS UUID; False when the keyed machine id alone matched
    matches: int  # how many records the identity matched (more than one: records already collide)


@dataclass(frozen=True)
class ReKeyNow:
    reason: str


@dataclass(frozen=True)
class Wait:
    waits_for: WaitsFor
    reason: str


def silence(last_seen_at: datetime | None, now: datetime) -> timedelta | None:
    return None if last_seen_at is None else now - last_seen_at


def _minutes(span: timedelta) -> str:
    minutes = max(0, int(span.total_seconds() // 60))
    return f"{minutes} minute{'s' if minutes != 1 else ''}"


def decide_claim(record: MatchedRecord, token_group: str, now: datetime, rule: RekeyRule) -> ReKeyNow | Wait:
    if record.matches > 1:
        return Wait("it", "this identity matches more than one device record: IT must decide which")
    if not record.by_firmware:
        return Wait("it", "matched by the machine id alone, which any user of a laptop can compute")
    if token_group != record.group_name:
        return Wait("it", f"the token is for group {token_group!r}, the laptop is in {record.group_name!r}")
    quiet_for = silence(record.last_seen_at, now)
    if quiet_for is not None and quiet_for < rule.quiet:
        return Wait(
            "quiet",
            f"the laptop's current key reported {_minutes(quiet_for)} ago; the new key is accepted once "
            f"the old one has been silent for {_minutes(rule.quiet)}, and refused if it reports again",
        )
    return ReKeyNow(
        "the old key had been silent for "
        + (_minutes(quiet_for) if quiet_for is not None else "ever (never reported)")
    )


def claim_ripe(
    claim_created_at: datetime, last_seen_at: datetime | None, now: datetime, rule: RekeyRule
) -> bool:
    """A claim waiting for quiet is taken when the old key has not signed since the claim and has now
    been silent for `quiet`."""
    if last_seen_at is not None and last_seen_at > claim_created_at:
        return False
    quiet_for = silence(last_seen_at, now)
    return quiet_for is None or quiet_for >= rule.quiet


def original_spoke_since(claim_created_at: datetime, last_seen_at: datetime | None) -> bool:
    return last_seen_at is not None and last_seen_at > claim_created_at
