"""Runs checks side by side, each under a time limit.

Probes can hang (a WMI provider, a stuck D-Bus call). Every check runs in its
own daemon thread so one that hangs ends as `error` at the deadline without
holding up the others, and never keeps the process from exiting.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence

from agent.checks import CheckSpec
from agent.checks.context import CheckContext
from agent.checks.results import IT_REMEDIATION, Advice, CheckResult, Finding, Status, broken
from agent.probes import ReplayProbes
from agent.probes.facts import PlatformFacts

Clock = Callable[[], float]


def _run_one(spec: CheckSpec, ctx: CheckContext) -> Finding:
    try:
        finding = spec.implementation(ctx.platform.os)(ctx)
    except Exception as exc:  # noqa: BLE001 - a broken probe is reported, not raised
        finding = broken(f"the check broke: {type(exc).__name__}: {exc}", exception=type(exc).__name__)
    if isinstance(ctx.probes, ReplayProbes):
        finding = with_bundle_gaps(finding, ctx.probes.take_missing())
    if finding.status is Status.PASS and finding.remediation:
        finding = Finding(finding.status, finding.summary, finding.evidence, None)
    return finding


def with_bundle_gaps(finding: Finding, missing: list[str]) -> Finding:
    """A replay that lacked what the check asked for says so, rather than blame the OS.

    A verdict reached anyway (pass/fail) stands, with the gaps in the evidence;
    an `unknown` or `error` becomes "not in the bundle", naming the probes.
    """
    if not missing:
        return finding
    evidence = {**finding.evidence, "not_in_bundle": missing}
    if finding.status in (Status.PASS, Status.FAIL):
        return Finding(finding.status, finding.summary, evidence, finding.remediation)
    evidence["replayed_summary"] = finding.summary
    return Finding(Status.UNKNOWN, f"not in the bundle: {', '.join(missing)}", evidence, None)


def for_reader(finding: Finding, platform: PlatformFacts) -> tuple[str | None, dict[str, object]]:
    """The remediation the reader of this run gets, and the evidence with IT's command added."""
    remediation = finding.remediation
    if not isinstance(remediation, Advice):
        return remediation, finding.evidence
    evidence = dict(finding.evidence)
    if remediation.it:
        evidence[IT_REMEDIATION] = remediation.it
    return remediation.for_reader(platform.reader_is_admin), evidence


def run_checks(
    specs: Sequence[CheckSpec], ctx: CheckContext, timeout: float, clock: Clock = time.monotonic
) -> list[CheckResult]:
    findings: dict[str, tuple[Finding, float]] = {}
    lock = threading.Lock()
    started = clock()

    def worker(spec: CheckSpec) -> None:
        began = clock()
        finding = _run_one(spec, ctx)
        with lock:
            findings[spec.id] = (finding, clock() - began)

    threads = [
        threading.Thread(target=worker, args=(spec,), name=f"check-{spec.id}", daemon=True) for spec in specs
    ]
    for thread in threads:
        thread.start()
    deadline = started + timeout
    for thread in threads:
        thread.join(max(0.0, deadline - clock()))

    results: list[CheckResult] = []
    with lock:
        for spec in specs:
            if spec.id in findings:
                finding, elapsed = findings[spec.id]
            else:
                finding = broken(f"timed out after {timeout:g} s", timeout_seconds=timeout)
                elapsed = clock() - started
            remediation, evidence = for_reader(finding, ctx.platform)
            results.append(
                CheckResult(
                    id=spec.id,
                    title=spec.title,
                    status=finding.status,
                    summary=finding.summary,
                    evidence=evidence,
                    remediation=remediation,
                    duration_ms=round(elapsed * 1000),
                )
            )
    return results
