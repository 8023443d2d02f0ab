"""Reading `agent.toml`: where the server is, how often to check and report, who reads the policy.

The schema language and the file:line:fix errors are shared with requirements.toml
(`contract.config_files`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from contract.config_files import (
    CONFIG_DIR,
    Schema,
    boolean,
    int_range,
    one_of,
    parse_toml,
    quoted_string,
    read_config_text,
    validate,
)


@dataclass(frozen=True)
class AgentConfig:
    server_url: str = ""
    enrolment_token: str = ""
    state_dir: str = ""
    outbox_max_mb: int = 50
    check_interval_minutes: int = 60
    report_interval_hours: int = 4
    heartbeat_interval_minutes: int = 15
    audience: str = "student"
    tray_show_quit: bool = True
    # Plain http:// to a host other than this machine lets anyone on the network read and change
    # what the agent is told; refused unless the district says its network is trusted.
    allow_insecure_http: bool = False


AGENT_SCHEMA: Schema = {
    "server": {
        "url": (quoted_string, 'give the server address in quotes, e.g. "https://homeroom.example.org"'),
        "enrolment_token": (quoted_string, "paste the token from `homeroom-server token create` in quotes"),
        "allow_insecure_http": (
            boolean,
            "write allow_insecure_http = true only for a test network; leave it out to require https",
        ),
    },
    "agent": {
        "state_dir": (quoted_string, "give a directory path in quotes, or remove the line for the default"),
        "outbox_max_mb": (int_range(1, 10_000), "give the outbox's size limit in megabytes, e.g. 50"),
    },
    "policy": {
        "audience": (one_of("staff", "student"), 'write audience = "staff" or audience = "student"'),
    },
    "tray": {
        "show_quit": (boolean, "write show_quit = true or show_quit = false"),
    },
    "intervals": {
        "check_minutes": (int_range(1, 1440), "give minutes between check cycles, e.g. 60"),
        "report_hours": (int_range(1, 168), "give hours between full reports, e.g. 4"),
        "heartbeat_minutes": (int_range(1, 1440), "give minutes between heartbeats, e.g. 15"),
    },
}


def load_agent_config(path: Path | None = None) -> AgentConfig:
    path = path or CONFIG_DIR / "agent.toml"
    text = read_config_text(path)
    data = parse_toml(str(path), text)
    validate(str(path), text, data, AGENT_SCHEMA)
    server = data.get("server", {})
    intervals = data.get("intervals", {})
    defaults = AgentConfig()
    return AgentConfig(
        server_url=server.get("url", ""),
        enrolment_token=server.get("enrolment_token", ""),
        state_dir=data.get("agent", {}).get("state_dir", ""),
        outbox_max_mb=data.get("agent", {}).get("outbox_max_mb", defaults.outbox_max_mb),
        check_interval_minutes=intervals.get("check_minutes", defaults.check_interval_minutes),
        report_interval_hours=intervals.get("report_hours", defaults.report_interval_hours),
        heartbeat_interval_minutes=intervals.get("heartbeat_minutes", defaults.heartbeat_interval_minutes),
        audience=data.get("policy", {}).get("audience", defaults.audience),
        tray_show_quit=data.get("tray", {}).get("show_quit", defaults.tray_show_quit),
        allow_insecure_http=server.get("allow_insecure_http", defaults.allow_insecure_http),
    )
