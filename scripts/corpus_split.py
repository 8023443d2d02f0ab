"""Splits a real `homeroom-agent diagnose` bundle into one small bundle per check, for the corpus.

    python scripts/corpus_split.py BUNDLE NAME OUTDIR [CHECK ...]

Each output bundle keeps only the probe answers its check asked for (found by
replaying the check and noting what it read), so the corpus under
tests/fixtures/corpus/ stays small and every answer in it is one the real tool
gave. The results recorded at capture time are kept, as what the agent said then.
"""

from __future__ import annotations

import json
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

from agent.checks import CHECKS_BY_ID
from agent.checks.context import CheckContext
from agent.probes import ReplayProbes
from agent.probes.facts import PlatformFacts
from contract.requirements import requirements_from_text


class NotingReplay(ReplayProbes):
    """A replay that remembers which recorded answers were read."""

    def __init__(self, records: dict[str, dict[str, Any]]) -> None:
        super().__init__(records)
        self.read: set[str] = set()

    def _get(self, key: str, *older: str) -> dict[str, Any] | None:
        for candidate in (key, *older):
            if candidate in self._records:
                self.read.add(candidate)
        return super()._get(key, *older)


def split(bundle: dict[str, Any], check_id: str) -> dict[str, Any]:
    replay = NotingReplay(bundle["probes"])
    requirements = requirements_from_text("bundle", bundle.get("requirements_toml") or "")
    platform = PlatformFacts.from_json(bundle["platform"])
    ctx = CheckContext(replay, platform, requirements, datetime.fromisoformat(bundle["created"]))
    CHECKS_BY_ID[check_id].implementation(platform.os)(ctx)
    kept = {key: bundle["probes"][key] for key in sorted(replay.read)}
    results = [r for r in bundle.get("results", []) if r.get("id") == check_id]
    return {**bundle, "probes": kept, "results": results}


def main(argv: list[str]) -> int:
    source, name, outdir, *checks = argv
    bundle = json.loads(Path(source).read_text(encoding="utf-8"))
    out = Path(outdir)
    out.mkdir(parents=True, exist_ok=True)
    for check_id in checks or list(CHECKS_BY_ID):
        part = split(bundle, check_id)
        path = out / f"{name}.{check_id}.json"
        path.write_text(json.dumps(part, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        status = part["results"][0]["status"] if part["results"] else "?"
        print(f"{path}\t{check_id}\t{status}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
