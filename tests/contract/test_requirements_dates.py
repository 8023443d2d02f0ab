"""`[signoff] renew_on`: a day the month never has is refused where it is read, with file, line and fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from contract.errors import ConfigError
from contract.requirements import requirements_from_text
from tests.helpers.agent_process import agent
from tests.helpers.servers import ServerProcess


def text(renew_on: str) -> str:
    return f'[screen_lock]\nmax_idle_minutes = 10\n\n[signoff]\nrenew_on = "{renew_on}"\n'


@pytest.mark.parametrize("impossible", ["02-30", "02-31", "04-31", "06-31", "09-31", "11-31"])
def test_impossible_days_are_refused(impossible: str) -> None:
    with pytest.raises(ConfigError) as refused:
        requirements_from_text("requirements.toml", text(impossible))
    message = str(refused.value)
    assert message.startswith("requirements.toml:5:") and impossible in message
    assert '"MM-DD"' in message  # the fix


@pytest.mark.parametrize("possible", ["02-29", "01-31", "08-15", "12-31", "04-30"])
def test_real_days_pass(possible: str) -> None:
    assert requirements_from_text("requirements.toml", text(possible)).signoff_renew_on == possible


def test_publish_and_the_agent_refuse_02_30(tmp_path: Path) -> None:
    bad = tmp_path / "requirements.toml"
    bad.write_text(text("02-30"), encoding="utf-8")
    server = ServerProcess(f"sqlite:///{tmp_path / 'var' / 'homeroom.db'}", tmp_path)
    server.init()
    published = server.cli("requirements", "publish", str(bad), "--group", "Lincoln High")
    assert published.returncode == 2
    assert f"{bad}:5:" in published.stderr and "never has" in published.stderr and "Fix:" in published.stderr
    checked = agent("check", "--requirements", str(bad))
    assert checked.returncode == 2, checked.stdout + checked.stderr
    assert f"{bad}:5:" in checked.stderr and "never has" in checked.stderr
