#!/usr/bin/env python3
"""Measures a full check cycle on this machine: what one laptop pays each time Homeroom checks.

Prints the median wall time over N cycles, the CPU time per cycle (this
process plus the commands it runs, since dpkg-query or gsettings cost the
laptop as much as our own code), and the peak resident memory of the agent
process. Targets: <= 1.0 s wall, <= 0.3 s CPU, <= 40 MB RSS.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from agent.checks import select
from agent.checks.context import CheckContext
from agent.checks.runner import run_checks
from agent.probes import LiveProbes
from agent.probes.facts import detect
from agent.state import BaselineFile
from contract.requirements import load_requirements


def cpu_seconds() -> float:
    times = os.times()
    return times.user + times.system + times.children_user + times.children_system


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cycles", type=int, default=20)
    args = parser.parse_args()

    requirements = load_requirements()
    platform = detect()
    specs = select(requirements.enabled)
    with tempfile.TemporaryDirectory() as state:
        ctx = CheckContext(
            LiveProbes(), platform, requirements, datetime.now(timezone.utc), BaselineFile(Path(state))
        )
        walls: list[float] = []
        cpus: list[float] = []
        statuses: dict[str, str] = {}
        for cycle in range(args.cycles):
            began_wall, began_cpu = time.perf_counter(), cpu_seconds()
            results = run_checks(specs, ctx, requirements.check_timeout_seconds)
            walls.append(time.perf_counter() - began_wall)
            cpus.append(cpu_seconds() - began_cpu)
            statuses = {r.id: r.status.value for r in results}
            print(
                f"  cycle {cycle + 1:2d}/{args.cycles}: {walls[-1]:.3f} s wall, {cpus[-1]:.3f} s CPU",
                file=sys.stderr,
            )

    peak_self_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    peak_child_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(f"platform: {platform.os} {platform.os_version}, {os.cpu_count()} CPUs, admin={platform.is_admin}")
    print(f"checks: {', '.join(f'{k}={v}' for k, v in statuses.items())}")
    print(f"cycles: {args.cycles}")
    print(
        f"wall time per cycle: median {statistics.median(walls):.3f} s "
        f"(min {min(walls):.3f}, max {max(walls):.3f})  target <= 1.0 s"
    )
    print(
        f"CPU time per cycle:  median {statistics.median(cpus):.3f} s (agent + the commands it runs)"
        "  target <= 0.3 s"
    )
    print(
        f"peak RSS of the agent process: {peak_self_mb:.1f} MB  target <= 40 MB"
        f"  (largest child command: {peak_child_mb:.1f} MB)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
