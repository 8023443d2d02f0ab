"""Turning results into what a person reads at a terminal."""

from __future__ import annotations

import textwrap
from collections.abc import Sequence

from agent.checks.results import IT_REMEDIATION, CheckResult, Status

LABELS = {Status.PASS: "PASS", Status.FAIL: "FAIL", Status.UNKNOWN: "UNKNOWN", Status.ERROR: "ERROR"}


def results_table(
    results: Sequence[CheckResult], width: int = 100, needed_admin: Sequence[str] = (), for_it: bool = False
) -> str:
    """Status, check and summary in columns; then how to fix each thing that did not pass.

    `for_it` (an administrator, or IT replaying a bundle) adds the exact commands.
    """
    if not results:
        return "No checks were run.\n"
    status_w = max(len("STATUS"), *(len(LABELS[r.status]) for r in results))
    title_w = max(len("CHECK"), *(len(r.title) for r in results))
    summary_w = max(30, width - status_w - title_w - 4)
    indent = " " * (status_w + title_w + 4)
    lines = [f"{'STATUS':<{status_w}}  {'CHECK':<{title_w}}  SUMMARY"]
    for result in results:
        wrapped = textwrap.wrap(result.summary, summary_w) or [""]
        lines.append(f"{LABELS[result.status]:<{status_w}}  {result.title:<{title_w}}  {wrapped[0]}")
        lines.extend(indent + more for more in wrapped[1:])
    to_fix = [r for r in results if r.status is not Status.PASS and r.remediation]
    if to_fix:
        lines.append("")
        lines.append("How to fix:")
        for result in to_fix:
            body = textwrap.wrap(result.remediation or "", width - 4)
            lines.append(f"  {result.title}:")
            lines.extend("    " + line for line in body)
            command = result.evidence.get(IT_REMEDIATION)
            if for_it and isinstance(command, str):
                lines.extend("    " + line for line in textwrap.wrap(f"For IT: {command}", width - 4))
    if needed_admin:
        lines.append("")
        lines.extend(
            textwrap.wrap(
                f"Not confirmed without administrator rights: {', '.join(needed_admin)}. "
                "Run as root or administrator, or let the Homeroom service check this.",
                width,
            )
        )
    passed = sum(r.status is Status.PASS for r in results)
    lines.append("")
    lines.append(f"{passed} of {len(results)} requirements met.")
    return "\n".join(lines) + "\n"


def exit_code_for(results: Sequence[CheckResult]) -> int:
    """0 when everything passed, 1 when anything failed or could not be confirmed."""
    return 0 if all(r.status is Status.PASS for r in results) else 1
