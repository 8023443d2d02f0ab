"""Which of the district's approved and blocked rules an app falls under: one rule for both ends.

The laptop applies it to decide whether the software check passes; the server applies it to tell IT,
app by app, what the published requirements already say (`homeroom-server software`). Written once
here so the two can never disagree about what `"chromium*"` or a publisher glob covers.
"""

from __future__ import annotations

from fnmatch import fnmatchcase
from typing import Literal

from contract.requirements import Requirements, SoftwareRule

Standing = Literal["blocked", "approved", "neither"]


def rule_matches(rule: SoftwareRule, name: str, publisher: str) -> bool:
    """A name glob, case-insensitive; a rule with a publisher glob also needs the publisher to match."""
    if not fnmatchcase(name.casefold(), rule.name.casefold()):
        return False
    if rule.publisher is None:
        return True
    return fnmatchcase(publisher.casefold(), rule.publisher.casefold())


def standing(requirements: Requirements, name: str, publisher: str) -> Standing:
    """Blocked wins over approved, as on the laptop: a blocked rule is the district's stronger word."""
    if any(rule_matches(rule, name, publisher) for rule in requirements.software_blocked):
        return "blocked"
    if any(rule_matches(rule, name, publisher) for rule in requirements.software_approved):
        return "approved"
    return "neither"
