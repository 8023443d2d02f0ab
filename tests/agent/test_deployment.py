"""What a silent install leaves for the first enrolment: the MDM's managed preferences (macOS) and the
MSI's staged token (Windows), read for real and used by the real `homeroom-agent enroll`."""

from __future__ import annotations

import json
import plistlib
import stat
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from agent import cli, deployment
from agent.deployment import (
    Deployment,
    deployed_enrolment,
    deployment_from_managed_preferences,
    deployment_from_token_file,
    stage_token_file,
)
from agent.probes.facts import detect
from contract.errors import ConfigError
from tests.helpers.agent_process import agent
from tests.helpers.paths import ROOT
from tests.helpers.servers import InitialisedDatabases, ServerProcess

PROFILE = ROOT / "installer" / "macos" / "homeroom.mobileconfig"


def managed_preferences_from_profile(**changes: Any) -> dict[str, Any]:
    """What macOS writes to /Library/Managed Preferences/org.homeroom.agent.plist from the example
    profile: the payload's keys (macOS keeps the Payload* bookkeeping keys beside them)."""
    profile = plistlib.loads(PROFILE.read_bytes())
    (payload,) = [p for p in profile["PayloadContent"] if p["PayloadType"] == deployment.PREFERENCE_DOMAIN]
    return {**payload, **changes}


@pytest.fixture
def sqlite_server(tmp_path: Path, initialised_databases: InitialisedDatabases) -> Any:
    url = f"sqlite:///{tmp_path / 'server' / 'var' / 'homeroom.db'}"
    initialised_databases.copy_into(url)
    process = ServerProcess(url, tmp_path / "server")
    process.start()
    try:
        yield process
    finally:
        process.stop()


def test_the_example_profile_carries_the_keys_the_agent_reads() -> None:
    profile = plistlib.loads(PROFILE.read_bytes())
    assert profile["PayloadType"] == "Configuration" and profile["PayloadScope"] == "System"
    settings = managed_preferences_from_profile()
    assert {deployment.SERVER_KEY, deployment.TOKEN_KEY} <= set(settings)
    # macOS stores managed preferences as a binary property list; the XML form reads the same.
    for form in (plistlib.FMT_BINARY, plistlib.FMT_XML):
        found = deployment_from_managed_preferences(plistlib.dumps(settings, fmt=form))
        assert found == Deployment(
            "https://homeroom.example.org",
            "REPLACE-WITH-homeroom-server-token-create-OUTPUT",
            str(deployment.MANAGED_PREFERENCES),
        )


@pytest.mark.parametrize(
    ("changes", "said"),
    [
        ({"EnrolmentToken": ""}, "EnrolmentToken is missing"),
        ({"ServerURL": None}, "ServerURL is missing"),
        ({"EnrolmentToken": 12345}, "EnrolmentToken is a int, not text"),
        ({"ServerURL": "https://x\n.example.org"}, "ServerURL is not a server address or token"),
        ({"EnrolmentToken": "t" * 5000}, "EnrolmentToken is not a server address or token"),
    ],
)
def test_a_profile_with_a_key_wrong_or_missing_says_which_and_how_to_fix_it(
    changes: dict[str, Any], said: str
) -> None:
    settings = {k: v for k, v in managed_preferences_from_profile(**changes).items() if v is not None}
    with pytest.raises(ConfigError) as refused:
        deployment_from_managed_preferences(plistlib.dumps(settings, fmt=plistlib.FMT_BINARY), "prefs.plist")
    assert said in str(refused.value) and "EnrolmentToken (from `homeroom-server token create`)" in str(
        refused.value
    )


def test_what_is_not_a_property_list_is_refused_and_no_keys_is_nothing_to_do() -> None:
    for data in (b"not a plist", b"bplist00\xff\xff", plistlib.dumps(["a", "list"])):
        with pytest.raises(ConfigError):
            deployment_from_managed_preferences(data, "prefs.plist")
    assert deployment_from_managed_preferences(plistlib.dumps({"Other": "setting"})) is None
    with pytest.raises(ConfigError, match="not JSON"):
        deployment_from_token_file("{", "staged")


def test_the_staged_token_file_is_the_services_alone_from_its_creation(tmp_path: Path) -> None:
    path = stage_token_file(tmp_path / "state", "https://homeroom.example.org", "tok")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    staged = deployed_enrolment("windows", tmp_path / "state")
    assert staged is not None and (staged.server_url, staged.token) == ("https://homeroom.example.org", "tok")
    # Staged again (a repair install with new values) over a link someone left at that name: the
    # link is replaced by a new file, and what it pointed to is not written into.
    elsewhere = tmp_path / "elsewhere.txt"
    elsewhere.write_text("not yours")
    path.unlink()
    path.symlink_to(elsewhere)
    stage_token_file(tmp_path / "state", "https://other.example.org", "new")
    assert deployed_enrolment("linux", tmp_path / "state").token == "new"  # type: ignore[union-attr]
    assert not path.is_symlink() and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert elsewhere.read_text() == "not yours"


def test_enroll_takes_the_staged_token_forgets_it_and_if_not_enrolled_does_nothing_twice(
    sqlite_server: ServerProcess, state_dir: Path
) -> None:
    stage_token_file(state_dir, sqlite_server.url, sqlite_server.token("Staged"))
    enrolled = agent("enroll", "--if-not-enrolled", "--state-dir", str(state_dir))
    assert enrolled.returncode == 0, enrolled.stderr
    assert "in group Staged" in enrolled.stdout and "Removed the installer's copy" in enrolled.stdout
    assert not (state_dir / deployment.TOKEN_FILE).exists()
    first = json.loads((state_dir / "enrolment.json").read_text())

    again = agent("enroll", "--if-not-enrolled", "--state-dir", str(state_dir))
    assert again.returncode == 0 and "Already enrolled" in again.stdout, again.stdout + again.stderr
    assert json.loads((state_dir / "enrolment.json").read_text()) == first, "an upgrade does not re-key"

    nothing = agent("enroll", "--state-dir", str(state_dir / "other"))
    assert nothing.returncode == 2 and "no server address or enrolment token" in nothing.stderr


def test_on_macos_enroll_reads_the_mdms_managed_preferences(
    sqlite_server: ServerProcess,
    state_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    managed = tmp_path / "Managed Preferences" / "org.homeroom.agent.plist"
    managed.parent.mkdir()
    settings = managed_preferences_from_profile(
        ServerURL=sqlite_server.url, EnrolmentToken=sqlite_server.token("Macs")
    )
    managed.write_bytes(plistlib.dumps(settings, fmt=plistlib.FMT_BINARY))
    monkeypatch.setattr(deployment, "MANAGED_PREFERENCES", managed)
    facts = detect()
    monkeypatch.setattr(cli, "detect", lambda: replace(facts, os="macos"))
    assert cli.main(["enroll", "--if-not-enrolled", "--state-dir", str(state_dir)]) == 0
    said = capsys.readouterr()
    assert f"from {managed}" in said.err and "in group Macs" in said.out
    assert managed.exists(), "the MDM's file is the MDM's: left alone"
    assert json.loads((state_dir / "enrolment.json").read_text())["server_url"] == sqlite_server.url
