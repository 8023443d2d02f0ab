"""What an ordinary local user can put in the inbox, done by a real user (useradd) against a real
`homeroom-agent run` enrolled to a real server: nothing they put there stops the service, and a
genuine sign-off queued behind the attack still reaches the server."""

from __future__ import annotations

import json
import os
import resource
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from contract.policy import load_policy
from tests.helpers.agent_process import agent
from tests.helpers.need import need
from tests.helpers.paths import ROOT
from tests.helpers.servers import ServerProcess

POLICY = ROOT / "config" / "policies" / "secondary.md"
LOCK = {
    "id": "screen_lock",
    "title": "Screen lock",
    "status": "pass",
    "summary": "locks after 3 minutes idle (genuine)",
    "evidence": {},
    "remediation": None,
    "duration_ms": 12,
}


HONEST_SIGNOFF = """
from pathlib import Path
from agent.desktop.handoff import write_entry
inbox, record_id, user, version = sys.argv[1:5]
write_entry(Path(inbox), 'signoff', record_id, {
    'user': user, 'record_id': record_id, 'full_name': 'Genuine Student', 'device_id': None,
    'policy_id': 'aup-secondary', 'policy_version': version, 'decision': 'agree',
    'decided_at': '2026-11-23T09:00:00+00:00'})
"""
DIRECTORY = """
import os
os.mkdir(sys.argv[1] + '/signoff-0000dir.json')
open(sys.argv[1] + '/signoff-0000dir.json/x', 'w').close()
"""
# A lone surrogate in the file name (bytes that are not UTF-8) and in the fields (JSON's \\ud800 escape).
SURROGATES = r"""
import os, json
body = json.dumps({'kind': 'signoff', 'user': sys.argv[2], 'record_id': '\ud800', 'full_name': '\udc80',
    'policy_id': 'aup-secondary', 'policy_version': 'ab' * 32, 'decision': 'agree',
    'decided_at': '2026-11-23T09:00:00+00:00'})
for name in (b'signoff-\xed\xa0\x80.json', b'signoff-surrogate1.json'):
    fd = os.open(os.fsencode(sys.argv[1]) + b'/' + name, os.O_WRONLY | os.O_CREAT, 0o644)
    os.write(fd, body.encode())
    os.close(fd)
"""
SPARSE = """
with open(sys.argv[1] + '/signoff-sparse.json', 'wb') as out:
    out.truncate(3 * 2**30)
"""
FIFOS = """
import os
inbox, elsewhere = sys.argv[1:3]
os.mkfifo(inbox + '/signoff-fifo.json')
os.mkfifo(elsewhere)
os.symlink(elsewhere, inbox + '/signoff-link.json')
"""
# The forged entry lands after the genuine screen-lock result, so it is the one the old code kept.
NESTED = """
import json, time
from pathlib import Path
from agent.desktop.handoff import write_entry
inbox, user, lock = Path(sys.argv[1]), sys.argv[2], json.loads(sys.argv[3])
write_entry(inbox, 'user_results', 'genuine1', {'user': user, 'results': [lock]})
deep = 'x'
for _ in range(400):
    deep = {'n': deep}
time.sleep(0.05)
write_entry(inbox, 'user_results', 'forged1', {'user': user, 'results': [{**lock, 'evidence': {'n': deep}}]})
time.sleep(0.05)
write_entry(inbox, 'check_now', 'now1', {'user': user})
"""


def as_user(user: str, code: str, *args: str) -> None:
    """Run Python as the unprivileged user, with this worktree importable (for the honest writer)."""
    done = subprocess.run(
        [
            "runuser",
            "-u",
            user,
            "--",
            "/usr/bin/python3",
            "-c",
            f"import sys\nsys.path.insert(0, {str(ROOT)!r})\n{code}",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr


@dataclass
class Laptop:
    base: Path
    state: Path
    server: ServerProcess
    service: subprocess.Popen[bytes]
    log: Path
    users: list[str]

    @property
    def inbox(self) -> Path:
        return self.state / "inbox"

    def new_user(self) -> str:
        name = f"hrinbox{uuid.uuid4().hex[:8]}"
        subprocess.run(["useradd", "--no-create-home", "--shell", "/usr/sbin/nologin", name], check=True)
        self.users.append(name)
        return name

    def alive(self) -> None:
        assert self.service.poll() is None, self.log.read_text(errors="replace")

    def sign(self, user: str) -> str:
        """A genuine sign-off, written by the user the way the dialog writes it."""
        record_id = uuid.uuid4().hex
        as_user(user, HONEST_SIGNOFF, str(self.inbox), record_id, user, load_policy(POLICY).version)
        return record_id

    def server_rows(self, sql: str, *args: str) -> list[tuple[object, ...]]:
        with sqlite3.connect(self.base / "var" / "homeroom.db") as db:
            return list(db.execute(sql, args))

    def wait_for_signoff(self, record_id: str, timeout: float = 45) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.alive()
            if self.server_rows("SELECT 1 FROM signoffs WHERE record_id = ?", record_id):
                return
            time.sleep(0.3)
        raise AssertionError(
            f"sign-off {record_id} never reached the server:\n{self.log.read_text(errors='replace')}"
        )

    def refusals(self, fragment: str) -> list[str]:
        return [
            line
            for line in self.log.read_text(errors="replace").splitlines()
            if "refused" in line and fragment in line
        ]


@pytest.fixture(scope="module")
def laptop() -> Iterator[Laptop]:
    need(
        os.geteuid() == 0 and shutil.which("runuser") is not None, "needs root to add and act as a real user"
    )
    # Not under pytest's tmp_path: its parents are private to root, as a real state dir's are not.
    base = Path(tempfile.mkdtemp(prefix="homeroom-attack-"))
    base.chmod(0o755)
    server = ServerProcess(f"sqlite:///{base / 'var' / 'homeroom.db'}", base / "server")
    (base / "server").mkdir()
    server.init()
    server.start()
    state = base / "state"
    users: list[str] = []
    service: subprocess.Popen[bytes] | None = None
    try:
        assert server.cli("policy", "publish", str(POLICY)).returncode == 0
        enrolled = agent(
            "enroll", "--server", server.url, "--token", server.token(), "--state-dir", str(state)
        )
        assert enrolled.returncode == 0, enrolled.stderr
        log = base / "service.log"
        with open(log, "wb") as out:
            service = subprocess.Popen(
                [sys.executable, "-m", "agent.cli", "run", "--state-dir", str(state)],
                cwd=ROOT,
                stdout=out,
                stderr=subprocess.STDOUT,
                preexec_fn=_small_laptop,
            )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not _first_report_in(base):
            assert service.poll() is None, log.read_text(errors="replace")
            time.sleep(0.2)
        yield Laptop(base, state, server, service, log, users)
    finally:
        if service is not None and service.poll() is None:
            service.terminate()
            try:
                service.wait(20)
            except subprocess.TimeoutExpired:
                service.kill()
                service.wait(10)
        server.stop()
        for user in users:
            subprocess.run(["userdel", user], check=False, capture_output=True)
        shutil.rmtree(base, ignore_errors=True)


SERVICE_MEMORY = 2 * 2**30


def _small_laptop() -> None:
    """The service gets the address space a small school laptop could spare (2 GB): reading a 3 GB
    file whole then fails as it would there, instead of merely stalling on this large build machine."""
    resource.setrlimit(resource.RLIMIT_AS, (SERVICE_MEMORY, SERVICE_MEMORY))


def _first_report_in(base: Path) -> bool:
    try:
        with sqlite3.connect(base / "var" / "homeroom.db") as db:
            return bool(list(db.execute("SELECT 1 FROM device_status")))
    except sqlite3.Error:
        return False


def set_aside(laptop: Laptop, name: str) -> list[Path]:
    refused = laptop.state / "inbox-refused"
    return [path for path in refused.iterdir() if path.name.endswith(name)] if refused.is_dir() else []


def test_a_directory_named_like_an_entry(laptop: Laptop) -> None:
    user = laptop.new_user()
    as_user(user, DIRECTORY, str(laptop.inbox))
    laptop.wait_for_signoff(laptop.sign(user))
    assert not (laptop.inbox / "signoff-0000dir.json").exists()
    assert set_aside(laptop, "signoff-0000dir.json"), "kept for IT, out of the users' reach"
    assert len(laptop.refusals("signoff-0000dir.json")) == 1, "logged once"


def test_a_signoff_with_a_lone_surrogate_in_its_name_and_fields(laptop: Laptop) -> None:
    user = laptop.new_user()
    as_user(user, SURROGATES, str(laptop.inbox), user)
    laptop.wait_for_signoff(laptop.sign(user))
    assert [
        name for name in os.listdir(os.fsencode(laptop.inbox)) if b"surrogate" in name or b"\xed" in name
    ] == []
    assert len(laptop.refusals("signoff-surrogate1.json")) == 1
    assert len(laptop.refusals("signoff-\\udced\\udca0\\udc80.json")) == 1, "the name is logged escaped"


def test_a_3_gb_sparse_file(laptop: Laptop) -> None:
    user = laptop.new_user()
    as_user(user, SPARSE, str(laptop.inbox))
    laptop.wait_for_signoff(laptop.sign(user))
    assert not (laptop.inbox / "signoff-sparse.json").exists()
    assert len(laptop.refusals("signoff-sparse.json")) == 1


def test_a_fifo_and_a_symlink_to_a_fifo(laptop: Laptop) -> None:
    user = laptop.new_user()
    elsewhere = laptop.base / f"{user}-home"  # somewhere of the user's own, outside the inbox
    elsewhere.mkdir()
    shutil.chown(elsewhere, user)
    as_user(user, FIFOS, str(laptop.inbox), str(elsewhere / "target.fifo"))
    laptop.wait_for_signoff(laptop.sign(user))
    assert len(laptop.refusals("signoff-fifo.json")) == 1
    assert len(laptop.refusals("signoff-link.json")) == 1


def test_forged_user_results_with_deeply_nested_evidence(laptop: Laptop) -> None:
    """The forged entry lands after the genuine screen-lock result, so it would be the one kept."""
    user = laptop.new_user()
    as_user(user, NESTED, str(laptop.inbox), user, json.dumps(LOCK))
    deadline = time.monotonic() + 45
    while time.monotonic() < deadline:
        laptop.alive()
        if any(
            LOCK["summary"] in str(row[0]) for row in laptop.server_rows("SELECT results FROM device_status")
        ):
            break
        time.sleep(0.3)
    else:
        raise AssertionError(
            f"the genuine screen lock never reached the server:\n{laptop.log.read_text(errors='replace')}"
        )
    assert len(laptop.refusals("user_results-forged1.json")) == 1
    laptop.wait_for_signoff(laptop.sign(user))  # later records still flow
