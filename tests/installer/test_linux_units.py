"""The Linux install files point at commands and options that exist."""

from __future__ import annotations

import configparser
import shlex

from agent.cli import build_parser
from tests.helpers.paths import ROOT

INSTALLER = ROOT / "installer" / "linux"


def _exec_args(value: str) -> list[str]:
    argv = shlex.split(value)
    assert argv[0].endswith("/homeroom-agent")
    return argv[1:]


def test_the_service_unit_runs_the_agent_loop_with_options_it_accepts() -> None:
    unit = configparser.ConfigParser(interpolation=None, strict=False)
    unit.optionxform = str  # type: ignore[assignment,method-assign]
    unit.read(INSTALLER / "homeroom-agent.service")
    args = build_parser().parse_args(_exec_args(unit["Service"]["ExecStart"]))
    assert args.command == "run" and not args.once
    assert unit["Service"]["Environment"] == "HOMEROOM_STATE_DIR=/var/lib/homeroom"
    assert unit["Install"]["WantedBy"] == "multi-user.target"


def test_the_autostart_entry_starts_the_tray() -> None:
    entry = configparser.ConfigParser(interpolation=None)
    entry.optionxform = str  # type: ignore[assignment,method-assign]
    entry.read(INSTALLER / "homeroom-tray.desktop")
    args = build_parser().parse_args(_exec_args(entry["Desktop Entry"]["Exec"]))
    assert args.command == "tray"
