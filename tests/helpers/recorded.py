"""Builds `ReplayProbes` from recorded tool outputs, so parsers and checks run on any OS.

Every fixture file under tests/fixtures/ is a real tool's output as its
documentation shows it (the test that uses it says where from).
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime, timezone
from typing import Any

from agent.checks.context import CheckContext
from agent.probes import (
    CommandOutput,
    DirListing,
    FileContent,
    ProcessInfo,
    ProcessList,
    RegistryKey,
    ReplayProbes,
    cim_command,
    command_key,
    probe_key,
)
from agent.probes.facts import OsName, PlatformFacts
from contract.requirements import Requirements
from tests.helpers.paths import FIXTURES

FIXED_NOW = datetime(2026, 11, 23, 12, 0, tzinfo=timezone.utc)


def fixture(relative: str) -> str:
    return (FIXTURES / relative).read_text(encoding="utf-8")


class Recorded:
    """A fluent builder of probe answers: `.command([...], stdout=...)`, `.file(path, text)`."""

    def __init__(self) -> None:
        self.records: dict[str, dict[str, Any]] = {}

    def command(
        self,
        argv: list[str],
        stdout: str = "",
        stderr: str = "",
        exit_code: int | None = 0,
        error: str | None = None,
    ) -> Recorded:
        self.records[command_key(argv)] = asdict(CommandOutput(tuple(argv), exit_code, stdout, stderr, error))
        return self

    def file(
        self, path: str, text: str | None, error: str | None = None, mtime: float | None = None
    ) -> Recorded:
        self.records[probe_key("file", path)] = asdict(FileContent(path, text, error, mtime))
        return self

    def directory(self, path: str, entries: list[str], error: str | None = None) -> Recorded:
        self.records[probe_key("dir", path)] = asdict(DirListing(path, tuple(entries), error))
        return self

    def registry(
        self,
        path: str,
        values: dict[str, Any] | None = None,
        subkeys: list[str] | None = None,
        error: str | None = None,
    ) -> Recorded:
        self.records[probe_key("reg", path)] = asdict(
            RegistryKey(path, values or {}, tuple(subkeys or ()), error)
        )
        return self

    def cim(
        self,
        namespace: str,
        class_name: str,
        stdout: str = "",
        stderr: str = "",
        exit_code: int | None = 0,
        error: str | None = None,
    ) -> Recorded:
        argv = tuple(cim_command(namespace, class_name))
        self.records[probe_key("cim", f"{namespace} {class_name}")] = asdict(
            CommandOutput(argv, exit_code, stdout, stderr, error)
        )
        return self

    def processes(self, *names: str, error: str | None = None) -> Recorded:
        self.records["processes"] = asdict(ProcessList(tuple(ProcessInfo(n) for n in names), error))
        return self

    def process_list(self, *processes: ProcessInfo) -> Recorded:
        self.records["processes"] = asdict(ProcessList(tuple(processes)))
        return self

    def probes(self) -> ReplayProbes:
        return ReplayProbes(self.records)

    def context(
        self,
        os_name: OsName,
        requirements: Requirements | None = None,
        is_admin: bool = True,
        os_version: str = "",
        machine: str = "x86_64",
        desktop: str = "",
        home: str = "/home/student1",
    ) -> CheckContext:
        facts = PlatformFacts(
            os=os_name,
            os_version=os_version,
            kernel="",
            machine=machine,
            hostname="test-laptop",
            user="student1",
            is_admin=is_admin,
            desktop=desktop,
            home=home,
        )
        return CheckContext(self.probes(), facts, requirements or Requirements(), FIXED_NOW)


def all_advice(finding: object) -> str:
    """Every text of a finding's remediation (the reader's words and IT's command), for assertions."""
    from agent.checks.results import Advice

    remediation = getattr(finding, "remediation", None)
    if isinstance(remediation, Advice):
        return "\n".join(part for part in (remediation.yourself, remediation.ask_it, remediation.it) if part)
    return remediation or ""
