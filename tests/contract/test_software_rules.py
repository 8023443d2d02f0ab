"""The one rule both ends use to say whether an approved or blocked entry covers an app."""

from __future__ import annotations

from contract.requirements import Requirements, SoftwareRule, requirements_from_text
from contract.software_rules import rule_matches, standing


def test_names_are_globs_without_regard_to_case_and_publishers_narrow_them() -> None:
    assert rule_matches(SoftwareRule("chromium*"), "Chromium-Browser", "")
    assert not rule_matches(SoftwareRule("chromium*"), "ungoogled-chromium", "")
    zoom = SoftwareRule("Zoom*", "Zoom Video*")
    assert rule_matches(zoom, "Zoom Workplace", "zoom video communications, inc.")
    assert not rule_matches(zoom, "Zoom Workplace", "Someone Else")


def test_blocked_wins_over_approved() -> None:
    requirements = requirements_from_text(
        "requirements.toml", '[software]\napproved = ["tor*", "vlc"]\nblocked = ["torbrowser*"]\n'
    )
    assert standing(requirements, "torbrowser-launcher", "") == "blocked"
    assert standing(requirements, "tor", "") == "approved"
    assert standing(requirements, "VLC", "VideoLAN") == "approved"
    assert standing(requirements, "gimp", "") == "neither"
    assert standing(Requirements(), "gimp", "") == "neither"
