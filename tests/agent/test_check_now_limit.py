"""'Check now' from the inbox makes root run every check: at most one a minute per user is honoured."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from agent.desktop.handoff import write_entry
from tests.helpers.agent_service import Clock, service


def test_check_now_is_honoured_once_a_minute_per_user(
    state_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    clock = Clock()
    loop = service(state_dir, clock)
    assert loop.cycle(send=False).checked  # the first checks after start

    def ask(user: str, times: int = 1) -> bool:
        for i in range(times):
            write_entry(loop.inbox, "check_now", f"{user}{clock.now:.0f}n{i}", {"user": user})
        clock.advance(5)
        checked = loop.cycle(send=False).checked
        assert list(loop.inbox.iterdir()) == [], "dropped requests leave the inbox too"
        return checked

    assert ask("ada"), "the first request is honoured"
    with caplog.at_level(logging.WARNING, logger="homeroom.agent"):
        assert not ask("ada", times=20), "twenty more within the minute run nothing"
        assert not ask("ada", times=3)
    dropped = [r.getMessage() for r in caplog.records if "dropped 'Check now'" in r.getMessage()]
    assert dropped == ["dropped 'Check now' from 'ada': at most one a minute per user is honoured"]
    assert ask("grace"), "another user's request is not held back by ada's"
    clock.advance(60)
    assert ask("ada"), "a minute later ada is honoured again"
