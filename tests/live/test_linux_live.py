"""Linux checks against this machine's real state, changed for real to see each result flip.

Every change is made where it cannot hurt the machine or its network: the
firewall only inside a network namespace of our own, GNOME settings in a
throwaway HOME under a private D-Bus session, a package we build ourselves,
a ClamAV daemon with its own socket and database directory. Each test puts
back what it touched.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers.agent_process import agent
from tests.helpers.need import need
from tests.helpers.paths import ROOT

pytestmark = pytest.mark.live


def _root_and_tools(*tools: str) -> None:
    need(os.geteuid() == 0, "live tests change machine state and must run as root (./scripts/test does)")
    for tool in tools:
        need(shutil.which(tool) is not None, f"{tool} is not installed (./scripts/test installs it as root)")


def _result(stdout: str) -> dict:
    (result,) = json.loads(stdout)["results"]
    return result


# --- firewall: ufw and nftables inside a private network namespace ------------------------


@pytest.fixture
def netns() -> Iterator[str]:
    _root_and_tools("ip", "ufw", "nft", "iptables")
    name = f"homeroom-{uuid.uuid4().hex[:8]}"
    saved_ufw = Path("/etc/ufw").exists() and shutil.copytree("/etc/ufw", f"/tmp/{name}-ufw")
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        yield name
    finally:
        subprocess.run(["ip", "netns", "exec", name, "ufw", "disable"], capture_output=True, check=False)
        subprocess.run(["ip", "netns", "del", name], check=False)
        if saved_ufw:
            shutil.rmtree("/etc/ufw")
            shutil.copytree(f"/tmp/{name}-ufw", "/etc/ufw")
            shutil.rmtree(f"/tmp/{name}-ufw")


def _firewall_in(namespace: str, state_dir: Path) -> dict:
    done = subprocess.run(
        [
            "ip",
            "netns",
            "exec",
            namespace,
            sys.executable,
            "-m",
            "agent.cli",
            "check",
            "--json",
            "--only",
            "firewall",
            "--state-dir",
            str(state_dir),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return _result(done.stdout)


def _in(namespace: str, *argv: str) -> None:
    subprocess.run(["ip", "netns", "exec", namespace, *argv], check=True, capture_output=True, timeout=60)


def test_firewall_flips_with_ufw(netns: str, state_dir: Path) -> None:
    before = _firewall_in(netns, state_dir)
    assert before["status"] == "fail", before
    _in(netns, "ufw", "--force", "enable")
    on = _firewall_in(netns, state_dir)
    assert on["status"] == "pass", on
    assert on["evidence"]["ufw"] == "on: Status: active"
    _in(netns, "ufw", "disable")
    _in(netns, "nft", "flush", "ruleset")
    assert _firewall_in(netns, state_dir)["status"] == "fail"


def test_firewall_flips_with_a_plain_nftables_ruleset(netns: str, state_dir: Path) -> None:
    assert _firewall_in(netns, state_dir)["status"] == "fail"
    _in(netns, "nft", "add", "table", "inet", "hr")
    _in(netns, "nft", "add chain inet hr input { type filter hook input priority 0 ; policy drop ; }")
    on = _firewall_in(netns, state_dir)
    assert on["status"] == "pass", on
    assert "policy drop" in on["evidence"]["nftables"]


# --- screen lock: real GNOME settings in a private D-Bus session -----------------------------


def _gnome_check(home: Path, state_dir: Path, *settings: tuple[str, str, str]) -> dict:
    _root_and_tools("dbus-run-session", "gsettings")
    script = "".join(f"gsettings set {schema} {key} {value} && " for schema, key, value in settings)
    script += f'"{sys.executable}" -m agent.cli check --json --only screen_lock --state-dir "{state_dir}"'
    env = {
        **os.environ,
        "HOME": str(home),
        "XDG_CURRENT_DESKTOP": "GNOME",
        "XDG_CONFIG_HOME": str(home / ".config"),
    }
    env.pop("DBUS_SESSION_BUS_ADDRESS", None)
    done = subprocess.run(
        ["dbus-run-session", "--", "sh", "-c", script],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.stdout, done.stderr
    return _result(done.stdout)


def test_gnome_screen_lock_flips(tmp_path: Path, state_dir: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    locked = _gnome_check(
        home,
        state_dir,
        ("org.gnome.desktop.screensaver", "lock-enabled", "true"),
        ("org.gnome.desktop.screensaver", "lock-delay", "60"),
        ("org.gnome.desktop.session", "idle-delay", "300"),
    )
    assert locked["status"] == "pass", locked
    assert locked["evidence"]["idle_seconds"] == 300 and locked["evidence"]["lock_delay_seconds"] == 60
    # The settings persisted in dconf under HOME: a second session sees them, then we change them.
    never = _gnome_check(home, state_dir, ("org.gnome.desktop.session", "idle-delay", "0"))
    assert never["status"] == "fail" and "never" in never["summary"], never
    late = _gnome_check(
        home,
        state_dir,
        ("org.gnome.desktop.session", "idle-delay", "900"),
        ("org.gnome.desktop.screensaver", "lock-delay", "300"),
    )
    assert late["status"] == "fail" and "20 minutes" in late["summary"], late
    off = _gnome_check(
        home,
        state_dir,
        ("org.gnome.desktop.session", "idle-delay", "300"),
        ("org.gnome.desktop.screensaver", "lock-enabled", "false"),
    )
    assert off["status"] == "fail", off


# --- software: a real Debian package, installed and removed --------------------------------


def _build_deb(tmp_path: Path, name: str) -> Path:
    tree = tmp_path / "pkg"
    (tree / "DEBIAN").mkdir(parents=True)
    (tree / "usr" / "share" / "doc" / name).mkdir(parents=True)
    (tree / "usr" / "share" / "doc" / name / "README").write_text("Homeroom test package.\n")
    (tree / "DEBIAN" / "control").write_text(
        f"Package: {name}\nVersion: 1.0-1\nArchitecture: all\n"
        "Maintainer: Homeroom Tests <tests@homeroom.invalid>\n"
        "Description: a package the district has not approved\n Used by Homeroom's tests.\n"
    )
    deb = tmp_path / f"{name}.deb"
    subprocess.run(
        ["dpkg-deb", "--root-owner-group", "--build", str(tree), str(deb)], check=True, capture_output=True
    )
    return deb


def test_installing_an_unapproved_package_is_flagged(tmp_path: Path, state_dir: Path) -> None:
    _root_and_tools("dpkg", "dpkg-deb", "dpkg-query")
    name = f"homeroom-test-{uuid.uuid4().hex[:6]}"
    deb = _build_deb(tmp_path, name)
    baseline = _result(agent("check", "--json", "--only", "software", "--state-dir", str(state_dir)).stdout)
    assert baseline["status"] == "pass", baseline
    subprocess.run(["dpkg", "-i", str(deb)], check=True, capture_output=True, timeout=120)
    try:
        flagged = _result(
            agent("check", "--json", "--only", "software", "--state-dir", str(state_dir)).stdout
        )
        assert flagged["status"] == "fail", flagged
        assert flagged["evidence"]["unapproved"] == [
            {
                "name": name,
                "version": "1.0-1",
                "publisher": "Homeroom Tests <tests@homeroom.invalid>",
                "source": "dpkg",
                "judged": True,  # dpkg -i without apt: no auto mark, a person's own install
                "basis": "manually installed (apt marks it manual)",
                "reason": "not approved",
            }
        ]
        assert name in flagged["remediation"]
    finally:
        subprocess.run(["dpkg", "--purge", name], check=True, capture_output=True, timeout=120)
    cleared = _result(agent("check", "--json", "--only", "software", "--state-dir", str(state_dir)).stdout)
    assert cleared["status"] == "pass", cleared


# --- antivirus: a real clamd with a database of our own ----------------------------------------


def test_clamav_daemon_and_signature_age(tmp_path: Path, state_dir: Path) -> None:
    _root_and_tools("clamd", "sigtool")
    sample = tmp_path / "sample.bin"
    sample.write_bytes(b"homeroom test signature " + uuid.uuid4().bytes)
    database = tmp_path / "db"
    database.mkdir()
    signature = subprocess.run(["sigtool", "--md5", str(sample)], capture_output=True, text=True, check=True)
    (database / "homeroom.hdb").write_text(signature.stdout)
    socket_path = tmp_path / "clamd.sock"
    config = tmp_path / "clamd.conf"
    config.write_text(
        f"Foreground true\nLocalSocket {socket_path}\nDatabaseDirectory {database}\n"
        f"LogFile {tmp_path / 'clamd.log'}\nPidFile {tmp_path / 'clamd.pid'}\n"
        f"TemporaryDirectory {tmp_path}\n"
    )
    nothing = _result(agent("check", "--json", "--only", "antivirus", "--state-dir", str(state_dir)).stdout)
    # On a machine with no antivirus at all, nothing runs yet.
    if not nothing["evidence"]["clamd_running"] and not nothing["evidence"]["edr_agents"]:
        assert nothing["status"] == "fail"
    daemon = subprocess.Popen(["clamd", "-c", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while not socket_path.exists():
            assert daemon.poll() is None, daemon.stderr.read().decode() if daemon.stderr else "clamd exited"
            assert time.monotonic() < deadline, "clamd did not open its socket within 60 s"
            time.sleep(0.2)
        fresh = _result(agent("check", "--json", "--only", "antivirus", "--state-dir", str(state_dir)).stdout)
        assert fresh["status"] == "pass", fresh
        assert fresh["evidence"]["database_directory"] == str(database)
        month_ago = time.time() - 30 * 86400
        os.utime(database / "homeroom.hdb", (month_ago, month_ago))
        stale = _result(agent("check", "--json", "--only", "antivirus", "--state-dir", str(state_dir)).stdout)
        assert stale["status"] == "fail", stale
        assert stale["evidence"]["signature_age_days"] == pytest.approx(30, abs=0.1)
    finally:
        daemon.terminate()
        daemon.wait(30)
    gone = _result(agent("check", "--json", "--only", "antivirus", "--state-dir", str(state_dir)).stdout)
    assert gone["evidence"]["clamd_running"] is False


# --- power-on password: automatic login switched on and off for real --------------------------


def test_automatic_login_flips_power_on_password(state_dir: Path) -> None:
    need(os.geteuid() == 0, "live tests change machine state and must run as root")
    conf = Path("/etc/gdm3/custom.conf")
    saved = conf.read_text() if conf.exists() else None
    created_dir = not conf.parent.exists()
    conf.parent.mkdir(parents=True, exist_ok=True)
    try:
        conf.write_text("[daemon]\nAutomaticLoginEnable=False\n")
        off = _result(
            agent("check", "--json", "--only", "power_on_password", "--state-dir", str(state_dir)).stdout
        )
        assert off["evidence"]["automatic_login"] == {}
        assert off["status"] != "fail" or "automatic login" not in off["summary"]
        conf.write_text("[daemon]\nAutomaticLoginEnable=True\nAutomaticLogin=pupil\n")
        on = _result(
            agent("check", "--json", "--only", "power_on_password", "--state-dir", str(state_dir)).stdout
        )
        assert on["status"] == "fail", on
        assert on["evidence"]["automatic_login"] == {"gdm": "pupil"}
    finally:
        if saved is None:
            conf.unlink()
            if created_dir:
                conf.parent.rmdir()
        else:
            conf.write_text(saved)


# --- disk encryption: the real root device --------------------------------------------------------


def test_disk_encryption_reads_the_real_root_device(state_dir: Path) -> None:
    _root_and_tools("findmnt", "lsblk")
    source = subprocess.run(["findmnt", "-no", "SOURCE", "/"], capture_output=True, text=True, check=True)
    result = _result(
        agent("check", "--json", "--only", "disk_encryption", "--state-dir", str(state_dir)).stdout
    )
    device = source.stdout.strip().split("[")[0]
    if not device.startswith("/dev/"):
        assert result["status"] == "unknown"
        return
    tree = subprocess.run(
        ["lsblk", "-J", "-s", "-o", "NAME,TYPE", device], capture_output=True, text=True, check=True
    )
    has_crypt = '"crypt"' in tree.stdout
    assert result["status"] == ("pass" if has_crypt else "fail"), result
    assert result["evidence"]["chains"][0].startswith(Path(device).name) or has_crypt
