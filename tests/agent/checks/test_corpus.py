"""The corpus: recorded outputs of the real tools, each replayed through `homeroom-agent check --from-bundle`.

tests/fixtures/corpus/manifest.json lists every case: the bundle (a real
`diagnose` capture, under corpus/linux/) or the probe answers to build one
from (fixture files), the check, the verdict a person reading the output
expects, what kind of recording it is (capture, vendor-doc, public-capture,
public-test-data, hand-written) and its source. Only the first four count as
real; at least 60 must be. Where a case needs answers the real recording did
not include, `filler` says which and `decided_by` names the real answer the
verdict rests on. tests/fixtures/corpus/SOURCES.md says more.
"""

from __future__ import annotations

import io
import json
from contextlib import redirect_stdout
from pathlib import Path
from typing import Any

import pytest

from agent import cli
from agent.checks import CHECKS_BY_ID
from agent.checks.bundle import FORMAT, VERSION
from agent.checks.disk_encryption_windows import WINDOWS_NT_KEY
from agent.checks.results import IT_REMEDIATION
from tests.helpers.agent_process import agent
from tests.helpers.paths import FIXTURES

CORPUS = FIXTURES / "corpus"
MANIFEST: list[dict[str, Any]] = json.loads((CORPUS / "manifest.json").read_text(encoding="utf-8"))
KINDS = {"capture", "vendor-doc", "public-capture", "public-test-data", "hand-written"}
REAL_KINDS = KINDS - {"hand-written"}
CREATED = "2026-11-23T12:00:00+00:00"
PLATFORMS = {
    "windows": {"os_version": "10.0.22631", "machine": "AMD64", "home": "C:\\Users\\student1"},
    "macos": {"os_version": "15.1", "machine": "x86_64", "home": "/Users/student1"},
}


def _text(spec: dict[str, Any], name: str) -> str:
    if f"{name}_text" in spec:
        return str(spec[f"{name}_text"])
    if name in spec:
        return (FIXTURES / spec[name]).read_text(encoding="utf-8")
    return ""


def _record(spec: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """One probe answer from a manifest entry, keyed as a bundle keys it."""
    if "processes" in spec:
        return "processes", {"processes": [{"name": n} for n in spec["processes"]], "error": None}
    if "reg" in spec:
        return f"reg {spec['reg']}", {
            "values": spec.get("values", {}),
            "subkeys": [],
            "error": spec.get("error"),
        }
    if "file" in spec:
        text = (FIXTURES / spec["text"]).read_text(encoding="utf-8") if "text" in spec else None
        return f"file {spec['file']}", {"text": text, "error": spec.get("error"), "mtime": spec.get("mtime")}
    if "dir" in spec:
        return f"dir {spec['dir']}", {"entries": spec.get("entries", []), "error": spec.get("error")}
    answer = {
        "exit_code": spec.get("exit_code", None if spec.get("error") else 0),
        "stdout": _text(spec, "stdout"),
        "stderr": _text(spec, "stderr"),
        "error": spec.get("error"),
    }
    return (f"cim {spec['cim']}" if "cim" in spec else spec["id"]), answer


def built_bundle(case: dict[str, Any]) -> dict[str, Any]:
    os_name = case["os"]
    platform = {
        "os": os_name,
        "kernel": "",
        "hostname": "STUDENT-LT042",
        "user": "student1",
        "is_admin": True,
        "desktop": "",
        **PLATFORMS[os_name],
        **case.get("platform", {}),
    }
    probes = dict(_record(spec) for spec in case["probes"])
    if os_name == "windows":
        # Every Windows check reads SystemRoot first; a real diagnose bundle always has it.
        probes.setdefault(f"reg {WINDOWS_NT_KEY}", {"values": {"SystemRoot": "C:\\WINDOWS"}, "subkeys": []})
    return {
        "format": FORMAT,
        "version": VERSION,
        "agent_version": "0.1.0",
        "created": case.get("created", CREATED),
        "platform": platform,
        "requirements_toml": None,
        "software_baseline": None,
        "probes": probes,
        "results": [],
    }


def bundle_path(case: dict[str, Any], tmp_path: Path) -> Path:
    if "bundle" in case:
        return CORPUS / case["bundle"]
    path = tmp_path / f"{case['name']}.json"
    path.write_text(json.dumps(built_bundle(case)), encoding="utf-8")
    return path


def case_id(case: dict[str, Any]) -> str:
    return str(case.get("name") or case["bundle"])


def replay(path: Path, check: str) -> dict[str, Any]:
    """`homeroom-agent check --from-bundle PATH --only CHECK --json`, in this process (the same code path)."""
    out = io.StringIO()
    with redirect_stdout(out):
        cli.main(["check", "--from-bundle", str(path), "--only", check, "--json"])
    (result,) = json.loads(out.getvalue())["results"]
    return dict(result)


def test_the_corpus_is_large_and_covers_every_check_on_every_os() -> None:
    real = [case for case in MANIFEST if case["kind"] in REAL_KINDS]
    assert len(real) >= 60, f"{len(real)} real recordings (hand-written ones do not count)"
    covered = {(case.get("os") or _bundle_os(case), case["check"]) for case in MANIFEST}
    for os_name in ("windows", "macos", "linux"):
        for check in CHECKS_BY_ID:
            if check == "software" and os_name != "linux":
                continue  # the software inventory is rebuilt by its own issue
            assert (os_name, check) in covered, (os_name, check)
    for case in MANIFEST:
        assert case["kind"] in KINDS and case["source"] and case["why"], case_id(case)
        assert case["expect"] in {"pass", "fail", "unknown", "error"}


def _bundle_os(case: dict[str, Any]) -> str:
    return str(json.loads((CORPUS / case["bundle"]).read_text(encoding="utf-8"))["platform"]["os"])


@pytest.mark.parametrize("case", MANIFEST, ids=case_id)
def test_corpus_case_replays_to_its_expected_verdict(case: dict[str, Any], tmp_path: Path) -> None:
    result = replay(bundle_path(case, tmp_path), case["check"])
    assert result["status"] == case["expect"], (case_id(case), result["summary"])
    # A replay of a complete recording never blames the bundle for what it holds.
    assert not result["summary"].startswith("not in the bundle"), result["summary"]
    if result["status"] != "pass" and result["remediation"]:
        # Bundles are read by IT, but the person's words never send anyone to a terminal.
        assert "sudo " not in result["remediation"] and "terminal" not in result["remediation"]


STUDENT_FORBIDDEN = ("sudo", "terminal", "`", "powershell", "manage-bde", "systemctl", "defaults ")


@pytest.mark.parametrize("case", [c for c in MANIFEST if "probes" in c], ids=case_id)
def test_a_student_reading_any_corpus_case_is_never_sent_to_a_terminal(
    case: dict[str, Any], tmp_path: Path
) -> None:
    bundle = built_bundle(case)
    if case.get("root_only"):
        # Read only by the root service (firmwarepasswd): what it finds is read by a student in the tray.
        bundle["platform"]["user"] = "root"
    else:
        bundle["platform"]["is_admin"] = False
    path = tmp_path / "student.json"
    path.write_text(json.dumps(bundle), encoding="utf-8")
    result = replay(path, case["check"])
    assert result["status"] == case["expect"]
    words = (result["remediation"] or "").casefold()
    assert not any(bad in words for bad in STUDENT_FORBIDDEN), (case_id(case), result["remediation"])


@pytest.mark.parametrize(
    "name",
    [
        "windows-bitlocker-suspended",
        "windows-manage-bde-fr-used-space-protected",
        "macos-filevault-restart-to-finish",
        "linux/host.firewall.json",
    ],
)
def test_the_real_command_replays_corpus_bundles(name: str, tmp_path: Path) -> None:
    case = next(c for c in MANIFEST if case_id(c) == name)
    done = agent(
        "check", "--json", "--only", case["check"], "--from-bundle", str(bundle_path(case, tmp_path))
    )
    (result,) = json.loads(done.stdout)["results"]
    assert result["status"] == case["expect"], done.stderr


def test_a_student_is_told_what_to_ask_it_and_it_gets_the_command(tmp_path: Path) -> None:
    """The same suspended BitLocker, read by an administrator and by a student."""
    case = next(c for c in MANIFEST if case_id(c) == "windows-bitlocker-suspended")
    bundle = built_bundle(case)
    admin = tmp_path / "admin.json"
    admin.write_text(json.dumps(bundle), encoding="utf-8")
    bundle["platform"]["is_admin"] = False
    student = tmp_path / "student.json"
    student.write_text(json.dumps(bundle), encoding="utf-8")
    as_admin, as_student = replay(admin, "disk_encryption"), replay(student, "disk_encryption")
    assert "Resume protection" in as_admin["remediation"]
    assert as_student["remediation"].startswith("Ask your school's IT team")
    assert "Control Panel" not in as_student["remediation"]
    for result in (as_admin, as_student):
        assert result["evidence"][IT_REMEDIATION].startswith("Resume-BitLocker -MountPoint C:")


def test_windows_cim_fixtures_say_the_same_inside_as_outside() -> None:
    """Hand-written CIM recordings must be consistent: the file name's maker inside, CimTypes that fit."""
    fitting = {bool: {1}, int: set(range(2, 10)), str: {12, 13, 14}}
    for path in sorted((FIXTURES / "windows").glob("*.json")):
        data = json.loads(path.read_text(encoding="utf-8"))
        for item in data if isinstance(data, list) else [data]:
            for prop in item.get("CimInstanceProperties") or []:
                assert item.get(prop["Name"]) == prop["Value"], (path.name, prop["Name"])
                kind = type(prop["Value"])
                if kind in fitting:
                    assert prop["CimType"] in fitting[kind], (path.name, prop["Name"], prop["CimType"])
                assert isinstance(prop["Flags"], int), (path.name, "PowerShell 5.1 writes enums as numbers")
    for maker in ("acer", "dell", "hp", "lenovo"):
        system = json.loads(
            (FIXTURES / f"windows/win32-computersystem-{maker}.json").read_text(encoding="utf-8")
        )
        assert maker in system["Manufacturer"].casefold(), maker
