"""What every check is given: where to look, what the district asks, and the time."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from agent.probes import Probes
from agent.probes.facts import PlatformFacts
from contract.requirements import Requirements


class SoftwareBaseline(Protocol):
    """Software accepted because it was already there at enrolment.

    `establish` returns the stored baseline, or stores `current` as the
    baseline when none exists yet and returns it.
    """

    def establish(self, current: frozenset[str]) -> frozenset[str]: ...


@dataclass(frozen=True)
class CheckContext:
    probes: Probes
    platform: PlatformFacts
    requirements: Requirements
    now: datetime  # timezone-aware UTC; passed in so tests can fix it
    baseline: SoftwareBaseline | None = None
