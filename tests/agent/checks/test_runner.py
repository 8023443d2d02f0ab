"""The runner: concurrent checks, each under a time limit, one result shape."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence

from agent.checks import CHECKS_BY_ID, select
from agent.checks.context import CheckContext
from agent.checks.results import Status
from agent.checks.runner import run_checks
from agent.probes import CommandOutput, ReplayProbes
from contract.requirements import CHECK_IDS, Requirements
from tests.helpers.recorded import Recorded


class HangingProbes(ReplayProbes):
    """Answers like a recording, except that one command never returns (as a stuck probe does)."""

    def __init__(self, records: dict, hang_on: str, release: threading.Event) -> None:
        super().__init__(records)
        self.hang_on = hang_on
        self.release = release

    def run(self, argv: Sequence[str], timeout: float = 15.0, probe_id: str | None = None) -> CommandOutput:
        if argv[0] == self.hang_on:
            self.release.wait(30)
        return super().run(argv, timeout, probe_id)


def test_a_hung_probe_times_out_without_delaying_the_others() -> None:
    release = threading.Event()
    recorded = Recorded().processes("falcon-sensor")
    base = recorded.context("linux")
    ctx = CheckContext(
        HangingProbes(recorded.records, "findmnt", release), base.platform, base.requirements, base.now
    )
    specs = [CHECKS_BY_ID["disk_encryption"], CHECKS_BY_ID["antivirus"]]
    began = time.monotonic()
    results = run_checks(specs, ctx, timeout=0.5)
    elapsed = time.monotonic() - began
    release.set()
    assert elapsed < 2.0
    encryption, antivirus = results
    assert encryption.status is Status.ERROR
    assert encryption.summary == "timed out after 0.5 s"
    assert antivirus.status is Status.PASS
    assert antivirus.duration_ms < 500


def test_results_carry_every_field_and_pass_has_no_remediation() -> None:
    ctx = Recorded().processes("falcon-sensor").context("linux")
    (result,) = run_checks([CHECKS_BY_ID["antivirus"]], ctx, timeout=5)
    data = result.to_json()
    assert set(data) == {"id", "title", "status", "summary", "evidence", "remediation", "duration_ms"}
    assert data["id"] == "antivirus" and data["status"] == "pass" and data["remediation"] is None


def test_a_check_that_raises_is_an_error_not_a_crash() -> None:
    # findmnt answers with something that is not JSON at all: the parser raises inside the check.
    ctx = Recorded().command(["findmnt", "-J", "-o", "SOURCE,TARGET,FSTYPE", "/"], "{").context("linux")
    (result,) = run_checks([CHECKS_BY_ID["disk_encryption"]], ctx, timeout=5)
    assert result.status is Status.ERROR


def test_registry_has_the_six_fixed_ids_and_knows_where_each_runs() -> None:
    assert tuple(CHECKS_BY_ID) == CHECK_IDS
    assert [spec.id for spec in select(CHECK_IDS, where="user")] == ["screen_lock"]
    assert "screen_lock" not in [spec.id for spec in select(CHECK_IDS, where="system")]
    assert [spec.id for spec in select(("firewall", "software"), only="software")] == ["software"]
    assert select(Requirements(enabled=("firewall",)).enabled, only="software") == []


def test_every_check_has_an_implementation_for_every_os() -> None:
    for spec in CHECKS_BY_ID.values():
        for os_name in ("windows", "macos", "linux"):
            assert callable(spec.implementation(os_name)), (spec.id, os_name)
