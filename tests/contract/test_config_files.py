"""Config files: the shipped defaults load, and every mistake names the file, the line and the fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.config import load_agent_config
from contract.errors import ConfigError
from contract.requirements import CHECK_IDS, SoftwareRule, load_requirements, requirements_from_text


def test_shipped_defaults_load() -> None:
    requirements = load_requirements()
    assert requirements.enabled == CHECK_IDS
    assert requirements.screen_lock_max_idle_minutes == 15
    assert requirements.antivirus_max_xprotect_age_days == 30
    assert SoftwareRule("Zoom*", "Zoom Video Communications*") in requirements.software_approved
    agent = load_agent_config()
    assert agent.heartbeat_interval_minutes == 15 and agent.report_interval_hours == 4


def _error(text: str) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        requirements_from_text("requirements.toml", text)
    return caught.value


def test_malformed_toml_names_the_line() -> None:
    error = _error("[screen_lock]\nmax_idle_minutes = 15\n\n[antivirus\nmax_signature_age_days = 7\n")
    assert error.file == "requirements.toml"
    assert error.line == 4
    assert "not valid TOML" in error.message
    assert str(error).startswith("requirements.toml:4: ")
    assert "Fix:" in str(error)


def test_unknown_key_names_its_line_and_the_known_keys() -> None:
    error = _error("[checks]\ntimeout_seconds = 20\n\n[screen_lock]\n# a comment\nmax_idle_minute = 15\n")
    assert error.line == 6
    assert "unknown key 'max_idle_minute' in [screen_lock]" in error.message
    assert "max_idle_minutes" in error.fix


def test_unknown_section_is_refused() -> None:
    error = _error("[checks]\ntimeout_seconds = 20\n[firewal]\nrequired = true\n")
    assert error.line == 3
    assert "[firewal]" in error.message


def test_wrong_types_and_ranges_are_explained() -> None:
    error = _error('[screen_lock]\nmax_idle_minutes = "fifteen"\n')
    assert error.line == 2 and "whole number" in error.message
    error = _error("[screen_lock]\nmax_idle_minutes = 0\n")
    assert "between 1 and 240" in error.message
    error = _error('[checks]\nenabled = ["firewall", "bitlocker"]\n')
    assert "'bitlocker'" in error.message
    error = _error('[software]\nmode = "denylist"\n')
    assert "allowlist" in error.message
    error = _error('[software]\napproved = [{ name = "X", vendor = "Y" }]\n')
    assert "'vendor'" in error.message


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_requirements(tmp_path / "nope.toml")
    assert "file not found" in str(caught.value)


def test_agent_config_unknown_key(tmp_path: Path) -> None:
    path = tmp_path / "agent.toml"
    path.write_text('[server]\nurl = "https://homeroom.example"\ntoken = "x"\n', encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_agent_config(path)
    assert caught.value.line == 3 and "enrolment_token" in caught.value.fix
