"""The package's enrolment helpers: the server address written into agent.toml, the root-only token file."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from agent.config import load_agent_config
from agent.install_enrolment import forget_token, token_file_problem, token_from_file, with_server_url
from tests.helpers.paths import ROOT

SHIPPED = (ROOT / "config" / "agent.toml").read_text(encoding="utf-8")


def test_the_address_replaces_the_shipped_empty_one_and_keeps_every_comment(tmp_path: Path) -> None:
    text = with_server_url(SHIPPED, "https://homeroom.district.example")
    assert text.count("\n") == SHIPPED.count("\n")
    assert [line for line in text.splitlines() if line.startswith("#")] == [
        line for line in SHIPPED.splitlines() if line.startswith("#")
    ]
    path = tmp_path / "agent.toml"
    path.write_text(text)
    config = load_agent_config(path)
    assert config.server_url == "https://homeroom.district.example"
    assert config.outbox_max_mb == 50  # the rest as shipped


def test_a_file_without_the_setting_or_the_section_gets_it(tmp_path: Path) -> None:
    for text in (
        "[server]\nallow_insecure_http = false\n[tray]\nshow_quit = false\n",
        "[tray]\nshow_quit = false\n",
    ):
        path = tmp_path / "agent.toml"
        path.write_text(with_server_url(text, "https://h.example"))
        config = load_agent_config(path)
        assert (config.server_url, config.tray_show_quit) == ("https://h.example", False)


def test_an_address_that_would_break_the_file_is_refused_not_written() -> None:
    with pytest.raises(ValueError, match="not a web address"):
        with_server_url(SHIPPED, "homeroom.district.example")
    with pytest.raises(ValueError, match="control character"):
        with_server_url(SHIPPED, 'https://h.example/"\nenrolment_token = "x')
    quoted = with_server_url(SHIPPED, 'https://h.example/a"b\\c')
    assert 'url = "https://h.example/a\\"b\\\\c"' in quoted


def test_the_postinst_command_writes_a_world_readable_file_and_a_bad_address_changes_nothing(
    tmp_path: Path,
) -> None:
    path = tmp_path / "agent.toml"
    path.write_text(SHIPPED)
    command = [sys.executable, "-m", "agent.install_enrolment", "set-server-url", str(path)]
    done = subprocess.run([*command, "ftp://x"], cwd=ROOT, capture_output=True, text=True, check=False)
    assert done.returncode == 2 and "not a web address" in done.stderr
    assert path.read_text() == SHIPPED
    done = subprocess.run(
        [*command, "https://h.example"], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert os.stat(path).st_mode & 0o777 == 0o644
    assert load_agent_config(path).server_url == "https://h.example"


def test_the_token_file_is_read_trimmed_said_when_others_can_read_it_and_forgotten(tmp_path: Path) -> None:
    path = tmp_path / "enrolment-token"
    assert token_from_file(path) == "" and token_file_problem(path) is None
    path.write_text("  tok-123\n")
    path.chmod(0o600)
    assert token_from_file(path) == "tok-123" and token_file_problem(path) is None
    path.chmod(0o644)
    assert "readable by other users (mode 0644)" in (token_file_problem(path) or "")
    forget_token(path)
    forget_token(path)  # twice: nothing to forget is fine
    assert not path.exists()
