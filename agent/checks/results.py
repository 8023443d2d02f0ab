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


@dataclass(frozen=True)
class Finding:
    """What a per-OS check decides, before the runner adds id, title and timing."""

    status: Status
    summary: str
    evidence: Evidence = field(default_factory=dict)
    remediation: str | None = None


def passed(summary: str, **evidence: Any) -> Finding:
    return Finding(Status.PASS, summary, dict(evidence))


def failed(summary: str, remediation: str, **evidence: Any) -> Finding:
    return Finding(Status.FAIL, summary, dict(evidence), remediation)


def unknown(summary: str, remediation: str | None = None, **evidence: Any) -> Finding:
    return Finding(Status.UNKNOWN, summary, dict(evidence), remediation)


def broken(summary: str, **evidence: Any) -> Finding:
    return Finding(Status.ERROR, summary, dict(evidence))


@dataclass(frozen=True)
class CheckResult:
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
