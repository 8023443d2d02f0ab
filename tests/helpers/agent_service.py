"""The service loop in a test: a clock the test moves, and a real enrolment against a real server."""

from __future__ import annotations

from pathlib import Path

from agent.config import AgentConfig
from agent.probes.facts import detect
from agent.service import AgentService
from contract.config_files import read_config_text
from contract.requirements import load_requirements
from tests.helpers.agent_process import agent
from tests.helpers.servers import ServerProcess


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def service(state: Path, clock: Clock) -> AgentService:
    defaults = (load_requirements(), read_config_text(Path("config/requirements.toml")))
    return AgentService(state, AgentConfig(), detect(), defaults, clock=clock)


def enrolled_service(
    server: ServerProcess, state_dir: Path, group: str = "Lincoln High"
) -> tuple[AgentService, Clock]:
    """`homeroom-agent enroll` for real, then the service loop on a clock the test moves."""
    enrolled = agent(
        "enroll", "--server", server.url, "--token", server.token(group), "--state-dir", str(state_dir)
    )
    assert enrolled.returncode == 0, enrolled.stderr
    clock = Clock()
    return service(state_dir, clock), clock
