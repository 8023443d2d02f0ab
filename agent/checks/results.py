"""The one shape every check answers in.

A check never guesses: when the OS does not tell us, the answer is `unknown`
with the reason; when the probe itself broke, it is `error` with how. Only
`pass` and `fail` are verdicts about the laptop.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any


class Status(str, enum.Enum):
    PASS = "pass"
    FAIL = "fail"
    UNKNOWN = "unknown"
    ERROR = "error"


Evidence = dict[str, Any]
# The evidence key that carries the exact command for IT (the console, the bundle).
IT_REMEDIATION = "it_remediation"


@dataclass(frozen=True)
class Advice:
    """A fix that needs administrator rights, told to each reader in their own terms.

    `yourself` is for a person who has the rights (plain steps, never a terminal);
    `ask_it` tells someone without them (every student) what to ask IT for; `it`
    is the exact command, which goes to IT only, in the evidence.
    """

    yourself: str
    ask_it: str
    it: str | None = None

    def for_reader(self, reader_is_admin: bool) -> str:
        return self.yourself if reader_is_admin else self.ask_it


Remediation = str | Advice


@dataclass(frozen=True)
class Finding:
    """What a per-OS check decides, before the runner adds id, title and timing.

    A plain-text remediation is something anyone can do (a user's own screen
    lock); an `Advice` is chosen by the runner for whoever will read it.
    """

    status: Status
    summary: str
    evidence: Evidence = field(default_factory=dict)
    remediation: Remediation | None = None


def passed(summary: str, **evidence: Any) -> Finding:
    return Finding(Status.PASS, summary, dict(evidence))


def failed(summary: str, remediation: Remediation, **evidence: Any) -> Finding:
    return Finding(Status.FAIL, summary, dict(evidence), remediation)


def unknown(summary: str, remediation: Remediation | None = None, **evidence: Any) -> Finding:
    return Finding(Status.UNKNOWN, summary, dict(evidence), remediation)


def ask_it(what: str, it: str | None = None) -> Advice:
    """Something only IT does (reinstall with encryption, a BIOS password): the same words for everyone."""
    return Advice(what, what, it)


def broken(summary: str, **evidence: Any) -> Finding:
    return Finding(Status.ERROR, summary, dict(evidence))


@dataclass(frozen=True)
class CheckResult:
    """What is sent and shown. `remediation` is already the reader's text; IT's command is in
    `evidence["it_remediation"]`, so the wire shape is unchanged."""

    id: str
    title: str
    status: Status
    summary: str
    evidence: Evidence
    remediation: str | None
    duration_ms: int

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "title": self.title,
            "status": self.status.value,
            "summary": self.summary,
            "evidence": self.evidence,
            "remediation": self.remediation,
            "duration_ms": self.duration_ms,
        }
