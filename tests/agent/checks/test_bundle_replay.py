"""`check --from-bundle`: a Windows or macOS laptop's bundle replayed on this Linux machine.

The bundles are assembled from the recorded tool outputs under tests/fixtures
(manage-bde, Security Center CIM JSON, fdesetup; their sources are in
tests/fixtures/windows/SOURCES.md and tests/fixtures/macos/README.md), exactly
as `homeroom-agent diagnose` would have saved them on those machines.
"""

from __future__ import annotations

import json
from pathlib import Path

from agent.checks.bundle import FORMAT, VERSION
from agent.probes import LiveProbes, RecordingProbes, ReplayProbes
from tests.helpers.agent_process import agent
from tests.helpers.recorded import Recorded, fixture


def _write_bundle(
    path: Path, os_name: str, recorded: Recorded, created: str = "2026-11-20T08:00:00+00:00"
) -> Path:
    bundle = {
        "format": FORMAT,
        "version": VERSION,
        "agent_version": "0.1.0",
        "created": created,
        "platform": {
            "os": os_name,
            "os_version": "10.0.22631" if os_name == "windows" else "14.6.1",
            "kernel": "",
            "machine": "AMD64" if os_name == "windows" else "arm64",
            "hostname": "STUDENT-LT042",
            "user": "student1",
            "is_admin": True,
            "desktop": "",
            "home": "C:\\Users\\student1" if os_name == "windows" else "/Users/student1",
        },
        "requirements_toml": '[checks]\ntimeout_seconds = 10\n[software]\nmode = "blocklist"\n',
        "software_baseline": None,
        "probes": recorded.records,
        "results": [],
    }
    path.write_text(json.dumps(bundle), encoding="utf-8")
    return path


def test_windows_bundle_replays_on_linux(tmp_path: Path) -> None:
    recorded = (
        Recorded()
        .command(["manage-bde", "-status", "C:"], fixture("windows/manage-bde-status-suspended.txt"))
        .cim(
            "root\\SecurityCenter2", "AntiVirusProduct", fixture("windows/securitycenter2-thirdparty-on.json")
        )
    )
    bundle = _write_bundle(tmp_path / "windows.json", "windows", recorded)
    done = agent("check", "--json", "--from-bundle", str(bundle))
    assert done.returncode == 1, done.stderr
    results = {r["id"]: r for r in json.loads(done.stdout)["results"]}
    assert len(results) == 6
    assert results["disk_encryption"]["status"] == "fail"
    assert "suspended" in results["disk_encryption"]["summary"]
    assert results["antivirus"]["status"] == "pass"
    assert "Sophos" in results["antivirus"]["summary"]
    # What the bundle does not hold is reported as such, never invented.
    for check_id in ("firewall", "screen_lock"):
        assert results[check_id]["status"] in {"unknown", "error"}, results[check_id]


def test_macos_bundle_replays_on_linux_with_a_readable_header(tmp_path: Path) -> None:
    recorded = Recorded().command(["/usr/bin/fdesetup", "status"], fixture("macos/fdesetup_encrypting.txt"))
    bundle = _write_bundle(tmp_path / "mac.json", "macos", recorded)
    done = agent("check", "--only", "disk_encryption", "--from-bundle", str(bundle))
    assert done.returncode == 1
    assert done.stdout.startswith("Replaying ")
    assert "macos 14.6.1 (STUDENT-LT042), recorded 2026-11-20 08:00 UTC" in done.stdout
    fail_line = next(line for line in done.stdout.splitlines() if line.startswith("FAIL"))
    assert "Disk encryption" in fail_line
    assert "FileVault" in done.stdout


def test_bundle_requirements_are_used_unless_overridden(tmp_path: Path) -> None:
    recorded = Recorded().command(["/usr/bin/fdesetup", "status"], fixture("macos/fdesetup_on.txt"))
    bundle = _write_bundle(tmp_path / "mac.json", "macos", recorded)
    bad = tmp_path / "requirements.toml"
    bad.write_text("[checks]\ntimeout = 3\n", encoding="utf-8")
    done = agent(
        "check", "--only", "disk_encryption", "--from-bundle", str(bundle), "--requirements", str(bad)
    )
    assert done.returncode == 2 and f"{bad}:2:" in done.stderr
    done = agent("check", "--only", "disk_encryption", "--from-bundle", str(bundle))
    assert done.returncode == 0, done.stdout + done.stderr


# --- probe ids: answers keyed by a stable name, the command kept beside it ----------------------


def test_a_reworded_script_still_finds_its_recorded_answer() -> None:
    recorder = RecordingProbes(LiveProbes())
    recorder.run(["sh", "-c", "echo recorded"], probe_id="test.echo")
    record = recorder.records["test.echo"]
    assert record["command"] == "sh -c 'echo recorded'" and record["probe"] == "test.echo"
    replayed = ReplayProbes(recorder.records).run(["sh", "-c", "echo reworded"], probe_id="test.echo")
    assert replayed.stdout == "recorded\n" and replayed.ok


def test_bundles_from_before_probe_ids_still_replay() -> None:
    old = {"cmd manage-bde -status C:": {"exit_code": 0, "stdout": "old answer", "stderr": "", "error": None}}
    answer = ReplayProbes(old).run(["manage-bde", "-status", "C:"], probe_id="windows.bitlocker.manage-bde")
    assert answer.stdout == "old answer"


def test_registry_paths_match_whatever_their_case() -> None:
    records = {
        "reg HKLM\\Software\\Microsoft\\windows nt\\currentversion": {"values": {"SystemRoot": "D:\\W"}}
    }
    key = ReplayProbes(records).registry_key("HKLM\\SOFTWARE\\Microsoft\\Windows NT\\CurrentVersion")
    assert key.error is None and key.values == {"SystemRoot": "D:\\W"}


def test_diagnose_keys_commands_by_probe_id(tmp_path: Path) -> None:
    out = tmp_path / "bundle.json"
    done = agent("diagnose", "-o", str(out))
    assert done.returncode == 0, done.stderr
    probes = json.loads(out.read_text(encoding="utf-8"))["probes"]
    assert probes["linux.firewall.ufw"]["command"] == "ufw status verbose"
    assert probes["linux.findmnt.root"]["probe"] == "linux.findmnt.root"
    assert not any(key.startswith("cmd ufw") for key in probes)


def test_check_from_bundle_names_what_the_bundle_lacks(tmp_path: Path) -> None:
    recorded = Recorded().registry(
        "HKLM\\SOFTWARE\\Microsoft\\Windows NT\\CurrentVersion", values={"SystemRoot": "C:\\WINDOWS"}
    )
    bundle = _write_bundle(tmp_path / "thin.json", "windows", recorded)
    done = agent("check", "--json", "--only", "firewall", "--from-bundle", str(bundle))
    (result,) = json.loads(done.stdout)["results"]
    assert result["status"] == "unknown"
    assert result["summary"] == "not in the bundle: windows.firewall.profiles"
    assert result["evidence"]["not_in_bundle"] == ["windows.firewall.profiles"]
    assert "could not read the firewall profiles" in result["evidence"]["replayed_summary"]


def test_it_replaying_a_bundle_sees_the_exact_command(tmp_path: Path) -> None:
    recorded = Recorded().command(
        ["manage-bde", "-status", "C:"], fixture("windows/manage-bde-status-suspended.txt")
    )
    bundle = _write_bundle(tmp_path / "suspended.json", "windows", recorded)
    done = agent("check", "--only", "disk_encryption", "--from-bundle", str(bundle))
    assert "Resume BitLocker protection" in done.stdout
    assert "For IT: Resume-BitLocker -MountPoint C:" in done.stdout
