"""Assembles the firewall tools' answers to an ordinary user into a corpus bundle (see capture.sh, s6).

    python scripts/corpus_user_bundle.py DIR OUT

DIR holds `<tool>.out`, `<tool>.err` and `<tool>.rc` for ufw, firewall-cmd, nft and iptables, as
the tools printed them to a user without root; exit code 127 (the shell's "not found") is recorded
as the tool being absent, as LiveProbes records it.
"""

from __future__ import annotations

import json
import platform
import socket
import sys
from datetime import datetime, timezone
from pathlib import Path

from agent.checks.bundle import FORMAT, VERSION
from agent.checks.firewall_linux import FIREWALLD_STATE, IPTABLES_INPUT, NFT_RULESET, PROBE_IDS, UFW_STATUS
from agent.probes import NOT_FOUND
from contract import __version__

TOOLS = {
    "ufw": (PROBE_IDS["ufw"], UFW_STATUS),
    "firewall-cmd": (PROBE_IDS["firewalld"], FIREWALLD_STATE),
    "nft": (PROBE_IDS["nftables"], NFT_RULESET),
    "iptables": (PROBE_IDS["iptables"], IPTABLES_INPUT),
}


def main(argv: list[str]) -> int:
    folder, out = Path(argv[0]), Path(argv[1])
    probes = {}
    for name, (probe_id, command) in TOOLS.items():
        code = int((folder / f"{name}.rc").read_text().strip())
        stdout = (folder / f"{name}.out").read_text(encoding="utf-8")
        stderr = (folder / f"{name}.err").read_text(encoding="utf-8")
        missing = code == 127
        probes[probe_id] = {
            "argv": command,
            "exit_code": None if missing else code,
            "stdout": "" if missing else stdout,
            "stderr": "" if missing else stderr,
            "error": NOT_FOUND if missing else None,
            "probe": probe_id,
            "command": " ".join(command),
        }
    bundle = {
        "format": FORMAT,
        "version": VERSION,
        "agent_version": __version__,
        "created": datetime.now(timezone.utc).isoformat(),
        "platform": {
            "os": "linux",
            "os_version": "Debian GNU/Linux 12 (bookworm)",
            "kernel": platform.release(),
            "machine": platform.machine(),
            "hostname": socket.gethostname(),
            "user": "student",
            "is_admin": False,
            "desktop": "",
            "home": "/nonexistent",
        },
        "requirements_toml": None,
        "software_baseline": None,
        "probes": probes,
        "results": [],
    }
    out.write_text(json.dumps(bundle, indent=1) + "\n", encoding="utf-8")
    print(f"{out}\tfirewall\t(as a user)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
