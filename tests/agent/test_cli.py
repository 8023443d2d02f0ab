"""`homeroom-agent check` and `diagnose`, run as real processes on this machine."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from contract.requirements import CHECK_IDS
from tests.helpers.agent_process import agent
from tests.helpers.need import need
from tests.helpers.paths import ROOT


def test_check_json_has_every_check_and_field(state_dir: Path) -> None:
    done = agent("check", "--json", "--state-dir", str(state_dir))
    assert done.returncode in (0, 1), done.stderr
    results = json.loads(done.stdout)["results"]
    assert [r["id"] for r in results] == list(CHECK_IDS)
    for result in results:
        assert set(result) == {"id", "title", "status", "summary", "evidence", "remediation", "duration_ms"}
        assert result["status"] in {"pass", "fail", "unknown", "error"}
        if result["status"] == "fail":
            assert result["remediation"]
    expected = 0 if all(r["status"] == "pass" for r in results) else 1
    assert done.returncode == expected


def test_only_runs_one_check(state_dir: Path) -> None:
    done = agent("check", "--json", "--only", "software", "--state-dir", str(state_dir))
    results = json.loads(done.stdout)["results"]
    assert [r["id"] for r in results] == ["software"]
    # The first run takes the baseline, so everything already installed is accepted.
    assert results[0]["status"] == "pass", results[0]
    assert (state_dir / "software-baseline.json").exists()


def test_table_output_is_readable(state_dir: Path) -> None:
    done = agent("check", "--state-dir", str(state_dir))
    lines = done.stdout.splitlines()
    assert lines[0].split() == ["STATUS", "CHECK", "SUMMARY"]
    assert any(line.startswith(("PASS", "FAIL", "UNKNOWN", "ERROR")) for line in lines[1:])
    assert "requirements met." in lines[-1]
    if done.returncode == 1:
        assert "How to fix:" in done.stdout


def test_usage_error_exits_2() -> None:
    done = agent("check", "--only", "bitlocker")
    assert done.returncode == 2
    assert "invalid choice" in done.stderr


def test_malformed_requirements_exit_2_naming_file_and_line(tmp_path: Path) -> None:
    bad = tmp_path / "requirements.toml"
    bad.write_text("[screen_lock]\nmax_idle_minutes = 15\nlock_after = 3\n", encoding="utf-8")
    done = agent("check", "--requirements", str(bad))
    assert done.returncode == 2
    assert f"{bad}:3: unknown key 'lock_after' in [screen_lock]" in done.stderr
    assert "Fix:" in done.stderr
    assert "Traceback" not in done.stderr


def test_malformed_agent_config_exit_2(tmp_path: Path) -> None:
    bad = tmp_path / "agent.toml"
    bad.write_text('[server]\nurl = "https://x\n', encoding="utf-8")
    done = agent("check", "--config", str(bad))
    assert done.returncode == 2
    assert f"{bad}:2:" in done.stderr and "not valid TOML" in done.stderr


def test_requirements_change_the_verdict(tmp_path: Path, state_dir: Path) -> None:
    strict = tmp_path / "requirements.toml"
    strict.write_text('[software]\nmode = "allowlist"\nbaseline = false\napproved = []\n', encoding="utf-8")
    done = agent(
        "check", "--json", "--only", "software", "--requirements", str(strict), "--state-dir", str(state_dir)
    )
    (result,) = json.loads(done.stdout)["results"]
    assert result["status"] == "fail"
    assert result["evidence"]["unapproved"], result
    assert done.returncode == 1


def test_diagnose_then_replay_reproduces_the_results(tmp_path: Path, state_dir: Path) -> None:
    bundle = tmp_path / "bundle.json"
    made = agent("diagnose", "-o", str(bundle), "--state-dir", str(state_dir))
    assert made.returncode == 0, made.stderr
    data = json.loads(bundle.read_text(encoding="utf-8"))
    assert data["format"] == "homeroom-diagnostic-bundle"
    assert data["platform"]["os"] == "linux"
    assert data["probes"]["linux.findmnt.root"]["command"] == "findmnt -J -o SOURCE,TARGET,FSTYPE /"
    assert "processes" in data["probes"]
    replay = agent("check", "--json", "--from-bundle", str(bundle))
    replayed = json.loads(replay.stdout)["results"]
    recorded = data["results"]
    assert [(r["id"], r["status"], r["summary"]) for r in replayed] == [
        (r["id"], r["status"], r["summary"]) for r in recorded
    ]


def test_damaged_bundle_is_a_clear_error(tmp_path: Path) -> None:
    bundle = tmp_path / "bundle.json"
    bundle.write_text('{"format": "something-else"}', encoding="utf-8")
    done = agent("check", "--from-bundle", str(bundle))
    assert done.returncode == 2
    assert "not a Homeroom diagnostic bundle" in done.stderr
    bundle.write_text("{not json", encoding="utf-8")
    done = agent("check", "--from-bundle", str(bundle))
    assert done.returncode == 2 and "not a readable JSON bundle" in done.stderr


def test_unprivileged_run_says_which_rights_are_missing(tmp_path: Path) -> None:
    """A real run as the unprivileged `nobody` user: the rules are unreadable, so unknown, not fail.

    It uses Debian's own python3 (ufw depends on it) with no third-party packages: the agent's
    `check` must work for any user, and the venv's interpreter may live under /root.
    """
    system_python = Path("/usr/bin/python3")
    need(os.geteuid() == 0 and shutil.which("runuser") is not None, "needs root to switch to the nobody user")
    need(system_python.exists(), "needs Debian's python3 (a dependency of ufw)")
    need(shutil.which("ufw") is not None, "needs ufw installed")
    state = tmp_path / "nobody-state"
    state.mkdir()
    shutil.chown(state, "nobody")
    tmp_path.chmod(0o711)
    argv = [
        "runuser",
        "-u",
        "nobody",
        "--",
        "env",
        f"PYTHONPATH={ROOT}",
        str(system_python),
        "-m",
        "agent.cli",
        "check",
        "--only",
        "firewall",
        "--state-dir",
        str(state),
    ]
    done = subprocess.run(argv, cwd="/", capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 1, done.stderr
    status_line = next(line for line in done.stdout.splitlines() if "Firewall" in line)
    assert status_line.startswith("UNKNOWN"), done.stdout
    assert "root rights" in status_line
    assert "Not confirmed without administrator rights: Firewall." in done.stdout


def test_the_agent_needs_none_of_the_server_packages() -> None:
    """The agent is installed on every laptop without the server extras: importing it must not need them."""
    code = (
        "import sys, agent.cli, agent.service, agent.server_link.client, agent.identity, agent.checks\n"
        "from agent.checks import CHECKS\n"
        "[spec.module(os) for spec in CHECKS for os in ('windows', 'macos', 'linux')]\n"
        "server_side = {'fastapi', 'sqlalchemy', 'alembic', 'uvicorn', 'pydantic', 'argon2', 'psycopg'}\n"
        "print(sorted(server_side & set(sys.modules)))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_the_users_tray_and_signoff_read_the_services_state_dir() -> None:
    from dataclasses import replace

    from agent.probes.facts import detect
    from agent.state import resolve_state_dir

    student = replace(detect(), os="linux", is_admin=False, home="/home/student1")
    assert resolve_state_dir(None, "", student, service_side=True) == Path("/var/lib/homeroom")
    assert resolve_state_dir(None, "", student) != Path(
        "/var/lib/homeroom"
    )  # `check` by a user keeps its own
    assert resolve_state_dir("/srv/hr", "", student, service_side=True) == Path("/srv/hr")
