"""The service's log in the OS's own place: journald priorities from the `<N>` prefix under systemd,
the syslog socket the unified log reads on macOS, the event log on Windows (which cannot run here:
the fallback when it cannot be opened is what is tested), one line per busy cycle."""

from __future__ import annotations

import io
import logging
import os
from pathlib import Path

from agent import service_log
from agent.service_log import (
    JournalFormatter,
    configure_service_logging,
    cycle_line,
    on_journal,
    syslog_priority,
)


def test_levels_map_to_syslog_priorities() -> None:
    assert [syslog_priority(level) for level in (10, 20, 30, 40, 50)] == [7, 6, 4, 3, 2]


def test_a_journal_line_carries_its_priority_on_every_line_and_no_time_of_its_own() -> None:
    record = logging.LogRecord("homeroom.agent", logging.WARNING, __file__, 1, "two\nlines", None, None)
    assert JournalFormatter().format(record) == "<4>homeroom.agent: two\n<4>lines"


def test_the_journal_is_recognised_only_when_the_stream_is_the_one_named(tmp_path: Path) -> None:
    with (tmp_path / "journal").open("w") as stream, (tmp_path / "other").open("w") as other:
        info = os.fstat(stream.fileno())
        named = {"JOURNAL_STREAM": f"{info.st_dev}:{info.st_ino}"}
        assert on_journal(named, stream)
        assert not on_journal(named, other)  # inherited by a child whose stderr went elsewhere
        assert not on_journal({}, stream)
        assert not on_journal({"JOURNAL_STREAM": "garbage"}, stream)


def test_configured_for_the_journal_or_for_a_terminal(tmp_path: Path) -> None:
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        with (tmp_path / "journal").open("w") as stream:
            info = os.fstat(stream.fileno())
            configure_service_logging(stream, {"JOURNAL_STREAM": f"{info.st_dev}:{info.st_ino}"})
            logging.getLogger("homeroom.agent").info("hello")
            logging.getLogger("homeroom.agent").debug("not at INFO")
        with (tmp_path / "terminal").open("w") as stream:
            configure_service_logging(stream, {})
            logging.getLogger("homeroom.agent").info("hello")
    finally:
        root.handlers[:], root.level = saved[0], saved[1]
    assert (tmp_path / "journal").read_text() == "<6>homeroom.agent: hello\n"
    assert " INFO homeroom.agent: hello" in (tmp_path / "terminal").read_text()


def test_one_line_for_a_cycle_that_did_something_none_for_an_idle_tick() -> None:
    assert cycle_line(False, False, False, 0, 0, 0) is None
    assert cycle_line(True, True, False, 1, 0, 0) == (
        "cycle: checked: yes, report queued: yes, heartbeat queued: no, sent: 1, still queued: 0"
    )
    assert cycle_line(False, False, True, 0, 1, 2) == (
        "cycle: checked: no, report queued: no, heartbeat queued: yes, sent: 0, refused by the server: 1, "
        "still queued: 2"
    )


def test_on_macos_the_lines_reach_the_syslog_socket_the_unified_log_reads(tmp_path: Path) -> None:
    """A real datagram socket stands where macOS has /var/run/syslog: the bytes are what syslogd
    (and so the unified log) receives, `<30>` being daemon.info (RFC 3164's facility 3 × 8 + 6)."""
    import socket

    address = tmp_path / "syslog"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    listener.bind(str(address))
    listener.settimeout(5)
    try:
        handler, why_not = service_log.unified_log(str(address))
        assert handler is not None and why_not == ""
        record = logging.LogRecord("agent.service", logging.INFO, __file__, 1, "cycle: sent: 1", None, None)
        handler.handle(record)
        handler.close()
        assert listener.recv(4096) == b"<30>homeroom-agent: agent.service: cycle: sent: 1\x00"
    finally:
        listener.close()


def test_a_missing_os_log_falls_back_to_stderr_and_says_why(tmp_path: Path) -> None:
    """No socket (or no pywin32 on Windows): the lines still go somewhere, and the first says why."""
    handler, why_not = service_log.unified_log(str(tmp_path / "absent"))
    assert handler is None and "cannot be opened" in why_not
    # This Linux machine has no pywin32: the Windows event log cannot be opened here, and says so.
    handler, why_not = service_log.windows_event_log()
    assert handler is None and "pywin32" in why_not
    stream = io.StringIO()
    service_log.configure_service_logging(stream, {}, os_name="windows")
    try:
        logging.getLogger("agent.service").info("cycle: sent: 2")
    finally:
        logging.getLogger().handlers.clear()
    lines = stream.getvalue().splitlines()
    assert "logging to stderr: the Windows event log cannot be written" in lines[0]
    assert lines[1].endswith("agent.service: cycle: sent: 2")
