"""Whether to ask this person to sign the Acceptable Use Policy now, and why: pure decisions.

The promises behind it: the policy is shown at a person's first login and whenever the version
that applies to them changes; a sign-off can expire (a yearly renewal date such as the start of
the school year, or a number of days); and someone who chose "I do not agree" is asked again at
their next login (or after the interval the district sets), never nagged in between.

Everything here is a function of its arguments (no clock, no files), so every rule is tested
with plain values. Times are aware datetimes; a yearly renewal date is a calendar date, read in
the time zone of the `now` the caller passes (the laptop's local zone), because "15 August" at a
school means midnight there, not in UTC.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Literal, cast, get_args

from contract.policy import DIALOG_OPENINGS

# Re-exported: the rule is shared with the server (contract/renewal.py); the laptop's callers name it here.
from contract.renewal import Renewal as Renewal
from contract.renewal import expires_at as expires_at

Decision = Literal["agree", "decline"]
Reason = Literal["first", "changed", "renewal", "declined"]
DECISIONS: tuple[Decision, ...] = ("agree", "decline")

# A record id becomes part of a file name in the service's inbox: keep it to a safe alphabet.
RECORD_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
_NAME_WORD = re.compile(r"^[^\W\d_]+(?:['’.-][^\W\d_]*)*$")


@dataclass(frozen=True)
class SignOff:
    """One decision by one person about one version of one policy, as recorded and sent to IT."""

    record_id: str
    user: str
    full_name: str
    device_id: str | None
    policy_id: str
    policy_version: str
    decision: Decision
    decided_at: datetime

    def __post_init__(self) -> None:
        if not RECORD_ID.match(self.record_id):
            raise ValueError(f"record_id {self.record_id!r} must be 1-64 letters, digits, '-' or '_'")
        if self.decision not in DECISIONS:
            raise ValueError(f"decision must be 'agree' or 'decline', not {self.decision!r}")
        if self.decided_at.tzinfo is None or self.decided_at.utcoffset() is None:
            raise ValueError("decided_at must be an aware datetime")
        if not self.user or not self.policy_id or not self.policy_version:
            raise ValueError("user, policy_id and policy_version must not be empty")

    def to_json(self) -> dict[str, Any]:
        return {
            "record_id": self.record_id,
            "user": self.user,
            "full_name": self.full_name,
            "device_id": self.device_id,
            "policy_id": self.policy_id,
            "policy_version": self.policy_version,
            "decision": self.decision,
            "decided_at": self.decided_at.astimezone(timezone.utc).isoformat(),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> SignOff:
        """Rebuild a record; raises ValueError (never KeyError/TypeError) for anything malformed."""
        try:
            strings = {
                key: data[key]
                for key in ("record_id", "user", "full_name", "policy_id", "policy_version", "decision")
            }
            device_id = data["device_id"]
            decided_at = datetime.fromisoformat(str(data["decided_at"]))
        except (KeyError, TypeError) as error:
            raise ValueError(f"not a sign-off record: {error}") from error
        if not all(isinstance(value, str) for value in strings.values()):
            raise ValueError("sign-off fields must be strings")
        if device_id is not None and not isinstance(device_id, str):
            raise ValueError("device_id must be a string or null")
        return cls(
            record_id=strings["record_id"],
            user=strings["user"],
            full_name=strings["full_name"],
            device_id=device_id,
            policy_id=strings["policy_id"],
            policy_version=strings["policy_version"],
            decision=cast(Decision, strings["decision"]),
            decided_at=decided_at.astimezone(timezone.utc) if decided_at.tzinfo else decided_at,
        )


@dataclass(frozen=True)
class Prompt:
    """Why the person is being asked, and the friendly sentence that opens the dialog."""

    reason: Reason
    message: str


# The opening sentences live in contract/policy.py (DIALOG_OPENINGS): the console previews them.
MESSAGES: dict[Reason, str] = {reason: DIALOG_OPENINGS[reason] for reason in get_args(Reason)}
DEFAULT_TITLE = "the Acceptable Use Policy"


def prompt_for(reason: Reason, title: str = DEFAULT_TITLE) -> Prompt:
    return Prompt(reason, MESSAGES[reason].format(title=title))


def _latest_for_version(records: Iterable[SignOff], policy_id: str, version: str) -> SignOff | None:
    """The last decision about this exact version; equal times go to the one recorded later."""
    matching = [r for r in records if r.policy_id == policy_id and r.policy_version == version]
    # sorted() is stable, so among equal times the record that came later in the list wins.
    ordered = sorted(matching, key=lambda r: r.decided_at)
    return ordered[-1] if ordered else None


def signoff_prompt(
    records: list[SignOff],
    policy_id: str,
    version: str,
    renewal: Renewal,
    now: datetime,
    at_login: bool,
    title: str = DEFAULT_TITLE,
) -> Prompt | None:
    """Whether to show the sign-off dialog now (a Prompt saying why) or not (None).

    The person's latest decision about this exact version decides: a current "agree" means
    nothing to do; an expired one means renewal; a "decline" is asked about again at login, or
    once `decline_retry_hours` have passed. With no decision about this version, an agreement
    to an older version of the same policy means it changed; otherwise this is the first time.
    """
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be an aware datetime")
    latest = _latest_for_version(records, policy_id, version)
    if latest is not None and latest.decision == "agree":
        end = expires_at(latest.decided_at, renewal, now.tzinfo)
        if end is None or now < end:
            return None
        return prompt_for("renewal", title)
    if latest is not None:  # the last word on this version was "I do not agree"
        retry = renewal.decline_retry_hours
        due = retry is not None and now >= latest.decided_at + timedelta(hours=retry)
        return prompt_for("declined", title) if at_login or due else None
    agreed_before = any(r.policy_id == policy_id and r.decision == "agree" for r in records)
    if agreed_before:
        return prompt_for("changed", title)
    return prompt_for("first", title)


def is_signed(records: list[SignOff], policy_id: str, version: str, renewal: Renewal, now: datetime) -> bool:
    """True when this version is agreed to and not expired: the tray's green needs it."""
    return signoff_prompt(records, policy_id, version, renewal, now, at_login=True) is None


def normalise_full_name(typed: str) -> str:
    """The name as recorded: words separated by single spaces, no leading or trailing space."""
    return " ".join(typed.split())


def is_acceptable_name(typed: str) -> bool:
    """A name of at least two letters, in one word or several (hyphens, apostrophes, periods allowed).

    Many people have one name only (Sukarno, Madonna; many Indonesian and Burmese names), so one
    word is enough. Letters of any script count (José, Nguyễn, Ólafsdóttir); digits and symbols
    do not, so a stray "asdf 123" or a single letter does not unlock "I agree".
    """
    words = normalise_full_name(typed).split(" ")
    letters = sum(character.isalpha() for character in "".join(words))
    return letters >= 2 and all(_NAME_WORD.match(word) for word in words)
