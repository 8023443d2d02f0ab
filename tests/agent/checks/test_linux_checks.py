"""Linux checks against recorded outputs of the real tools.

Sources of the recorded formats:
- `findmnt -J` and `lsblk -J -s -o NAME,PATH,TYPE,FSTYPE` (util-linux 2.38, Debian 12): shape and
  indentation copied from this build machine's own output; the LUKS-on-LVM and two-disk trees are
  written to match it exactly, device names as Ubuntu's installer and LVM name them.
- `ufw status` ("Status: active"/"Status: inactive"; "ERROR: You need to be root to run this script"),
  `firewall-cmd --state` ("running"/"not running", exit 252), `iptables -S INPUT` ("-P INPUT DROP"),
  and `nft -j list ruleset` (libnftables JSON schema 1, as nft 1.0.6 on Debian 12 prints it).
- ClamAV's CVD/CLD 512-byte header: `ClamAV-VDB:time:version:sigs:flevel:md5:dsig:builder:stime`
  (ClamAV's signature documentation).
- gsettings prints `uint32 300` / `true`; GDM's custom.conf is Debian's shipped file; KDE's
  kscreenlockerrc, LightDM and SDDM files follow their documented INI keys; the xfconf channel XML
  follows xfconf's perchannel-xml format with xfce4-screensaver's property names.
- `dpkg-query -W -f` with `${db:Status-Abbrev}` ("ii "), `rpm -qa --qf`, `flatpak list --columns`,
  `snap list` (header: Name Version Rev Tracking Publisher Notes).
"""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from agent.checks import antivirus_linux as av
from agent.checks import disk_encryption_linux as enc
from agent.checks import firewall_linux as fw
from agent.checks import power_on_password_linux as pop
from agent.checks import screen_lock_linux as lock
from agent.checks import software_linux as sw
from agent.checks.results import Status
from agent.probes import CommandOutput, ProcessInfo
from contract.requirements import Requirements, SoftwareRule
from tests.helpers.recorded import Recorded, all_advice, fixture

FINDMNT_LVM = json.dumps(
    {"filesystems": [{"source": "/dev/mapper/vgubuntu-root", "target": "/", "fstype": "ext4"}]}, indent=3
)


def _root(recorded: Recorded, source: str, lsblk_fixture: str) -> Recorded:
    findmnt = json.dumps({"filesystems": [{"source": source, "target": "/", "fstype": "ext4"}]}, indent=3)
    device = source.split("[", 1)[0]
    return recorded.command(enc.FINDMNT_ROOT, findmnt).command(
        ["lsblk", "-J", "-s", "-o", enc.LSBLK_COLUMNS, device], fixture(f"linux/{lsblk_fixture}")
    )


# --- disk encryption -------------------------------------------------------------------


def test_luks_under_lvm_passes() -> None:
    ctx = _root(Recorded(), "/dev/mapper/vgubuntu-root", "lsblk-luks-on-lvm.json").context("linux")
    finding = enc.check(ctx)
    assert finding.status is Status.PASS
    assert finding.evidence["crypt_devices"] == ["nvme0n1p3_crypt"]


def test_btrfs_subvolume_source_is_followed_to_its_device() -> None:
    ctx = _root(Recorded(), "/dev/mapper/vgubuntu-root[/@]", "lsblk-luks-on-lvm.json").context("linux")
    assert enc.check(ctx).status is Status.PASS


def test_volume_group_across_two_disks_with_one_unencrypted_fails() -> None:
    ctx = _root(Recorded(), "/dev/mapper/vg0-root", "lsblk-lvm-two-disks-one-encrypted.json").context("linux")
    finding = enc.check(ctx)
    assert finding.status is Status.FAIL
    assert "partly" in finding.summary and "sdb" in finding.summary
    assert finding.remediation


def test_volume_group_across_two_encrypted_disks_passes() -> None:
    ctx = _root(Recorded(), "/dev/mapper/vg0-root", "lsblk-lvm-two-disks-both-encrypted.json").context(
        "linux"
    )
    finding = enc.check(ctx)
    assert finding.status is Status.PASS
    assert finding.evidence["crypt_devices"] == ["luks-sda2", "luks-sdb1"]


def test_plain_disk_fails() -> None:
    plain = (
        '{\n   "blockdevices": [\n      {\n         "name": "vda",\n         "path": "/dev/vda",\n'
        '         "type": "disk",\n         "fstype": null\n      }\n   ]\n}\n'
    )
    findmnt = json.dumps({"filesystems": [{"source": "/dev/vda", "target": "/", "fstype": "ext4"}]})
    ctx = (
        Recorded()
        .command(enc.FINDMNT_ROOT, findmnt)
        .command(["lsblk", "-J", "-s", "-o", enc.LSBLK_COLUMNS, "/dev/vda"], plain)
        .context("linux")
    )
    finding = enc.check(ctx)
    assert finding.status is Status.FAIL
    assert finding.summary == "/ is not encrypted"


def test_root_on_overlay_is_unknown_not_fail() -> None:
    findmnt = json.dumps({"filesystems": [{"source": "overlay", "target": "/", "fstype": "overlay"}]})
    ctx = Recorded().command(enc.FINDMNT_ROOT, findmnt).context("linux")
    assert enc.check(ctx).status is Status.UNKNOWN


def test_missing_findmnt_is_an_error() -> None:
    ctx = Recorded().command(enc.FINDMNT_ROOT, exit_code=None, error="not found").context("linux")
    finding = enc.check(ctx)
    assert finding.status is Status.ERROR
    assert "findmnt: not found" in finding.summary


# --- firewall --------------------------------------------------------------------------


def _firewall(
    ufw: CommandOutput | None = None,
    nft: str | None = None,
    iptables: str = "-P INPUT ACCEPT\n",
    nft_denied: bool = False,
    firewalld: tuple[str, int] | None = None,
) -> Recorded:
    recorded = Recorded()
    if ufw is None:
        recorded.command(fw.UFW_STATUS, exit_code=None, error="not found")
    else:
        recorded.command(fw.UFW_STATUS, ufw.stdout, ufw.stderr, ufw.exit_code)
    if firewalld is None:
        recorded.command(fw.FIREWALLD_STATE, exit_code=None, error="not found")
    else:
        recorded.command(fw.FIREWALLD_STATE, firewalld[0], exit_code=firewalld[1])
    if nft_denied:
        recorded.command(fw.NFT_RULESET, "", "Operation not permitted (you must be root)\n", 1)
    else:
        recorded.command(fw.NFT_RULESET, nft or fixture("linux/nft-ruleset-empty.json"))
    recorded.command(fw.IPTABLES_INPUT, iptables)
    return recorded


def test_ufw_active_passes() -> None:
    finding = fw.check(_firewall(CommandOutput(("ufw",), 0, "Status: active\n")).context("linux"))
    assert finding.status is Status.PASS
    assert "ufw" in finding.summary


def test_ufw_inactive_and_open_ruleset_fails() -> None:
    finding = fw.check(_firewall(CommandOutput(("ufw",), 0, "Status: inactive\n")).context("linux"))
    assert finding.status is Status.FAIL
    assert "ufw enable" in all_advice(finding)


def test_firewalld_running_passes_and_not_running_fails() -> None:
    running = fw.check(_firewall(firewalld=("running\n", 0)).context("linux"))
    stopped = fw.check(_firewall(firewalld=("not running\n", 252)).context("linux"))
    assert running.status is Status.PASS
    assert stopped.status is Status.FAIL
    assert stopped.evidence["firewalld"] == "off: not running"


def test_nftables_input_drop_policy_passes() -> None:
    finding = fw.check(_firewall(nft=fixture("linux/nft-ruleset-drop-policy.json")).context("linux"))
    assert finding.status is Status.PASS
    assert "policy drop" in finding.summary


def test_nftables_final_catch_all_reject_passes() -> None:
    finding = fw.check(_firewall(nft=fixture("linux/nft-ruleset-accept-final-reject.json")).context("linux"))
    assert finding.status is Status.PASS


def test_iptables_drop_policy_passes() -> None:
    finding = fw.check(_firewall(iptables="-P INPUT DROP\n-A INPUT -i lo -j ACCEPT\n").context("linux"))
    assert finding.status is Status.PASS


def test_iptables_final_reject_rule_passes() -> None:
    rules = (
        "-P INPUT ACCEPT\n-A INPUT -i lo -j ACCEPT\n-A INPUT -j REJECT --reject-with icmp-host-prohibited\n"
    )
    assert fw.check(_firewall(iptables=rules).context("linux")).status is Status.PASS


def test_without_root_the_answer_is_unknown_not_fail() -> None:
    denied_ufw = CommandOutput(("ufw",), 1, "", "ERROR: You need to be root to run this script\n")
    recorded = _firewall(denied_ufw, nft_denied=True, iptables="")
    recorded.command(
        fw.IPTABLES_INPUT,
        "",
        "iptables v1.8.9 (nf_tables): Could not fetch rule set generation id: "
        "Permission denied (you must be root)\n",
        4,
    )
    finding = fw.check(recorded.context("linux", is_admin=False))
    assert finding.status is Status.UNKNOWN
    assert "root" in finding.summary


# --- power-on password ------------------------------------------------------------------


def _no_autologin(recorded: Recorded) -> Recorded:
    return recorded.file("/etc/gdm3/custom.conf", fixture("linux/gdm-custom-default.conf"))


def test_gdm_autologin_parser() -> None:
    assert pop.gdm_autologin(fixture("linux/gdm-custom-autologin.conf")) == "student1"
    assert pop.gdm_autologin(fixture("linux/gdm-custom-default.conf")) is None
    assert pop.gdm_autologin("[daemon]\nTimedLoginEnable=true\nTimedLogin=kiosk\n") == "kiosk"


def test_lightdm_sddm_and_getty_autologin_parsers() -> None:
    assert pop.lightdm_autologin("[Seat:*]\nautologin-user=pupil\nautologin-user-timeout=0\n") == "pupil"
    assert pop.lightdm_autologin("[Seat:*]\n#autologin-user=\n") is None
    assert pop.sddm_autologin("[Autologin]\nUser=teacher\nSession=plasma\n") == "teacher"
    assert pop.sddm_autologin("[Autologin]\nRelogin=false\n") is None
    override = "[Service]\nExecStart=\nExecStart=-/sbin/agetty --autologin kid --noclear %I $TERM\n"
    assert pop.getty_autologin(override) == "kid"


def test_luks_with_autologin_off_passes() -> None:
    recorded = _root(_no_autologin(Recorded()), "/dev/mapper/vgubuntu-root", "lsblk-luks-on-lvm.json")
    recorded.file(
        "/etc/crypttab", "nvme0n1p3_crypt UUID=5d3c1c9e-8a4b-4f5e-9a1d-2b7c6e0f1a2b none luks,discard\n"
    )
    finding = pop.check(recorded.context("linux"))
    assert finding.status is Status.PASS
    assert "LUKS passphrase" in finding.summary


def test_luks_unlocked_by_tpm_without_pin_fails() -> None:
    recorded = _root(_no_autologin(Recorded()), "/dev/mapper/vgubuntu-root", "lsblk-luks-on-lvm.json")
    recorded.file("/etc/crypttab", "nvme0n1p3_crypt UUID=5d3c1c9e none luks,tpm2-device=auto\n")
    finding = pop.check(recorded.context("linux"))
    assert finding.status is Status.FAIL
    assert finding.evidence["unlocked_without_secret"] == ["nvme0n1p3_crypt"]


def test_luks_with_tpm_and_pin_passes() -> None:
    recorded = _root(_no_autologin(Recorded()), "/dev/mapper/vgubuntu-root", "lsblk-luks-on-lvm.json")
    recorded.file("/etc/crypttab", "nvme0n1p3_crypt UUID=5d3c1c9e none luks,tpm2-device=auto,tpm2-pin=yes\n")
    assert pop.check(recorded.context("linux")).status is Status.PASS


def test_automatic_login_fails_even_with_luks() -> None:
    recorded = _root(Recorded(), "/dev/mapper/vgubuntu-root", "lsblk-luks-on-lvm.json")
    recorded.file("/etc/gdm3/custom.conf", fixture("linux/gdm-custom-autologin.conf"))
    finding = pop.check(recorded.context("linux"))
    assert finding.status is Status.FAIL
    assert "automatic login" in finding.summary and "student1" in finding.summary
    assert "Automatic Login" in all_advice(finding)


def test_firmware_power_on_password_from_think_lmi_passes() -> None:
    base = "/sys/class/firmware-attributes/thinklmi/authentication"
    recorded = (
        Recorded()
        .directory("/sys/class/firmware-attributes", ["thinklmi"])
        .directory(base, ["Admin", "Power-on"])
        .file(f"{base}/Admin/is_enabled", "0\n")
        .file(f"{base}/Admin/role", "bios-admin\n")
        .file(f"{base}/Power-on/is_enabled", "1\n")
        .file(f"{base}/Power-on/role", "power-on\n")
    )
    finding = pop.check(recorded.context("linux"))
    assert finding.status is Status.PASS
    assert finding.evidence["firmware_passwords"]["Power-on"] == {"role": "power-on", "set": True}


def test_only_an_admin_firmware_password_does_not_count() -> None:
    base = "/sys/class/firmware-attributes/dell-wmi-sysman/authentication"
    recorded = (
        Recorded()
        .directory("/sys/class/firmware-attributes", ["dell-wmi-sysman"])
        .directory(base, ["Admin", "System"])
        .file(f"{base}/Admin/is_enabled", "1\n")
        .file(f"{base}/Admin/role", "bios-admin\n")
        .file(f"{base}/System/is_enabled", "0\n")
        .file(f"{base}/System/role", "power-on\n")
    )
    _root(_no_autologin(recorded), "/dev/vda", "lsblk-lvm-two-disks-one-encrypted.json")
    finding = pop.check(recorded.context("linux"))
    assert finding.status is Status.FAIL


def test_nothing_visible_is_unknown_with_the_reason() -> None:
    plain = '{"blockdevices": [{"name": "vda", "path": "/dev/vda", "type": "disk", "fstype": null}]}'
    findmnt = json.dumps({"filesystems": [{"source": "/dev/vda", "target": "/", "fstype": "ext4"}]})
    recorded = (
        _no_autologin(Recorded())
        .directory("/sys/class/firmware-attributes", [], error="not found")
        .command(enc.FINDMNT_ROOT, findmnt)
        .command(["lsblk", "-J", "-s", "-o", enc.LSBLK_COLUMNS, "/dev/vda"], plain)
    )
    finding = pop.check(recorded.context("linux"))
    assert finding.status is Status.UNKNOWN
    assert "firmware does not show" in finding.summary


# --- antivirus ---------------------------------------------------------------------------


def test_cvd_header_build_time() -> None:
    built = av.parse_cvd_header(fixture("linux/daily-cld-header.txt"))
    assert built is not None and built.isoformat() == "2026-11-14T08:25:00+00:00"
    assert av.parse_cvd_header("ClamAV-VDB:07 Mar 2017 08-02 -0500:23182:1741572:63") is not None
    assert av.parse_cvd_header("not a database") is None


def test_clamd_config_database_directory() -> None:
    conf = "LocalSocket /run/clamav/clamd.ctl\nDatabaseDirectory /srv/clamav-db\nFixStaleSocket true\n"
    assert av.parse_clamd_config(conf) == "/srv/clamav-db"
    assert av.parse_clamd_config("LogSyslog false\n") == "/var/lib/clamav"
    assert av.config_from_cmdline(("clamd", "--config-file=/etc/x.conf")) == "/etc/x.conf"
    assert av.config_from_cmdline(("clamd", "-c", "/etc/y.conf", "--foreground")) == "/etc/y.conf"


def _clamd(header: str, max_age: int = 7) -> Recorded:
    recorded = (
        Recorded()
        .process_list(
            ProcessInfo("systemd"), ProcessInfo("clamd", "/usr/sbin/clamd", "clamav", ("/usr/sbin/clamd",))
        )
        .file("/etc/clamav/clamd.conf", "DatabaseDirectory /var/lib/clamav\n")
        # clamd's own answer, as ClamAV 1.4.6's clamdscan prints it (tests/fixtures/linux/SOURCES.md).
        .command(["clamdscan", "--ping", "1"], fixture("linux/clamdscan-ping-pong.txt"))
        .directory("/var/lib/clamav", ["bytecode.cvd", "daily.cld", "freshclam.dat", "main.cvd"])
        .file("/var/lib/clamav/daily.cld", header)
        .file(
            "/var/lib/clamav/main.cvd",
            "ClamAV-VDB:16 Sep 2021 08-32 -0400:62:6647427:90:X:X:sigmgr:1631795553",
        )
        .file(
            "/var/lib/clamav/bytecode.cvd",
            "ClamAV-VDB:19 Feb 2024 08-36 +0000:335:86:90:X:X:raynman:1708331778",
        )
    )
    return recorded


def test_clamd_with_signatures_nine_days_old_fails_at_seven_and_passes_at_ten() -> None:
    header = fixture("linux/daily-cld-header.txt")
    stale = av.check(_clamd(header).context("linux"))
    assert stale.status is Status.FAIL
    assert stale.evidence["signature_age_days"] == pytest.approx(9.1, abs=0.1)
    assert "freshclam" in all_advice(stale)
    lenient = Requirements(antivirus_max_signature_age_days=10)
    assert av.check(_clamd(header).context("linux", requirements=lenient)).status is Status.PASS


def test_known_edr_agent_passes_without_clamav() -> None:
    finding = av.check(Recorded().processes("systemd", "falcon-sensor").context("linux"))
    assert finding.status is Status.PASS
    assert "CrowdStrike" in finding.summary


def test_clamav_installed_but_stopped_is_told_to_start_it() -> None:
    recorded = Recorded().processes("systemd", "sshd").command(["clamd", "--version"], "ClamAV 1.4.6\n")
    finding = av.check(recorded.context("linux"))
    assert finding.status is Status.FAIL
    assert finding.remediation.it and "systemctl enable --now clamav-daemon" in finding.remediation.it


def test_no_clamav_installed_is_never_told_to_enable_its_service() -> None:
    recorded = Recorded().processes("systemd", "sshd").command(["clamd", "--version"], error="not found")
    finding = av.check(recorded.context("linux"))
    assert finding.status is Status.FAIL
    assert finding.summary == "no antivirus is installed"
    assert "systemctl enable" not in all_advice(finding).split("install", 1)[0]
    assert "apt install clamav-daemon" in all_advice(finding)


def test_a_running_clamd_that_does_not_answer_fails() -> None:
    recorded = _clamd(fixture("linux/daily-cld-header.txt"), max_age=30)
    recorded.command(
        ["clamdscan", "--ping", "1"],
        fixture("linux/clamdscan-ping-no-answer.txt"),
        fixture("linux/clamdscan-ping-no-answer.stderr.txt"),
        exit_code=21,
    )
    lenient = Requirements(antivirus_max_signature_age_days=30)
    finding = av.check(recorded.context("linux", requirements=lenient))
    assert finding.status is Status.FAIL
    assert "does not answer" in finding.summary
    assert finding.evidence["clamd_answers"] is False


def test_a_running_clamd_that_cannot_be_asked_is_unknown_not_pass() -> None:
    recorded = _clamd(fixture("linux/daily-cld-header.txt"))
    recorded.command(["clamdscan", "--ping", "1"], error="not found")
    lenient = Requirements(antivirus_max_signature_age_days=30)
    finding = av.check(recorded.context("linux", requirements=lenient))
    assert finding.status is Status.UNKNOWN
    assert "could not be asked" in finding.summary


def test_defender_for_endpoint_is_asked_not_just_seen() -> None:
    off = Recorded().processes("wdavdaemon").command(av.MDATP_HEALTH, "false\n")
    finding = av.check(off.context("linux"))
    assert finding.status is Status.FAIL
    assert "not protecting" in finding.summary
    on = Recorded().processes("wdavdaemon").command(av.MDATP_HEALTH, "true\n")
    assert av.check(on.context("linux")).status is Status.PASS


# --- screen lock -------------------------------------------------------------------------


def _gnome(lock_enabled: str, lock_delay: str, idle_delay: str) -> Recorded:
    return (
        Recorded()
        .command(["gsettings", "get", "org.gnome.desktop.screensaver", "lock-enabled"], f"{lock_enabled}\n")
        .command(
            ["gsettings", "get", "org.gnome.desktop.screensaver", "lock-delay"], f"uint32 {lock_delay}\n"
        )
        .command(["gsettings", "get", "org.gnome.desktop.session", "idle-delay"], f"uint32 {idle_delay}\n")
        .command(["gsettings", "get", "org.gnome.desktop.lockdown", "disable-lock-screen"], "false\n")
    )


def test_gnome_lock_time_is_idle_delay_plus_lock_delay() -> None:
    within = lock.check(_gnome("true", "0", "900").context("linux", desktop="ubuntu:GNOME"))
    assert within.status is Status.PASS
    over = lock.check(_gnome("true", "300", "900").context("linux", desktop="GNOME"))
    assert over.status is Status.FAIL
    assert "20 minutes" in over.summary


def test_gnome_lock_enabled_with_idle_delay_zero_never_locks() -> None:
    finding = lock.check(_gnome("true", "0", "0").context("linux", desktop="GNOME"))
    assert finding.status is Status.FAIL
    assert "never" in finding.summary
    assert "Screen Lock" in all_advice(finding)


def test_gnome_lock_disabled_fails() -> None:
    assert lock.check(_gnome("false", "0", "300").context("linux", desktop="GNOME")).status is Status.FAIL


def test_gnome_schema_missing_is_unknown() -> None:
    recorded = Recorded().command(
        ["gsettings", "get", "org.gnome.desktop.screensaver", "lock-enabled"],
        "",
        "No such schema “org.gnome.desktop.screensaver”\n",
        1,
    )
    assert lock.check(recorded.context("linux", desktop="GNOME")).status is Status.UNKNOWN


def test_cinnamon_uses_its_own_schemas() -> None:
    recorded = (
        Recorded()
        .command(["gsettings", "get", "org.cinnamon.desktop.screensaver", "lock-enabled"], "true\n")
        .command(["gsettings", "get", "org.cinnamon.desktop.screensaver", "lock-delay"], "uint32 0\n")
        .command(["gsettings", "get", "org.cinnamon.desktop.session", "idle-delay"], "uint32 600\n")
    )
    assert lock.check(recorded.context("linux", desktop="X-Cinnamon")).status is Status.PASS


def test_kde_autolock_off_fails() -> None:
    recorded = Recorded().file(
        "/home/student1/.config/kscreenlockerrc", "[Daemon]\nAutolock=false\nTimeout=5\n"
    )
    finding = lock.check(recorded.context("linux", desktop="KDE"))
    assert finding.status is Status.FAIL
    assert "Screen Locking" in all_advice(finding)


def test_kde_defaults_when_file_absent_lock_after_five_minutes() -> None:
    recorded = Recorded().file("/home/student1/.config/kscreenlockerrc", None, error="not found")
    finding = lock.check(recorded.context("linux", desktop="KDE"))
    assert finding.status is Status.PASS
    assert finding.evidence["idle_seconds"] == 300


def test_kde_timeout_over_the_limit_fails() -> None:
    recorded = Recorded().file(
        "/home/student1/.config/kscreenlockerrc", "[Daemon]\nTimeout=30\nLockGrace=60\n"
    )
    assert lock.check(recorded.context("linux", desktop="KDE")).status is Status.FAIL


def test_xfce_screensaver_channel() -> None:
    path = "/home/student1/.config/xfce4/xfconf/xfce-perchannel-xml/xfce4-screensaver.xml"
    recorded = Recorded().file(path, fixture("linux/xfce4-screensaver.xml"))
    finding = lock.check(recorded.context("linux", desktop="XFCE"))
    assert finding.status is Status.PASS
    assert finding.evidence["idle_seconds"] == 600 and finding.evidence["lock_delay_seconds"] == 120
    strict = Requirements(screen_lock_max_idle_minutes=10)
    assert lock.check(recorded.context("linux", desktop="XFCE", requirements=strict)).status is Status.FAIL


def test_no_desktop_session_is_unknown() -> None:
    finding = lock.check(Recorded().context("linux", desktop=""))
    assert finding.status is Status.UNKNOWN
    assert "user's own session" in finding.summary


# --- software ---------------------------------------------------------------------------

DPKG = (
    "ii \tadduser\t3.134\tDebian Adduser Developers <adduser@packages.debian.org>\n"
    "rc \told-game\t1.0-1\tSomeone <someone@example.org>\n"
    "ii \tqbittorrent\t4.5.2-3+deb12u1\tChristian Marillat <marillat@debian.org>\n"
    "ii \tfirefox-esr\t115.12.0esr-1~deb12u1\tMaintainers of Mozilla-related packages\n"
)
SNAP = (
    "Name      Version          Rev    Tracking         Publisher   Notes\n"
    "core22    20240111         1122   latest/stable    canonical✓  base\n"
    "spotify   1.2.31.1205      75     latest/stable    spotify✓    -\n"
)
FLATPAK = "org.gimp.GIMP\tGNU Image Manipulation Program\t2.10.36\tflathub\n"


# apt marks nothing automatic here (all three installed packages were asked for by name), as a
# machine where /var/lib/apt/extended_states does not exist yet; dpkg-query -S finds no entry.
def _software() -> Recorded:
    return (
        Recorded()
        .command(sw.DPKG_QUERY, DPKG)
        .file(sw.APT_EXTENDED_STATES, None, "not found")
        .command(
            sw.DPKG_DESKTOP_ENTRIES,
            stderr="dpkg-query: no path found matching pattern /usr/share/applications/*.desktop\n",
            exit_code=1,
        )
        .command(sw.DPKG_RELATIONS, "")
        .command(sw.RPM_QUERY, exit_code=None, error="not found")
        .command(sw.FLATPAK_LIST, FLATPAK)
        .command(
            sw.FLATPAK_RUNTIMES, "org.gnome.Platform\tGNOME Application Platform version 45\t\tflathub\n"
        )
        .command(sw.SNAP_LIST, SNAP)
    )


def test_inventory_parsers() -> None:
    dpkg = sw.parse_dpkg(DPKG)
    assert [item.name for item in dpkg] == ["adduser", "qbittorrent", "firefox-esr"]
    snaps = sw.parse_snap(SNAP)
    assert snaps[1].name == "spotify" and snaps[1].publisher == "spotify"
    flat = sw.parse_flatpak("Application ID\tName\tVersion\tOrigin\n" + FLATPAK)
    assert len(flat) == 1 and flat[0].source == "flatpak:org.gimp.GIMP"
    rpm = sw.parse_rpm("firefox\t128.0-1.fc40\tFedora Project\nkernel\t6.9.0-1\t(none)\n")
    assert rpm[1].publisher == ""


def test_blocked_software_fails_and_lists_each_item() -> None:
    requirements = Requirements(software_mode="blocklist", software_blocked=(SoftwareRule("qbittorrent*"),))
    finding = sw.check(_software().context("linux", requirements=requirements))
    assert finding.status is Status.FAIL
    assert finding.evidence["unapproved"] == [
        {
            "name": "qbittorrent",
            "version": "4.5.2-3+deb12u1",
            "publisher": "Christian Marillat <marillat@debian.org>",
            "source": "dpkg",
            "judged": True,
            "basis": sw.MANUAL,
            "reason": "blocked",
        }
    ]


def test_allowlist_flags_what_is_not_approved() -> None:
    requirements = Requirements(
        software_mode="allowlist",
        software_baseline=False,
        software_approved=(
            SoftwareRule("adduser"),
            SoftwareRule("firefox*"),
            SoftwareRule("core22"),
            SoftwareRule("*", publisher="spotify"),
            SoftwareRule("qbittorrent"),
        ),
    )
    finding = sw.check(_software().context("linux", requirements=requirements))
    assert finding.status is Status.FAIL
    assert [item["name"] for item in finding.evidence["unapproved"]] == ["GNU Image Manipulation Program"]


def test_publisher_must_match_when_a_rule_names_one() -> None:
    requirements = Requirements(
        software_mode="allowlist",
        software_baseline=False,
        software_approved=(SoftwareRule("*"),),
        software_blocked=(),
    )
    assert sw.check(_software().context("linux", requirements=requirements)).status is Status.PASS
    narrowed = replace(requirements, software_approved=(SoftwareRule("*", publisher="canonical"),))
    finding = sw.check(_software().context("linux", requirements=narrowed))
    assert finding.status is Status.FAIL
    assert "core22" not in [item["name"] for item in finding.evidence["unapproved"]]


def test_all_inventories_failing_is_an_error() -> None:
    recorded = (
        Recorded()
        .command(sw.DPKG_QUERY, "", "dpkg-query: error: cannot access archive\n", 2)
        .command(sw.RPM_QUERY, exit_code=None, error="not found")
        .command(sw.FLATPAK_LIST, exit_code=None, error="not found")
        .command(sw.SNAP_LIST, exit_code=None, error="not found")
    )
    finding = sw.check(recorded.context("linux"))
    assert finding.status is Status.ERROR
    assert "dpkg" in finding.summary
