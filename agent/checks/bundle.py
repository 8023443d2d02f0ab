"""The diagnostic bundle: every probe's raw answer, the platform facts, and what was decided.

IT asks a user for `homeroom-agent diagnose -o FILE` and re-runs the checks
from it anywhere with `homeroom-agent check --from-bundle FILE`. The replay
uses the bundle's platform, its time (so signature ages are as they were),
its requirements and its software baseline, so it reproduces the report.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from agent.checks.results import CheckResult
from agent.errors import BundleError
from agent.probes.facts import PlatformFacts
from contract import __version__

FORMAT = "homeroom-diagnostic-bundle"
VERSION = 1


@dataclass(frozen=True)
class Bundle:
    created: datetime
    platform: PlatformFacts
    probes: dict[str, dict[str, Any]]
    requirements_toml: str | None
    software_baseline: frozenset[str] | None
    results: list[dict[str, Any]]


def bundle_json(
    created: datetime,
    platform: PlatformFacts,
    probes: dict[str, dict[str, Any]],
    requirements_toml: str | None,
    software_baseline: frozenset[str] | None,
    results: list[CheckResult],
) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "version": VERSION,
        "agent_version": __version__,
        "created": created.isoformat(),
        "platform": platform.to_json(),
        "requirements_toml": requirements_toml,
        "software_baseline": None if software_baseline is None else sorted(software_baseline),
        "probes": dict(sorted(probes.items())),
        "results": [result.to_json() for result in results],
    }


def read_bundle(path: Path) -> Bundle:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BundleError(f"{path}: file not found") from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise BundleError(f"{path}: not a readable JSON bundle ({exc})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise BundleError(f'{path}: not a Homeroom diagnostic bundle (no "format": "{FORMAT}")')
    if data.get("version") != VERSION:
        raise BundleError(
            f"{path}: bundle version {data.get('version')!r} is not supported (expected {VERSION})"
        )
    try:
        created = datetime.fromisoformat(str(data["created"]))
        if created.tzinfo is None:
            raise ValueError("created has no time zone")
        platform = PlatformFacts.from_json(data["platform"])
        probes = data["probes"]
        if not isinstance(probes, dict) or not all(isinstance(v, dict) for v in probes.values()):
            raise ValueError("probes must map keys to recorded answers")
        baseline = data.get("software_baseline")
        requirements = data.get("requirements_toml")
        if requirements is not None and not isinstance(requirements, str):
            raise ValueError("requirements_toml must be text")
    except (KeyError, TypeError, ValueError) as exc:
        raise BundleError(f"{path}: damaged bundle ({exc})") from None
    return Bundle(
        created=created,
        platform=platform,
        probes=probes,
        requirements_toml=requirements,
        software_baseline=None if baseline is None else frozenset(str(item) for item in baseline),
        results=list(data.get("results") or []),
    )
