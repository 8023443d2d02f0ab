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
from agent.checks.results import CheckResult, Finding, Status, broken

Clock = Callable[[], float]


def _run_one(spec: CheckSpec, ctx: CheckContext) -> Finding:
    try:
        finding = spec.implementation(ctx.platform.os)(ctx)
    except Exception as exc:  # noqa: BLE001 - a broken probe is reported, not raised
        return broken(f"the check broke: {type(exc).__name__}: {exc}", exception=type(exc).__name__)
    if finding.status is Status.PASS and finding.remediation:
        finding = Finding(finding.status, finding.summary, finding.evidence, None)
    return finding


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
            results.append(
                CheckResult(
                    id=spec.id,
                    title=spec.title,
                    status=finding.status,
                    summary=finding.summary,
                    evidence=finding.evidence,
                    remediation=finding.remediation,
                    duration_ms=round(elapsed * 1000),
                )
            )
    return results
