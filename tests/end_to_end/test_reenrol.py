"""`homeroom-agent enroll` on a laptop the server already knows, as real processes on both sides.

This machine has no DMI (no serial, no SMBIOS UUID: ENVIRONMENT.md), so a second enrolment matches
the first by the machine id alone: a claim that waits for IT. The agent keeps the new key, says
so, and its service's requests succeed once IT approves.
"""

from __future__ import annotations

import json
from pathlib import Path

from agent.server_link.outbox import Outbox
from tests.helpers.agent_process import agent
from tests.helpers.servers import ServerProcess


def test_a_waiting_claim_is_shown_and_works_once_approved(server: ServerProcess, tmp_path: Path) -> None:
    token = server.token("Lincoln High")
    first, second = tmp_path / "first", tmp_path / "second"
    assert (
        agent("enroll", "--server", server.url, "--token", token, "--state-dir", str(first)).returncode == 0
    )
    claimed = agent("enroll", "--server", server.url, "--token", token, "--state-dir", str(second))
    assert claimed.returncode == 0, claimed.stderr
    assert "Claim sent to" in claimed.stdout and "approve-claim" in claimed.stdout, claimed.stdout
    assert "keeps trying" in claimed.stdout
    waiting = agent("run", "--once", "--state-dir", str(second))
    assert waiting.returncode == 3, waiting.stdout  # nothing delivered: the claim waits
    (device,) = json.loads(server.cli("devices", "--json").stdout)["devices"]
    (claim,) = device["claims"]
    assert claim["state"] == "pending" and claim["waits_for"] == "it"
    assert server.cli("devices", "approve-claim", str(claim["claim_id"])).returncode == 0
    # The refused report waits out its backoff (up to 2 s after a first 401, jittered): the test does
    # not. Without this, a run within that window sent nothing, and the test failed about one time
    # in three on a fast machine.
    with Outbox(second / "outbox.sqlite3") as outbox:
        assert outbox.stats().queued, "the refused report waits in the outbox"
        outbox.due_now()
    sent = agent("run", "--once", "--state-dir", str(second))
    assert sent.returncode == 0, sent.stdout + sent.stderr
    assert "sent:" in sent.stdout
