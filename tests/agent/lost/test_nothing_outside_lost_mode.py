"""Outside lost mode nothing of it is collected or sent: a real agent against a real server, every
request captured on the wire by a recording proxy, carries no network or Wi-Fi data."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from agent.lost.mode import LOST_MODE_FILE, LOST_NOTICE_FILE
from agent.lost.parsers import gateway_from_ip_route, local_addresses_from_ip
from contract.collected import KINDS, LOST_MODE_ONLY
from contract.wire import API_PREFIX
from tests.helpers.agent_process import agent
from tests.helpers.recording_proxy import recording_proxy
from tests.helpers.servers import ServerProcess


def keys_anywhere(value: Any) -> set[str]:
    if isinstance(value, dict):
        return set(value) | {k for item in value.values() for k in keys_anywhere(item)}
    if isinstance(value, list):
        return {k for item in value for k in keys_anywhere(item)}
    return set()


def test_a_normal_report_and_heartbeat_carry_no_network_or_wifi_data(
    server: ServerProcess, tmp_path: Path
) -> None:
    state = tmp_path / "state"
    with recording_proxy(server.url) as (url, recorded):
        enrolled = agent("enroll", "--server", url, "--token", server.token(), "--state-dir", str(state))
        assert enrolled.returncode == 0, enrolled.stderr
        first = agent("run", "--once", "--state-dir", str(state))  # checks and a report
        assert first.returncode == 0, first.stdout + first.stderr
        schedule = json.loads((state / "schedule.json").read_text(encoding="utf-8"))
        (state / "schedule.json").write_text(
            json.dumps({**schedule, "last_heartbeat_at": 0}), encoding="utf-8"
        )
        second = agent("run", "--once", "--state-dir", str(state))  # a heartbeat
        assert second.returncode == 0, second.stdout + second.stderr

    paths = [request.path for request in recorded]
    assert f"{API_PREFIX}/reports" in paths and f"{API_PREFIX}/heartbeat" in paths
    assert not [p for p in paths if "lost" in p], "no lost-mode endpoint is called outside lost mode"
    addresses = local_addresses_from_ip(
        subprocess.run(["ip", "-j", "addr"], capture_output=True, text=True).stdout
    )
    gateway = gateway_from_ip_route(
        subprocess.run(["ip", "-j", "route"], capture_output=True, text=True).stdout
    )
    assert addresses and gateway, "this machine has addresses and a gateway a leak would show"
    for request in recorded:
        if request.path.endswith("/enrol"):
            continue
        body = json.loads(request.body)
        text = request.body.decode()
        assert keys_anywhere(body) & (LOST_MODE_ONLY | {"bssid", "ssid"}) == set(), request.path
        for leaked in [*addresses, gateway]:
            assert f'"{leaked}"' not in text, (request.path, leaked)
    assert not (state / LOST_MODE_FILE).exists() and not (state / LOST_NOTICE_FILE).exists()


def test_only_lost_evidence_is_described_with_network_and_wifi_fields() -> None:
    """The description says so too: no other kind has a lost-mode field, and lost_evidence says when."""
    for name, kind in KINDS.items():
        tops = {path.split(".")[0].split("[")[0] for path in kind.paths()}
        if name == "lost_evidence":
            assert tops >= LOST_MODE_ONLY
            assert kind.when.startswith("only in lost mode")
        else:
            assert tops & LOST_MODE_ONLY == set(), name
