"""The six macOS checks, against recorded outputs of the real macOS tools.

Where each recorded format comes from (the fixtures under tests/fixtures/macos/
were written to match these exactly):
- `fdesetup status`: the one- or two-line answers described in Apple's fdesetup(8)
  manual and shown in Apple admin write-ups: "FileVault is On.", "FileVault is Off.",
  "Encryption in progress: Percent completed = 42.1" under "FileVault is On.",
  "Deferred enablement appears to be active for user 'NAME'.", and
  "FileVault is Off, but will be enabled after the next restart.".
- `socketfilterfw --getglobalstate`: "Firewall is enabled. (State = 1)",
  "Firewall is disabled. (State = 0)", block-all reported as "(State = 2)".
- `firmwarepasswd -check`: "Password Enabled: Yes" / "Password Enabled: No" (firmwarepasswd(8)).
- `sysadminctl -screenLock status`: one NSLog line on stderr, "<date> <time> sysadminctl[pid:tid]
  screenLock delay is 300 seconds" / "... screenLock delay is immediate" / "... screenLock is off".
- `defaults -currentHost read com.apple.screensaver idleTime`: the number alone; an unset key
  exits 1 with "The domain/default pair of (com.apple.screensaver, idleTime) does not exist".
- `pmset -g custom` / `pmset -g`: pmset(1)'s sections ("Battery Power:", "AC Power:",
  "Currently in use:") with one " name   value" line per setting, 0 meaning never.
- `system_profiler SPInstallHistoryDataType -json`: {"SPInstallHistoryDataType": [{"_name",
  "install_date" (ISO 8601, Z), "install_version", "package_source"}]}.
- Property lists: Apple's XML plist format (the PropertyList-1.0 DTD, tab-indented, keys sorted),
  as `plutil -convert xml1 -o -` writes it; binary plists begin with the magic "bplist00".
"""

from __future__ import annotations

import plistlib
from datetime import datetime, timezone

import pytest

from agent.checks import antivirus_macos as antivirus
from agent.checks import disk_encryption_macos as disk
from agent.checks import firewall_macos as firewall
from agent.checks import power_on_password_macos as power_on
from agent.checks import screen_lock_macos as screen_lock
from agent.checks import software_macos as software
from agent.checks.results import Status
from agent.probes import NOT_FOUND, PERMISSION_DENIED
from agent.probes.macos import parse_plist, plutil_argv
from contract.requirements import Requirements, SoftwareRule
from tests.helpers.recorded import Recorded, all_advice, fixture

# What LiveProbes.read_file returns for a binary plist: its bytes decoded as UTF-8 with replacement.
BINARY_LOGINWINDOW = plistlib.dumps(
    {"autoLoginUser": "student1", "lastUserName": "student1"}, fmt=plistlib.FMT_BINARY
).decode("utf-8", errors="replace")


def epoch(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=timezone.utc).timestamp()


# --- disk encryption ---------------------------------------------------------------------


# fdesetup_*.txt: the fdesetup status answers listed at the top of this module, written to match them exactly.
def fdesetup(stdout: str, stderr: str = "", exit_code: int | None = 0, error: str | None = None) -> Recorded:
    return Recorded().command(disk.FDESETUP_STATUS, stdout, stderr, exit_code, error)


def test_filevault_on_passes() -> None:
    finding = disk.check(fdesetup(fixture("macos/fdesetup_on.txt")).context("macos"))
    assert finding.status is Status.PASS
    assert finding.evidence["filevault"] == "on"


def test_filevault_off_fails_with_where_to_turn_it_on() -> None:
    finding = disk.check(fdesetup(fixture("macos/fdesetup_off.txt")).context("macos"))
    assert finding.status is Status.FAIL
    assert "Privacy & Security → FileVault" in all_advice(finding)


def test_encryption_in_progress_fails_with_progress_although_fdesetup_says_on() -> None:
    finding = disk.check(fdesetup(fixture("macos/fdesetup_encrypting.txt")).context("macos"))
    assert finding.status is Status.FAIL
    assert finding.evidence["filevault"] == "encrypting"
    assert finding.evidence["percent_completed"] == 42.1
    assert "42.1%" in finding.summary
    assert finding.remediation


def test_decryption_in_progress_fails() -> None:
    finding = disk.check(fdesetup(fixture("macos/fdesetup_decrypting.txt")).context("macos"))
    assert finding.status is Status.FAIL
    assert finding.evidence == {"filevault": "decrypting", "percent_completed": 57.9}


@pytest.mark.parametrize("name", ["fdesetup_deferred.txt", "fdesetup_restart_pending.txt"])
def test_filevault_waiting_for_logout_or_restart_fails(name: str) -> None:
    finding = disk.check(fdesetup(fixture(f"macos/{name}")).context("macos"))
    assert finding.status is Status.FAIL
    assert finding.evidence["filevault"] == "pending"
    assert "restart" in all_advice(finding)


def test_deferred_enablement_names_the_user() -> None:
    status = disk.parse_fdesetup_status(fixture("macos/fdesetup_deferred.txt"))
    assert status == disk.FileVaultStatus(disk.FileVaultState.PENDING, deferred_user="student1")


def test_encryption_pending_without_percentage_is_still_encrypting() -> None:
    status = disk.parse_fdesetup_status("FileVault is On.\nEncryption in progress: Pending\n")
    assert status == disk.FileVaultStatus(disk.FileVaultState.ENCRYPTING, None)


def test_master_keychain_line_before_the_state_is_ignored() -> None:
    text = "FileVault master keychain appears to be installed.\nFileVault is On.\n"
    assert disk.parse_fdesetup_status(text) == disk.FileVaultStatus(disk.FileVaultState.ON)


def test_unrecognised_fdesetup_output_is_an_error_not_a_verdict() -> None:
    finding = disk.check(fdesetup("Something new in macOS 27\n").context("macos"))
    assert finding.status is Status.ERROR
    assert "Something new" in finding.evidence["output"]


def test_fdesetup_missing_is_an_error() -> None:
    finding = disk.check(fdesetup("", exit_code=None, error=NOT_FOUND).context("macos"))
    assert finding.status is Status.ERROR
    assert "not found" in finding.summary


def test_fdesetup_refused_is_unknown_naming_root() -> None:
    recorded = fdesetup("", stderr="Error: Operation not permitted.\n", exit_code=1)
    finding = disk.check(recorded.context("macos", is_admin=False))
    assert finding.status is Status.UNKNOWN
    assert "root" in finding.summary


# --- firewall ----------------------------------------------------------------------------


# socketfilterfw --getglobalstate prints one sentence; recorded inline, exactly as it prints it.
def socketfilterfw(stdout: str, exit_code: int | None = 0, error: str | None = None) -> Recorded:
    return Recorded().command(firewall.SOCKETFILTERFW_GLOBAL_STATE, stdout, "", exit_code, error)


def test_firewall_enabled_passes() -> None:
    finding = firewall.check(socketfilterfw("Firewall is enabled. (State = 1)\n").context("macos"))
    assert finding.status is Status.PASS
    assert finding.evidence["state"] == 1
    assert finding.evidence["source"] == "socketfilterfw --getglobalstate"


def test_firewall_block_all_passes_and_says_so() -> None:
    finding = firewall.check(socketfilterfw("Firewall is enabled. (State = 2)\n").context("macos"))
    assert finding.status is Status.PASS
    assert finding.evidence["state"] == 2
    assert "blocks all" in finding.summary


def test_firewall_disabled_fails_with_where_to_turn_it_on() -> None:
    finding = firewall.check(socketfilterfw("Firewall is disabled. (State = 0)\n").context("macos"))
    assert finding.status is Status.FAIL
    assert "Network → Firewall" in all_advice(finding)


def test_sentence_without_state_number_still_reads() -> None:
    assert firewall.parse_global_state("Firewall is disabled.\n") == 0
    assert firewall.parse_global_state("Firewall is enabled.\n") == 1
    assert firewall.parse_global_state("Firewall is enabled. (State = 7)\n") is None


def test_plist_fallback_on_macos_14_when_socketfilterfw_fails() -> None:
    recorded = socketfilterfw("", exit_code=None, error="timed out after 15 s").file(
        firewall.ALF_PLIST, fixture("macos/alf_globalstate_1.plist")
    )
    finding = firewall.check(recorded.context("macos", os_version="14.6.1"))
    assert finding.status is Status.PASS
    assert finding.evidence["source"] == firewall.ALF_PLIST


def test_binary_alf_plist_is_read_through_plutil() -> None:
    binary = plistlib.dumps({"globalstate": 0}, fmt=plistlib.FMT_BINARY).decode("utf-8", errors="replace")
    recorded = (
        socketfilterfw("", exit_code=None, error=NOT_FOUND)
        .file(firewall.ALF_PLIST, binary)
        .command(
            plutil_argv(firewall.ALF_PLIST),
            stdout=plistlib.dumps({"globalstate": 0}).decode(),
        )
    )
    finding = firewall.check(recorded.context("macos", os_version="13.7"))
    assert finding.status is Status.FAIL
    assert finding.evidence["source"] == firewall.ALF_PLIST


def test_no_plist_fallback_on_macos_15() -> None:
    # Even a recorded plist is not used: on macOS 15 and later it is not the firewall's state.
    recorded = socketfilterfw("", exit_code=None, error="timed out after 15 s").file(
        firewall.ALF_PLIST, fixture("macos/alf_globalstate_1.plist")
    )
    finding = firewall.check(recorded.context("macos", os_version="15.1"))
    assert finding.status is Status.ERROR
    assert "timed out" in finding.summary


def test_no_plist_fallback_when_the_version_is_unknown() -> None:
    recorded = socketfilterfw("", exit_code=None, error=NOT_FOUND).file(
        firewall.ALF_PLIST, fixture("macos/alf_globalstate_1.plist")
    )
    assert firewall.check(recorded.context("macos", os_version="")).status is Status.ERROR


# --- power-on password -------------------------------------------------------------------


# loginwindow_*.plist: /Library/Preferences/com.apple.loginwindow.plist as `plutil -convert xml1 -o -`
# prints it
# (Apple's XML plist format); BINARY_LOGINWINDOW is the same file as read_file sees it in binary form.
def startup(fdesetup_text: str, loginwindow: str | None = None, error: str | None = None) -> Recorded:
    """FileVault's status and the login window preferences; no file at all unless one is given."""
    recorded = Recorded().command(disk.FDESETUP_STATUS, stdout=fdesetup_text)
    if loginwindow is None and error is None:
        error = NOT_FOUND
    return recorded.file(power_on.LOGINWINDOW_PLIST, loginwindow, error=error)


def test_apple_silicon_with_filevault_on_passes() -> None:
    finding = power_on.check(startup(fixture("macos/fdesetup_on.txt")).context("macos", machine="arm64"))
    assert finding.status is Status.PASS
    assert finding.evidence["apple_silicon"] is True


def test_apple_silicon_with_filevault_off_fails_even_as_root() -> None:
    # No firmwarepasswd is recorded: asking it on Apple silicon would be a bug.
    recorded = startup(fixture("macos/fdesetup_off.txt"), fixture("macos/loginwindow_no_autologin.plist"))
    finding = power_on.check(recorded.context("macos", machine="arm64", is_admin=True))
    assert finding.status is Status.FAIL
    assert "only password" in finding.summary
    assert "FileVault" in all_advice(finding)


def test_filevault_still_encrypting_already_asks_at_startup() -> None:
    recorded = startup(fixture("macos/fdesetup_encrypting.txt"))
    assert power_on.check(recorded.context("macos", machine="arm64")).status is Status.PASS


def test_intel_firmware_password_with_autologin_off_passes() -> None:
    recorded = startup(fixture("macos/fdesetup_off.txt"), fixture("macos/loginwindow_no_autologin.plist"))
    recorded.command(power_on.FIRMWAREPASSWD_CHECK, stdout="Password Enabled: Yes\n")
    finding = power_on.check(recorded.context("macos", machine="x86_64", is_admin=True))
    assert finding.status is Status.PASS
    assert finding.evidence["firmware_password"] is True


def test_intel_no_firmware_password_and_filevault_off_fails() -> None:
    recorded = startup(fixture("macos/fdesetup_off.txt"))
    recorded.command(power_on.FIRMWAREPASSWD_CHECK, stdout="Password Enabled: No\n")
    finding = power_on.check(recorded.context("macos", machine="x86_64", is_admin=True))
    assert finding.status is Status.FAIL
    assert finding.evidence["firmware_password"] is False
    assert finding.remediation


def test_autologin_from_a_binary_loginwindow_plist_fails_even_with_firmware_password() -> None:
    recorded = startup(fixture("macos/fdesetup_off.txt"), BINARY_LOGINWINDOW)
    recorded.command(
        plutil_argv(power_on.LOGINWINDOW_PLIST), stdout=fixture("macos/loginwindow_autologin.plist")
    )
    recorded.command(power_on.FIRMWAREPASSWD_CHECK, stdout="Password Enabled: Yes\n")
    finding = power_on.check(recorded.context("macos", machine="x86_64", is_admin=True))
    assert finding.status is Status.FAIL
    assert finding.evidence["automatic_login_user"] == "student1"
    assert "Automatically log in as" in all_advice(finding)


def test_intel_not_root_cannot_read_firmware_password_so_unknown() -> None:
    recorded = startup(fixture("macos/fdesetup_off.txt"))
    finding = power_on.check(recorded.context("macos", machine="x86_64", is_admin=False))
    assert finding.status is Status.UNKNOWN
    assert "root" in finding.summary
    assert finding.evidence["firmware_password"] is None


def test_intel_not_root_with_autologin_on_still_fails() -> None:
    recorded = startup(fixture("macos/fdesetup_off.txt"), fixture("macos/loginwindow_autologin.plist"))
    finding = power_on.check(recorded.context("macos", machine="x86_64", is_admin=False))
    assert finding.status is Status.FAIL


def test_filevault_unreadable_on_apple_silicon_is_unknown_with_reason() -> None:
    recorded = Recorded().command(disk.FDESETUP_STATUS, exit_code=None, error="timed out after 15 s")
    recorded.file(power_on.LOGINWINDOW_PLIST, None, error=NOT_FOUND)
    finding = power_on.check(recorded.context("macos", machine="arm64"))
    assert finding.status is Status.UNKNOWN
    assert "timed out" in finding.summary


def test_unreadable_loginwindow_with_firmware_password_is_unknown() -> None:
    recorded = startup(fixture("macos/fdesetup_off.txt"), None, error=PERMISSION_DENIED)
    recorded.command(power_on.FIRMWAREPASSWD_CHECK, stdout="Password Enabled: Yes\n")
    finding = power_on.check(recorded.context("macos", machine="x86_64", is_admin=True))
    assert finding.status is Status.UNKNOWN
    assert "automatic login" in finding.summary


def test_firmwarepasswd_output_parser() -> None:
    assert power_on.parse_firmwarepasswd_check("Password Enabled: Yes\n") is True
    assert power_on.parse_firmwarepasswd_check("Password Enabled: No\n") is False
    assert power_on.parse_firmwarepasswd_check("Usage: firmwarepasswd ...\n") is None


# --- antivirus ---------------------------------------------------------------------------

# xprotect_Info.plist: XProtect.bundle/Contents/Info.plist in Apple's XML plist format (bundle keys from
# Apple's Information Property List reference); install_history.json: `system_profiler
# SPInstallHistoryDataType -json`, in system_profiler's JSON shape. Both written to match them exactly.
XPROTECT_LEGACY, XPROTECT_SEQUOIA = antivirus.XPROTECT_INFO_PLISTS


def xprotect(mtime: float | None, *running: str) -> Recorded:
    recorded = Recorded().file(XPROTECT_LEGACY, fixture("macos/xprotect_Info.plist"), mtime=mtime)
    recorded.file(XPROTECT_SEQUOIA, None, error=NOT_FOUND)
    return recorded.processes("launchd", "WindowServer", *running)


def test_fresh_xprotect_passes() -> None:
    recorded = xprotect(epoch("2026-11-19T18:02:31"))
    finding = antivirus.check(recorded.context("macos"))
    assert finding.status is Status.PASS
    assert finding.evidence["xprotect_version"] == "5287"
    assert finding.evidence["xprotect_age_days"] == 3.7


def test_stale_xprotect_and_nothing_else_fails() -> None:
    recorded = xprotect(epoch("2026-09-30T17:41:55"))
    finding = antivirus.check(recorded.context("macos"))
    assert finding.status is Status.FAIL
    assert finding.evidence["xprotect_age_days"] == 53.8
    assert finding.evidence["max_signature_age_days"] == 30
    assert "Software Update" in all_advice(finding)


def test_age_limit_comes_from_the_requirements() -> None:
    recorded = xprotect(epoch("2026-10-30T17:41:55"))
    assert antivirus.check(recorded.context("macos")).status is Status.PASS
    strict = Requirements(antivirus_max_xprotect_age_days=14)
    assert antivirus.check(recorded.context("macos", requirements=strict)).status is Status.FAIL


@pytest.mark.parametrize(
    ("process", "product"),
    [
        ("com.crowdstrike.falcon.Agent", "CrowdStrike Falcon"),
        ("sentineld", "SentinelOne"),
        ("wdavdaemon", "Microsoft Defender"),
        ("JamfProtect", "Jamf Protect"),
        ("SophosScanD", "Sophos"),
    ],
)
def test_known_product_running_passes_despite_stale_xprotect(process: str, product: str) -> None:
    finding = antivirus.check(xprotect(epoch("2026-01-01T00:00:00"), process).context("macos"))
    assert finding.status is Status.PASS
    assert finding.evidence["security_products"] == [product]


def test_process_name_cut_short_by_the_os_still_matches() -> None:
    assert antivirus.running_products([antivirus.ProcessInfo("com.crowdstrike")]) == ["CrowdStrike Falcon"]
    assert antivirus.running_products([antivirus.ProcessInfo("sentinel")]) == []


def test_newer_bundle_under_var_protected_wins() -> None:
    newer = fixture("macos/xprotect_Info.plist").replace("5287", "5290")
    recorded = Recorded().file(
        XPROTECT_LEGACY, fixture("macos/xprotect_Info.plist"), mtime=epoch("2026-10-01")
    )
    recorded.file(XPROTECT_SEQUOIA, newer, mtime=epoch("2026-11-21T00:00:00"))
    finding = antivirus.check(recorded.processes("launchd").context("macos"))
    assert finding.status is Status.PASS
    assert finding.evidence["xprotect_version"] == "5290"


def test_install_history_dates_xprotect_when_the_file_has_no_mtime() -> None:
    recorded = xprotect(None).command(antivirus.INSTALL_HISTORY, stdout=fixture("macos/install_history.json"))
    finding = antivirus.check(recorded.context("macos"))
    assert finding.status is Status.PASS
    assert finding.evidence["xprotect_date_source"] == "install history"
    assert finding.evidence["xprotect_updated"] == "2026-11-19T18:02:31+00:00"


def test_install_history_parser_takes_the_newest_xprotect_entry_only() -> None:
    newest = antivirus.parse_install_history(fixture("macos/install_history.json"))
    assert newest == datetime(2026, 11, 19, 18, 2, 31, tzinfo=timezone.utc)
    assert antivirus.parse_install_history('{"SPInstallHistoryDataType": []}') is None


def test_xprotect_without_any_date_is_unknown() -> None:
    recorded = xprotect(None).command(antivirus.INSTALL_HISTORY, exit_code=None, error="timed out after 60 s")
    finding = antivirus.check(recorded.context("macos"))
    assert finding.status is Status.UNKNOWN
    assert "5287" in finding.summary


def test_stale_xprotect_with_no_process_list_is_unknown_not_fail() -> None:
    recorded = Recorded().file(
        XPROTECT_LEGACY, fixture("macos/xprotect_Info.plist"), mtime=epoch("2026-09-01")
    )
    recorded.file(XPROTECT_SEQUOIA, None, error=NOT_FOUND).processes(error="psutil.AccessDenied")
    finding = antivirus.check(recorded.context("macos"))
    assert finding.status is Status.UNKNOWN
    assert finding.evidence["process_problem"] == "psutil.AccessDenied"


def test_nothing_readable_at_all_is_an_error() -> None:
    finding = antivirus.check(Recorded().context("macos"))
    assert finding.status is Status.ERROR


# --- screen lock -------------------------------------------------------------------------

# sysadminctl writes one NSLog line (date, time, "sysadminctl[pid:thread]", message) to stderr.
# pmset_custom_laptop.txt / pmset_g.txt: `pmset -g custom` and `pmset -g` on a laptop, in pmset(1)'s layout.
NSLOG_PREFIX = "2026-11-23 12:00:01.482 sysadminctl[4521:88231] "
IDLE_NOT_SET = "\nThe domain/default pair of (com.apple.screensaver, idleTime) does not exist\n"


def screen(lock: str, idle: str | None, pmset_custom: str | None = None) -> Recorded:
    recorded = Recorded().command(screen_lock.SYSADMINCTL_SCREENLOCK, stderr=NSLOG_PREFIX + lock + "\n")
    if idle is None:
        recorded.command(screen_lock.SCREENSAVER_IDLE_TIME, stderr=IDLE_NOT_SET, exit_code=1)
    else:
        recorded.command(screen_lock.SCREENSAVER_IDLE_TIME, stdout=idle + "\n")
    return recorded.command(
        screen_lock.PMSET_CUSTOM, stdout=pmset_custom or fixture("macos/pmset_custom_laptop.txt")
    )


def test_screensaver_5_minutes_plus_5_minute_delay_passes_at_15() -> None:
    finding = screen_lock.check(screen("screenLock delay is 300 seconds", "300").context("macos"))
    assert finding.status is Status.PASS
    # Battery: min(300 s, 2 min) + 300 s; AC: min(300 s, 10 min) + 300 s.
    assert finding.evidence["lock_seconds"] == {"Battery Power": 420, "AC Power": 600}


def test_lock_time_adds_the_delay_to_the_idle_time() -> None:
    # 10 min display sleep on AC + 10 min delay = 20 min > 15: fails although each part is under 15.
    finding = screen_lock.check(screen("screenLock delay is 600 seconds", "0").context("macos"))
    assert finding.status is Status.FAIL
    assert finding.evidence["lock_seconds"]["AC Power"] == 1200
    assert "on the power adapter" in finding.summary
    assert "Lock Screen" in all_advice(finding)


def test_limit_comes_from_the_requirements() -> None:
    recorded = screen("screenLock delay is 600 seconds", "0")
    finding = screen_lock.check(
        recorded.context("macos", requirements=Requirements(screen_lock_max_idle_minutes=20))
    )
    assert finding.status is Status.PASS


def test_immediate_lock_passes() -> None:
    finding = screen_lock.check(screen("screenLock delay is immediate", "600").context("macos"))
    assert finding.status is Status.PASS
    assert finding.evidence["lock_delay_seconds"] == 0


def test_lock_off_fails() -> None:
    finding = screen_lock.check(screen("screenLock is off", "60").context("macos"))
    assert finding.status is Status.FAIL
    assert finding.evidence["lock_off"] is True
    assert "Immediately" in all_advice(finding)


def test_never_idle_on_ac_fails() -> None:
    never_on_ac = fixture("macos/pmset_custom_laptop.txt").replace(
        " displaysleep         10\n", " displaysleep         0\n"
    )
    finding = screen_lock.check(screen("screenLock delay is immediate", "0", never_on_ac).context("macos"))
    assert finding.status is Status.FAIL
    assert finding.evidence["lock_seconds"]["AC Power"] is None
    assert "never locks" in finding.summary


def test_screensaver_never_set_but_display_sleep_short_enough_passes() -> None:
    finding = screen_lock.check(screen("screenLock delay is 5 seconds", None).context("macos"))
    assert finding.status is Status.PASS
    assert finding.evidence["screensaver_idle_seconds"] is None


def test_screensaver_never_set_and_display_sleep_too_long_is_unknown() -> None:
    long_on_ac = fixture("macos/pmset_custom_laptop.txt").replace(
        " displaysleep         10\n", " displaysleep         30\n"
    )
    finding = screen_lock.check(screen("screenLock delay is immediate", None, long_on_ac).context("macos"))
    assert finding.status is Status.UNKNOWN
    assert finding.remediation


def test_pmset_custom_failing_falls_back_to_settings_in_use() -> None:
    recorded = Recorded().command(
        screen_lock.SYSADMINCTL_SCREENLOCK, stderr=NSLOG_PREFIX + "screenLock delay is immediate\n"
    )
    recorded.command(screen_lock.SCREENSAVER_IDLE_TIME, stdout="1200\n")
    recorded.command(screen_lock.PMSET_CUSTOM, exit_code=1, stderr="pmset: error\n")
    recorded.command(screen_lock.PMSET_IN_USE, stdout=fixture("macos/pmset_g.txt"))
    finding = screen_lock.check(recorded.context("macos"))
    assert finding.status is Status.PASS
    assert finding.evidence["display_sleep_minutes"] == {"Currently in use": 10}


def test_pmset_parser_reads_each_power_source() -> None:
    parsed = screen_lock.parse_pmset_display_sleep(fixture("macos/pmset_custom_laptop.txt"))
    assert parsed == {"Battery Power": 2, "AC Power": 10}


def test_negative_delay_means_off() -> None:
    assert screen_lock.parse_screenlock_status("screenLock delay is -1 seconds") == screen_lock.LockDelay(
        True
    )


def test_sysadminctl_without_screenlock_on_old_macos_is_unknown() -> None:
    recorded = Recorded().command(
        screen_lock.SYSADMINCTL_SCREENLOCK,
        stderr="Usage: sysadminctl\n\t-deleteUser <user name>\n",
        exit_code=0,
    )
    finding = screen_lock.check(recorded.context("macos", os_version="12.7.6"))
    assert finding.status is Status.UNKNOWN
    assert "13" in finding.summary


def test_sysadminctl_unrecognised_on_new_macos_is_an_error() -> None:
    recorded = Recorded().command(screen_lock.SYSADMINCTL_SCREENLOCK, stderr="something else\n")
    finding = screen_lock.check(recorded.context("macos", os_version="15.1"))
    assert finding.status is Status.ERROR


def test_sysadminctl_refused_is_unknown() -> None:
    recorded = Recorded().command(
        screen_lock.SYSADMINCTL_SCREENLOCK, stderr=NSLOG_PREFIX + "Operation not permitted\n", exit_code=1
    )
    finding = screen_lock.check(recorded.context("macos", os_version="14.5"))
    assert finding.status is Status.UNKNOWN
    assert "session" in finding.summary


# --- software ----------------------------------------------------------------------------

# *_Info.plist: app bundles' Contents/Info.plist in Apple's XML plist format, with the CFBundle* keys of
# Apple's Information Property List reference; Steam's is replayed in binary form to exercise plutil.
CHROME = "/Applications/Google Chrome.app"
FIREFOX = "/Applications/Firefox.app"
STEAM = "/Applications/Steam.app"
ADOBE = "/Applications/Adobe Photoshop 2025"
PHOTOSHOP = f"{ADOBE}/Adobe Photoshop 2025.app"
BROKEN = "/Applications/Broken.app"


def applications() -> Recorded:
    recorded = Recorded().directory(
        "/Applications",
        [
            ".DS_Store",
            ".localized",
            "Adobe Photoshop 2025",
            "Broken.app",
            "Firefox.app",
            "Google Chrome.app",
            "Steam.app",
        ],
    )
    recorded.directory(ADOBE, ["Adobe Photoshop 2025.app", "LegalNotices", "Presets"])
    recorded.file(f"{CHROME}/Contents/Info.plist", fixture("macos/chrome_Info.plist"))
    recorded.file(f"{FIREFOX}/Contents/Info.plist", fixture("macos/firefox_Info.plist"))
    recorded.file(f"{PHOTOSHOP}/Contents/Info.plist", fixture("macos/photoshop_Info.plist"))
    steam = plistlib.loads(fixture("macos/steam_Info.plist").encode())
    recorded.file(
        f"{STEAM}/Contents/Info.plist",
        plistlib.dumps(steam, fmt=plistlib.FMT_BINARY).decode("utf-8", errors="replace"),
    )
    recorded.command(plutil_argv(f"{STEAM}/Contents/Info.plist"), stdout=fixture("macos/steam_Info.plist"))
    return recorded.file(f"{BROKEN}/Contents/Info.plist", None, error=NOT_FOUND)


def blocklist(*names: str) -> Requirements:
    return Requirements(software_mode="blocklist", software_blocked=tuple(SoftwareRule(n) for n in names))


def test_inventory_reads_names_versions_and_publisher_hints() -> None:
    problems: list[str] = []
    paths, listed = software.app_paths(applications().probes(), problems)
    assert listed
    assert paths == [PHOTOSHOP, BROKEN, FIREFOX, CHROME, STEAM]
    items = {software.read_app(applications().probes(), path, problems).name: path for path in paths}
    assert set(items) == {"Adobe Photoshop 2025", "Broken", "Firefox", "Google Chrome", "Steam"}
    chrome = software.read_app(applications().probes(), CHROME, [])
    assert chrome == software.SoftwareItem("Google Chrome", "131.0.6778.70", "com.google", CHROME)
    assert problems and BROKEN in problems[0]


def test_blocked_app_fails_with_drag_to_bin_hint() -> None:
    finding = software.check(applications().context("macos", requirements=blocklist("Steam")))
    assert finding.status is Status.FAIL
    assert [item["name"] for item in finding.evidence["unapproved"]] == ["Steam"]
    assert finding.evidence["unapproved"][0]["publisher"] == "com.valvesoftware"
    assert "drag it to the Bin" in all_advice(finding)


def test_nothing_blocked_passes_and_counts_every_app() -> None:
    finding = software.check(applications().context("macos", requirements=blocklist("Minecraft*")))
    assert finding.status is Status.PASS
    assert finding.evidence["items_seen"] == 5
    assert finding.evidence["inventory_sources"] == ["/Applications"]


def test_app_in_a_vendor_folder_is_found_by_publisher_rule() -> None:
    rule = SoftwareRule("*", "com.adobe")
    requirements = Requirements(software_mode="blocklist", software_blocked=(rule,))
    finding = software.check(applications().context("macos", requirements=requirements))
    assert finding.status is Status.FAIL
    assert finding.evidence["unapproved"][0]["source"] == PHOTOSHOP


def test_unreadable_applications_folder_is_an_error() -> None:
    recorded = Recorded().directory("/Applications", [], error=PERMISSION_DENIED)
    finding = software.check(recorded.context("macos", requirements=blocklist("Steam")))
    assert finding.status is Status.ERROR
    assert "permission denied" in finding.summary


def test_publisher_hint_from_bundle_id() -> None:
    assert software.publisher_from_bundle_id("com.google.Chrome") == "com.google"
    assert software.publisher_from_bundle_id("org.mozilla.firefox") == "org.mozilla"
    assert software.publisher_from_bundle_id("Steam") == "Steam"
    assert software.publisher_from_bundle_id("") == ""


def test_display_name_wins_over_short_bundle_name() -> None:
    info = plistlib.loads(fixture("macos/chrome_Info.plist").encode())
    assert info["CFBundleName"] == "Chrome"
    assert software.app_from_info_plist(CHROME, info).name == "Google Chrome"


def test_plist_helpers_reject_non_plists() -> None:
    assert parse_plist("not a plist") is None
    assert parse_plist(plistlib.dumps(["a", "list"]).decode()) is None


def test_a_running_defender_that_says_it_is_off_does_not_count() -> None:
    from agent.checks import antivirus_macos

    stale = 1_790_683_200  # XProtect 60 days before FIXED_NOW
    recorded = (
        Recorded()
        .processes("wdavdaemon")
        .command(antivirus_macos.MDATP_HEALTH, "false\n")
        .file(antivirus_macos.XPROTECT_INFO_PLISTS[0], fixture("macos/xprotect_Info.plist"), mtime=stale)
        .file(antivirus_macos.XPROTECT_INFO_PLISTS[1], None, error="not found")
    )
    assert antivirus_macos.check(recorded.context("macos")).status is Status.FAIL
    recorded.command(antivirus_macos.MDATP_HEALTH, "true\n")
    assert antivirus_macos.check(recorded.context("macos")).status is Status.PASS
