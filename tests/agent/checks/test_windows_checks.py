"""The six Windows checks, run against recorded outputs of the real Windows tools.

Where each recording's format comes from (fixtures under tests/fixtures/windows/, listed
file by file in tests/fixtures/windows/SOURCES.md):

- manage-bde-*.txt: `manage-bde -status C:` as shown in Microsoft's BitLocker
  documentation (learn.microsoft.com, "BitLocker operations guide" / manage-bde
  status), field names, alignment and the "Used Space Only Encrypted",
  "Fully Encrypted", "Encryption in Progress", "Fully Decrypted", "Protection On/Off"
  and "Key Protectors: None Found" wording; the access-denied text is manage-bde's
  own refusal message. Written to match it exactly (CRLF line ends, as Windows writes).
- *.json from CIM: `Get-CimInstance ... | ConvertTo-Json -Depth 4 -Compress` (Windows
  PowerShell 5.1): one instance is a bare object, several a list; each carries
  PSComputerName, CimClass, CimInstanceProperties and CimSystemProperties beside the
  class's own properties. CimClass is trimmed (its property/qualifier lists are empty
  here; on a real machine they are long) because no parser reads it.
  Class properties: AntiVirusProduct (displayName, instanceGuid, pathToSigned*,
  productState, timestamp) as Windows Security Center exposes it; HP_BIOSPassword
  (Name, IsSet, ...) per HP's BIOS WMI interface; Dell PasswordObject (NameId,
  IsPasswordSet, ...) per Dell's agentless manageability whitepaper MOF;
  Lenovo_BiosPasswordSettings (PasswordState bit values 1/2/4/64) per Lenovo's BIOS
  WMI guide; Win32_ComputerSystem per Microsoft's class reference.
- productState values (397568, 393472, 266240, 266256) are values widely reported
  from real machines (e.g. the survey in Stack Overflow question 4700897 and the
  neophob.com SecurityCenter2 write-up).
- get-mpcomputerstatus-*.json: the properties of MSFT_MpComputerStatus /
  `Get-MpComputerStatus` (Microsoft's cmdlet reference) after Select-Object and
  ConvertTo-Json in PowerShell 5.1, which writes a DateTime as "\\/Date(ms)\\/".
- Registry values: as RegistryKey gives them (REG_SZ as str, REG_DWORD as int); the
  value names and types are those of Microsoft's Group Policy reference for
  screen saver and "Interactive logon: Machine inactivity limit".
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from agent.checks import (
    antivirus_windows,
    disk_encryption_windows,
    firewall_windows,
    power_on_password_windows,
    screen_lock_windows,
    software_windows,
)
from agent.checks.disk_encryption_windows import WINDOWS_NT_KEY
from agent.checks.results import Finding, Status
from agent.probes import RegistryKey
from contract.requirements import Requirements, SoftwareRule
from tests.helpers.recorded import Recorded, all_advice, fixture

BDE_C = ["manage-bde", "-status", "C:"]
SECURITY_CENTER = "root\\SecurityCenter2"

CIM_ACCESS_DENIED = (
    "Get-CimInstance : Access denied \r\nAt line:1 char:1\r\n+ Get-CimInstance -Namespace ...\r\n"
    "    + CategoryInfo          : PermissionDenied: (:) [Get-CimInstance], CimException\r\n"
    "    + FullyQualifiedErrorId : HRESULT 0x80041003,"
    "Microsoft.Management.Infrastructure.CimCmdlets.GetCimInstanceCommand\r\n"
)
CIM_INVALID_NAMESPACE = (
    "Get-CimInstance : Invalid namespace \r\nAt line:1 char:1\r\n+ Get-CimInstance -Namespace ...\r\n"
    "    + CategoryInfo          : MetadataError: (:) [Get-CimInstance], CimException\r\n"
    "    + FullyQualifiedErrorId : HRESULT 0x8004100e,"
    "Microsoft.Management.Infrastructure.CimCmdlets.GetCimInstanceCommand\r\n"
)
MP_ACCESS_DENIED = (
    "Get-MpComputerStatus : Access is denied. \r\n"
    "    + CategoryInfo          : PermissionDenied: (MSFT_MpComputerStatus:ROOT\\Microsoft\\...\\"
    "MSFT_MpComputerStatus) [Get-MpComputerStatus], CimException\r\n"
    "    + FullyQualifiedErrorId : HRESULT 0x80070005,Get-MpComputerStatus\r\n"
)


def assert_remedied(finding: Finding) -> None:
    assert len(all_advice(finding)) > 20


# --- disk encryption ---------------------------------------------------------------------------


def bde(stdout: str, exit_code: int = 0) -> Finding:
    ctx = Recorded().command(BDE_C, stdout=stdout, exit_code=exit_code).context("windows")
    return disk_encryption_windows.check(ctx)


def test_bitlocker_used_space_encrypted_and_protected_passes() -> None:
    finding = bde(fixture("windows/manage-bde-status-protected.txt"))
    assert finding.status is Status.PASS
    assert finding.evidence["conversion_status"] == "Used Space Only Encrypted"
    assert finding.evidence["key_protectors"] == ["Tpm", "RecoveryPassword"]
    assert finding.evidence["printed_key_protectors"] == ["TPM", "Numerical Password"]


def test_bitlocker_suspended_protection_fails() -> None:
    finding = bde(fixture("windows/manage-bde-status-suspended.txt"))
    assert finding.status is Status.FAIL
    assert "suspended" in finding.summary
    assert finding.evidence["protection_status"] == "Protection Off"
    assert "Resume protection" in all_advice(finding)


def test_bitlocker_encryption_in_progress_fails_with_progress() -> None:
    finding = bde(fixture("windows/manage-bde-status-encrypting.txt"))
    assert finding.status is Status.FAIL
    assert "37.4%" in finding.summary
    assert_remedied(finding)


def test_bitlocker_off_fails() -> None:
    finding = bde(fixture("windows/manage-bde-status-decrypted.txt"))
    assert finding.status is Status.FAIL
    assert finding.evidence["key_protectors"] == []
    assert "Turn on BitLocker" in all_advice(finding)


def test_bitlocker_not_admin_is_unknown_naming_the_right() -> None:
    finding = bde(fixture("windows/manage-bde-access-denied.txt"), exit_code=-1)
    assert finding.status is Status.UNKNOWN
    assert "administrator" in finding.summary


def test_bitlocker_tool_missing_is_unknown() -> None:
    ctx = Recorded().command(BDE_C, exit_code=None, error="not found").context("windows")
    finding = disk_encryption_windows.check(ctx)
    assert finding.status is Status.UNKNOWN
    assert "BitLocker is not on this Windows (no manage-bde" in finding.summary
    assert_remedied(finding)


def test_bitlocker_timeout_is_error() -> None:
    ctx = Recorded().command(BDE_C, exit_code=None, error="timed out after 30 s").context("windows")
    assert disk_encryption_windows.check(ctx).status is Status.ERROR


# Real manage-bde captures in each language the fallback reads (tests/fixtures/corpus/SOURCES.md).
LOCALISED = {
    "es": (
        "corpus/windows/manage-bde-es-used-space-protected.txt",
        "FullyEncrypted",
        "On",
        ("RecoveryPassword", "Tpm"),
    ),
    "fr": (
        "corpus/windows/manage-bde-fr-used-space-protected.txt",
        "FullyEncrypted",
        "On",
        ("RecoveryPassword", "Tpm"),
    ),
    "de": ("corpus/windows/manage-bde-de-never-on.txt", "FullyDecrypted", "Off", ()),
    "en": (
        "corpus/windows/manage-bde-en-encrypting-99.txt",
        "EncryptionInProgress",
        "Off",
        ("RecoveryPassword", "Tpm"),
    ),
}


@pytest.mark.parametrize("language", sorted(LOCALISED))
def test_manage_bde_is_read_in_each_display_language(language: str) -> None:
    path, volume_status, protection, protectors = LOCALISED[language]
    volume = disk_encryption_windows.parse_manage_bde_status(fixture(path), "C:")
    assert volume is not None, language
    assert (volume.volume_status, volume.protection, volume.protectors) == (
        volume_status,
        protection,
        protectors,
    )


def test_german_percentage_with_a_decimal_comma_and_a_quoted_drive() -> None:
    volume = disk_encryption_windows.parse_manage_bde_status(
        fixture("corpus/windows/manage-bde-de-encrypting.txt"), "c:"
    )
    assert volume is not None and volume.percentage == 3.5 and volume.protectors == ("Tpm",)


@pytest.mark.parametrize("code_page", ["cp850", "cp1252"])
def test_manage_bde_read_through_the_oem_code_page_still_parses(code_page: str) -> None:
    """manage-bde writes a pipe in the console's code page; decoded as UTF-8 the accents become U+FFFD."""
    text = fixture("corpus/windows/manage-bde-fr-used-space-protected.txt")
    garbled = text.encode(code_page, errors="replace").decode("utf-8", errors="replace")
    assert "\ufffd" in garbled
    volume = disk_encryption_windows.parse_manage_bde_status(garbled, "C:")
    assert volume is not None and volume.fully_encrypted and volume.protection_on


def test_spanish_locked_data_volume_reads_as_unknown_not_off() -> None:
    """A locked volume prints "Desconocido" for its state: not a state Homeroom may turn into off."""
    text = fixture("windows/manage-bde-es-data-volume-locked.txt")
    volume = disk_encryption_windows.parse_manage_bde_status(text, "E:")
    assert volume is not None
    assert (volume.volume_status, volume.protection, volume.percentage) == ("", "Unknown", None)
    assert volume.protectors == ("Password", "RecoveryPassword")
    assert volume.printed["lock_status"] == "Bloqueado"
    assert disk_encryption_windows.decide(volume).status is Status.UNKNOWN


def test_bitlocker_in_a_language_not_in_the_table_is_unknown() -> None:
    """Hand-written: the English capture with its labels in Italian, which the fallback does not read."""
    italian = fixture("windows/manage-bde-status-protected.txt")
    for english, other in (
        ("Conversion Status", "Stato conversione"),
        ("Protection Status", "Stato protezione"),
    ):
        italian = italian.replace(english, other)
    finding = bde(italian)
    assert finding.status is Status.UNKNOWN
    assert "English, Spanish, French, German" in finding.summary


def test_a_reader_without_rights_is_unknown_whatever_language_manage_bde_refuses_in() -> None:
    """The PowerShell sources say "refused" by HRESULT in every language; manage-bde's words (here a
    hand-written German refusal) need not be read for the verdict."""
    ctx = (
        Recorded()
        .command(disk_encryption_windows.volume_command("C:"), stderr=MP_ACCESS_DENIED, exit_code=1)
        .cim(
            disk_encryption_windows.ENCRYPTION_NAMESPACE,
            disk_encryption_windows.ENCRYPTABLE_VOLUME,
            stderr=CIM_ACCESS_DENIED,
            exit_code=1,
        )
        .command(BDE_C, stdout="FEHLER: Der Zugriff wurde verweigert.\r\n", exit_code=-1)
        .context("windows")
    )
    finding = disk_encryption_windows.check(ctx)
    assert finding.status is Status.UNKNOWN and "administrator rights" in finding.summary


def test_every_manage_bde_table_entry_has_its_own_skeleton() -> None:
    """Folding drops accents; two entries that fold alike would make one language read as another."""
    from agent.checks import manage_bde_languages as languages

    for table in (languages.CONVERSIONS, languages.PROTECTION, languages.PROTECTORS):
        folded = [languages.skeleton(text) for entries in table.values() for text, _ in entries]
        assert len(folded) == len(set(folded)), table
    labels = [languages.skeleton(t) for by in languages.LABELS.values() for ts in by.values() for t in ts]
    assert len(labels) == len(set(labels))
    for table in (languages.PROTECTION,):
        keys = [languages.skeleton(text) for entries in table.values() for text, _ in entries]
        assert not any(a != b and b.startswith(a) for a in keys for b in keys), "a prefix would misread"


def test_bitlocker_asks_for_the_system_drive_from_the_registry() -> None:
    text = fixture("windows/manage-bde-status-all-volumes.txt").replace("Volume C:", "Volume E:")
    ctx = (
        Recorded()
        .registry(WINDOWS_NT_KEY, values={"SystemRoot": "E:\\WINDOWS"})
        .command(["manage-bde", "-status", "E:"], stdout=text)
        .context("windows")
    )
    finding = disk_encryption_windows.check(ctx)
    assert finding.status is Status.PASS
    assert finding.evidence["drive"] == "E:"


def test_parser_picks_the_asked_volume_among_several() -> None:
    text = fixture("windows/manage-bde-status-all-volumes.txt")
    c = disk_encryption_windows.parse_manage_bde_status(text, "C:")
    d = disk_encryption_windows.parse_manage_bde_status(text, "D:")
    assert c is not None and c.protection_on and c.key_protectors == ("RecoveryPassword", "TpmPin")
    assert d is not None and not d.protection_on and d.key_protectors == ()
    assert disk_encryption_windows.parse_manage_bde_status(text, "F:") is None


def _encryptable_volume(protection: int, conversion: int | None) -> Finding:
    """Win32_EncryptableVolume with the property set a real Get-WmiObject capture shows (SOURCES.md)."""
    item = {
        "ConversionStatus": conversion,
        "DeviceID": "\\\\?\\Volume{90dc9ab6-791d-46f6-ade8-e6d3201baf52}\\",
        "DriveLetter": "C:",
        "EncryptionMethod": 6 if conversion else 0,
        "IsVolumeInitializedForProtection": bool(conversion),
        "PersistentVolumeID": "",
        "ProtectionStatus": protection,
        "VolumeType": 0,
    }
    ctx = (
        Recorded()
        .command(disk_encryption_windows.volume_command("C:"), stderr="not recognized", exit_code=1)
        .cim(
            disk_encryption_windows.ENCRYPTION_NAMESPACE,
            disk_encryption_windows.ENCRYPTABLE_VOLUME,
            stdout=json.dumps([item]),
        )
        .command(BDE_C, exit_code=None, error="timed out after 30 s")
        .context("windows")
    )
    return disk_encryption_windows.check(ctx)


def test_encryptable_volume_protected_but_still_encrypting_is_not_a_pass() -> None:
    """ProtectionStatus 1 while ConversionStatus 2: the German capture shows manage-bde in that state too."""
    finding = _encryptable_volume(protection=1, conversion=2)
    assert finding.status is Status.FAIL and "still encrypting" in finding.summary


def test_encryptable_volume_conversion_status_tells_never_on_from_suspended() -> None:
    never = _encryptable_volume(protection=0, conversion=0)
    suspended = _encryptable_volume(protection=0, conversion=1)
    assert never.status is suspended.status is Status.FAIL
    assert "not encrypted" in never.summary and "suspended" not in never.summary
    assert "in the clear" in suspended.summary and "not encrypted" not in suspended.summary
    assert _encryptable_volume(protection=1, conversion=1).status is Status.PASS


def test_encryptable_volume_without_conversion_status_keeps_the_old_reading() -> None:
    assert _encryptable_volume(protection=1, conversion=None).status is Status.PASS


# --- firewall ----------------------------------------------------------------------------------


def firewall(stdout: str, stderr: str = "", exit_code: int = 0) -> Finding:
    ctx = (
        Recorded()
        .command(firewall_windows.PROFILE_COMMAND, stdout=stdout, stderr=stderr, exit_code=exit_code)
        .context("windows")
    )
    return firewall_windows.check(ctx)


def profiles(domain: Any, private: Any, public: Any) -> str:
    rows = [{"Name": "Domain", "Enabled": domain}, {"Name": "Private", "Enabled": private}]
    rows.append({"Name": "Public", "Enabled": public})
    return json.dumps(rows, separators=(",", ":"))


def test_firewall_all_profiles_on_passes() -> None:
    finding = firewall(profiles("True", "True", "True"))
    assert finding.status is Status.PASS
    assert finding.evidence["profiles"] == {"Domain": True, "Private": True, "Public": True}


def test_firewall_on_for_domain_but_off_for_public_fails_naming_public() -> None:
    finding = firewall(profiles("True", "True", "False"))
    assert finding.status is Status.FAIL
    assert "Public" in finding.summary and "Domain" not in finding.summary
    assert "Public network" in all_advice(finding)
    assert finding.evidence["profiles"]["Public"] is False


def test_firewall_accepts_enum_numbers_as_powershell_51_writes_them() -> None:
    assert firewall(profiles(1, 1, 0)).status is Status.FAIL
    assert firewall(profiles(1, 1, 1)).status is Status.PASS


def test_firewall_missing_profile_is_unknown() -> None:
    only_two = json.dumps([{"Name": "Domain", "Enabled": "True"}, {"Name": "Private", "Enabled": "True"}])
    finding = firewall(only_two)
    assert finding.status is Status.UNKNOWN
    assert "Public" in finding.summary


def test_firewall_not_configured_is_unknown() -> None:
    assert firewall(profiles("True", "NotConfigured", "True")).status is Status.UNKNOWN


def test_firewall_access_denied_is_unknown() -> None:
    finding = firewall(
        "", stderr=CIM_ACCESS_DENIED.replace("Get-CimInstance", "Get-NetFirewallProfile"), exit_code=1
    )
    assert finding.status is Status.UNKNOWN


def test_firewall_garbage_is_error() -> None:
    assert firewall("not json").status is Status.ERROR


# --- antivirus ---------------------------------------------------------------------------------


def antivirus(
    center: str | None = None,
    center_stderr: str = "",
    defender: str | None = None,
    defender_stderr: str = "",
    requirements: Requirements | None = None,
) -> Finding:
    recorded = Recorded()
    if center is not None or center_stderr:
        recorded.cim(
            SECURITY_CENTER,
            "AntiVirusProduct",
            stdout=center or "",
            stderr=center_stderr,
            exit_code=1 if center_stderr else 0,
        )
    if defender is not None or defender_stderr:
        recorded.command(
            antivirus_windows.DEFENDER_COMMAND,
            stdout=defender or "",
            stderr=defender_stderr,
            exit_code=1 if defender_stderr else 0,
        )
    return antivirus_windows.check(recorded.context("windows", requirements=requirements))


@pytest.mark.parametrize(
    ("product_state", "state", "microsoft", "up_to_date"),
    [
        (397568, "on", True, True),  # 0x061100 Defender on
        (393472, "off", True, True),  # 0x060100 Defender off
        (397584, "on", True, False),  # 0x061110 Defender on, out of date
        (266240, "on", False, True),  # 0x041000 third-party on
        (266256, "on", False, False),  # 0x041010 third-party, out of date
        (262144, "off", False, True),  # 0x040000 third-party off
        (270336, "snoozed", False, True),  # 0x042000
        (274432, "expired", False, True),  # 0x043000
    ],
)
def test_product_state_decoding(product_state: int, state: str, microsoft: bool, up_to_date: bool) -> None:
    product = antivirus_windows.decode_product("x", product_state)
    assert (product.state, product.microsoft, product.signatures_up_to_date) == (state, microsoft, up_to_date)


def test_defender_fresh_passes() -> None:
    finding = antivirus(
        fixture("windows/securitycenter2-defender-on.json"),
        defender=fixture("windows/get-mpcomputerstatus-fresh.json"),
    )
    assert finding.status is Status.PASS
    assert finding.evidence["defender"]["signature_age_days"] == 0


def test_defender_signatures_30_days_old_fails() -> None:
    finding = antivirus(
        fixture("windows/securitycenter2-defender-on.json"),
        defender=fixture("windows/get-mpcomputerstatus-30-days.json"),
    )
    assert finding.status is Status.FAIL
    assert "30 days" in finding.summary
    assert finding.evidence["max_signature_age_days"] == 7
    assert "Check for updates" in all_advice(finding)


def test_signature_age_threshold_comes_from_requirements() -> None:
    finding = antivirus(
        fixture("windows/securitycenter2-defender-on.json"),
        defender=fixture("windows/get-mpcomputerstatus-30-days.json"),
        requirements=Requirements(antivirus_max_signature_age_days=45),
    )
    assert finding.status is Status.PASS


def test_defender_real_time_off_fails() -> None:
    finding = antivirus(
        fixture("windows/securitycenter2-defender-on.json"),
        defender=fixture("windows/get-mpcomputerstatus-realtime-off.json"),
    )
    assert finding.status is Status.FAIL
    assert "Real-time protection" in all_advice(finding)


def test_third_party_active_in_security_center_passes() -> None:
    finding = antivirus(fixture("windows/securitycenter2-thirdparty-on.json"))
    assert finding.status is Status.PASS
    assert "Sophos Anti-Virus" in finding.summary
    states = {p["name"]: p["state"] for p in finding.evidence["security_center"]}
    assert states == {"Windows Defender": "off", "Sophos Anti-Virus": "on"}


def test_third_party_with_stale_signatures_fails() -> None:
    finding = antivirus(fixture("windows/securitycenter2-thirdparty-stale.json"))
    assert finding.status is Status.FAIL
    assert "Sophos Anti-Virus" in all_advice(finding)


def test_everything_off_fails() -> None:
    off = json.loads(fixture("windows/securitycenter2-defender-on.json"))
    off["productState"] = 393472
    finding = antivirus(json.dumps(off))
    assert finding.status is Status.FAIL
    assert "Windows Defender is off" in finding.summary


def test_windows_server_without_security_center_falls_back_to_defender() -> None:
    finding = antivirus(
        center_stderr=CIM_INVALID_NAMESPACE, defender=fixture("windows/get-mpcomputerstatus-fresh.json")
    )
    assert finding.status is Status.PASS
    assert "Windows Server" in finding.evidence["security_center"]


def test_windows_server_without_security_center_or_defender_is_unknown() -> None:
    not_recognized = (
        "Get-MpComputerStatus : The term 'Get-MpComputerStatus' is not recognized as the name of a cmdlet, "
        "function, script file, or operable program.\r\n"
    )
    finding = antivirus(center_stderr=CIM_INVALID_NAMESPACE, defender_stderr=not_recognized)
    assert finding.status is Status.UNKNOWN
    assert_remedied(finding)


def test_access_denied_everywhere_is_unknown() -> None:
    finding = antivirus(center_stderr=CIM_ACCESS_DENIED, defender_stderr=MP_ACCESS_DENIED)
    assert finding.status is Status.UNKNOWN
    assert "administrator" in finding.summary


def test_defender_date_forms() -> None:
    fixed = antivirus_windows.parse_json_date("/Date(1795262400000)/")
    wrapped = antivirus_windows.parse_json_date({"value": "/Date(1795262400000)/", "DateTime": "..."})
    assert fixed is not None and fixed == wrapped and fixed.year == 2026


# --- power-on password -------------------------------------------------------------------------


def power_on(
    maker: str = "hp",
    firmware: tuple[str, str, str] | None = None,
    firmware_stderr: str = "",
    autologon: str | None = "0",
    bde_text: str | None = None,
    is_admin: bool = True,
) -> Finding:
    recorded = Recorded().cim(
        "root\\CIMV2", "Win32_ComputerSystem", stdout=fixture(f"windows/win32-computersystem-{maker}.json")
    )
    if firmware is not None:
        namespace, class_name, text = firmware
        recorded.cim(
            namespace, class_name, stdout=text, stderr=firmware_stderr, exit_code=1 if firmware_stderr else 0
        )
    if autologon is not None:
        recorded.registry(
            power_on_password_windows.WINLOGON_KEY,
            values={"AutoAdminLogon": autologon, "Shell": "explorer.exe"},
        )
    if bde_text is not None:
        recorded.command(BDE_C, stdout=bde_text)
    return power_on_password_windows.check(recorded.context("windows", is_admin=is_admin))


HP_CLASS = ("root\\HP\\InstrumentedBIOS", "HP_BIOSPassword")
TPM_ONLY = fixture("windows/manage-bde-status-protected.txt")
TPM_PIN = fixture("windows/manage-bde-status-tpm-pin.txt")


def test_hp_power_on_password_set_passes() -> None:
    finding = power_on(
        firmware=(*HP_CLASS, fixture("windows/hp-biospassword-poweron-set.json")), bde_text=TPM_ONLY
    )
    assert finding.status is Status.PASS
    assert "HP BIOS" in finding.summary


def test_dell_system_password_passes() -> None:
    text = fixture("windows/dell-passwordobject-system-set.json")
    finding = power_on("dell", firmware=("root\\dcim\\sysman\\wmisecurity", "PasswordObject", text))
    assert finding.status is Status.PASS


def test_lenovo_supervisor_only_with_tpm_only_bitlocker_fails() -> None:
    text = fixture("windows/lenovo-biospasswordsettings-supervisor-only.json")
    finding = power_on(
        "lenovo", firmware=("root\\WMI", "Lenovo_BiosPasswordSettings", text), bde_text=TPM_ONLY
    )
    assert finding.status is Status.FAIL
    assert_remedied(finding)


def test_lenovo_power_on_bit_passes() -> None:
    text = fixture("windows/lenovo-biospasswordsettings-poweron.json")
    assert (
        power_on("lenovo", firmware=("root\\WMI", "Lenovo_BiosPasswordSettings", text)).status is Status.PASS
    )


def test_bitlocker_tpm_and_pin_passes_on_a_maker_without_wmi() -> None:
    finding = power_on("acer", bde_text=TPM_PIN)
    assert finding.status is Status.PASS
    assert "BitLocker" in finding.summary


def test_autologon_fails_even_with_a_pin() -> None:
    finding = power_on("acer", autologon="1", bde_text=TPM_PIN)
    assert finding.status is Status.FAIL
    assert "automatically" in finding.summary
    assert finding.evidence["automatic_sign_in"] is True
    assert_remedied(finding)


def test_nothing_visible_is_unknown_with_the_reason() -> None:
    finding = power_on("acer", bde_text=TPM_ONLY)
    assert finding.status is Status.UNKNOWN
    assert "acer exposes no firmware password" in finding.summary


def test_hp_setup_password_only_and_tpm_only_fails() -> None:
    text = fixture("windows/hp-biospassword-setup-only.json")
    finding = power_on(firmware=(*HP_CLASS, text), bde_text=TPM_ONLY)
    assert finding.status is Status.FAIL


def test_vendor_class_access_denied_is_unknown() -> None:
    finding = power_on(
        firmware=(*HP_CLASS, ""), firmware_stderr=CIM_ACCESS_DENIED, bde_text=TPM_ONLY, is_admin=False
    )
    assert finding.status is Status.UNKNOWN
    assert "administrator rights" in finding.summary


def test_unreadable_winlogon_with_a_secret_is_unknown() -> None:
    finding = power_on(
        firmware=(*HP_CLASS, fixture("windows/hp-biospassword-poweron-set.json")), autologon=None
    )
    assert finding.status is Status.UNKNOWN


# --- screen lock -------------------------------------------------------------------------------


def screen_lock(
    user: dict[str, Any] | None = None,
    policy: dict[str, Any] | None = None,
    machine: dict[str, Any] | None = None,
    requirements: Requirements | None = None,
) -> Finding:
    recorded = Recorded()
    recorded.registry(screen_lock_windows.USER_DESKTOP_KEY, values=user or {})
    for path, values in (
        (screen_lock_windows.POLICY_DESKTOP_KEY, policy),
        (screen_lock_windows.MACHINE_POLICY_KEY, machine),
    ):
        if values is None:
            recorded.registry(path, error="not found")
        else:
            recorded.registry(path, values=values)
    return screen_lock_windows.check(recorded.context("windows", requirements=requirements))


SECURE_10_MIN = {
    "ScreenSaveActive": "1",
    "ScreenSaverIsSecure": "1",
    "ScreenSaveTimeOut": "600",
    "SCRNSAVE.EXE": "C:\\Windows\\system32\\scrnsave.scr",
    "WallPaper": "C:\\Windows\\web\\wallpaper\\Windows\\img0.jpg",
}


def test_secure_screen_saver_within_limit_passes() -> None:
    finding = screen_lock(SECURE_10_MIN)
    assert finding.status is Status.PASS
    assert finding.evidence["lock_after_seconds"] == 600


def test_screen_saver_not_secure_fails() -> None:
    finding = screen_lock({**SECURE_10_MIN, "ScreenSaverIsSecure": "0"})
    assert finding.status is Status.FAIL
    assert "password" in finding.summary
    assert "On resume, display logon screen" in all_advice(finding)


def test_registry_value_names_are_read_whatever_their_spelling() -> None:
    """`reg add ... /v ScreenSaveTimeout` (a real capture, corpus SOURCES.md) makes a value Windows reads."""
    spelled = {k: v for k, v in SECURE_10_MIN.items() if k != "ScreenSaveTimeOut"} | {
        "ScreenSaveTimeout": "600"
    }
    finding = screen_lock({k.lower() if k.startswith("ScreenSaveA") else k: v for k, v in spelled.items()})
    assert finding.status is Status.PASS
    assert finding.evidence["lock_after_seconds"] == 600


def test_autologin_value_name_in_another_spelling_is_still_seen() -> None:
    key = RegistryKey("HKLM\\x", values={"autoadminlogon": "1"})
    assert power_on_password_windows.autologin_on(key)


def test_no_timeout_fails() -> None:
    finding = screen_lock({"ScreenSaveActive": "1", "ScreenSaverIsSecure": "1", "ScreenSaveTimeOut": "0"})
    assert finding.status is Status.FAIL
    assert_remedied(finding)


def test_screen_saver_none_chosen_fails() -> None:
    values = {key: value for key, value in SECURE_10_MIN.items() if key != "SCRNSAVE.EXE"}
    finding = screen_lock(values)
    assert finding.status is Status.FAIL
    assert "no screen saver is chosen" in finding.summary


def test_too_long_timeout_fails_against_requirements() -> None:
    finding = screen_lock({**SECURE_10_MIN, "ScreenSaveTimeOut": "1800"})
    assert finding.status is Status.FAIL
    assert "30 minutes" in finding.summary
    assert "15 minutes" in all_advice(finding)
    assert (
        screen_lock(
            {**SECURE_10_MIN, "ScreenSaveTimeOut": "1800"},
            requirements=Requirements(screen_lock_max_idle_minutes=30),
        ).status
        is Status.PASS
    )


def test_policy_values_take_precedence_over_user_values() -> None:
    finding = screen_lock({**SECURE_10_MIN, "ScreenSaverIsSecure": "0"}, policy={"ScreenSaverIsSecure": "1"})
    assert finding.status is Status.PASS
    longer = screen_lock(SECURE_10_MIN, policy={"ScreenSaveTimeOut": "3600"})
    assert longer.status is Status.FAIL


def test_machine_inactivity_limit_locks_without_a_screen_saver() -> None:
    finding = screen_lock({"ScreenSaveActive": "0"}, machine={"InactivityTimeoutSecs": 900})
    assert finding.status is Status.PASS
    assert finding.evidence["inactivity_limit_seconds"] == 900


def test_unreadable_user_key_is_unknown() -> None:
    ctx = (
        Recorded()
        .registry(screen_lock_windows.USER_DESKTOP_KEY, error="permission denied")
        .registry(screen_lock_windows.POLICY_DESKTOP_KEY, error="not found")
        .registry(screen_lock_windows.MACHINE_POLICY_KEY, error="not found")
        .context("windows")
    )
    finding = screen_lock_windows.check(ctx)
    assert finding.status is Status.UNKNOWN
    assert "permission denied" in finding.summary


# --- software ----------------------------------------------------------------------------------

HKLM64, HKLM32 = software_windows.MACHINE_ROOTS
SID = "S-1-5-21-3623811015-3361044348-30300820-1001"
HKCU = f"HKU\\{SID}\\{software_windows.UNINSTALL}"  # the signed-in student's own hive


def software(requirements: Requirements, hkcu_error: str | None = None) -> Finding:
    recorded = (
        Recorded()
        .registry("HKU", subkeys=[".DEFAULT", "S-1-5-18", SID, f"{SID}_Classes"])
        .registry(software_windows.PROFILE_LIST, subkeys=["S-1-5-18", SID])
        .registry(HKLM64, subkeys=["{AC76BA86-7AD7-1033-7B44-AC0F074E4100}", "KB5031356", "Hidden", "Empty"])
        .registry(
            f"{HKLM64}\\{{AC76BA86-7AD7-1033-7B44-AC0F074E4100}}",
            values={
                "DisplayName": "Adobe Acrobat (64-bit)",
                "DisplayVersion": "23.006.20360",
                "Publisher": "Adobe",
            },
        )
        .registry(
            f"{HKLM64}\\KB5031356",
            values={"DisplayName": "Security Update for Office", "ParentKeyName": "OFFICE16.PROPLUS"},
        )
        .registry(f"{HKLM64}\\Hidden", values={"DisplayName": "Microsoft Edge Update", "SystemComponent": 1})
        .registry(f"{HKLM64}\\Empty", values={"UninstallString": "C:\\x\\uninst.exe"})
        .registry(HKLM32, subkeys=["7-Zip"])
        .registry(
            f"{HKLM32}\\7-Zip",
            values={"DisplayName": "7-Zip 23.01", "DisplayVersion": "23.01", "Publisher": "Igor Pavlov"},
        )
    )
    if hkcu_error:
        recorded.registry(HKCU, error=hkcu_error)
    else:
        recorded.registry(HKCU, subkeys=["Steam"]).registry(
            f"{HKCU}\\Steam",
            values={"DisplayName": "Steam", "Publisher": "Valve Corporation", "DisplayVersion": "2.10.91.91"},
        )
    return software_windows.check(recorded.context("windows", requirements=requirements))


def test_inventory_skips_updates_system_components_and_nameless_entries() -> None:
    finding = software(Requirements(software_mode="blocklist"))
    assert finding.status is Status.PASS
    assert finding.evidence["apps_judged"] == 3
    assert finding.evidence["items_seen"] == 5  # the update and the component are inventory only
    assert finding.evidence["inventory_sources"] == [HKLM64, HKLM32, HKCU]


def test_blocked_per_user_program_fails_with_its_registry_path() -> None:
    finding = software(Requirements(software_mode="blocklist", software_blocked=(SoftwareRule("Steam*"),)))
    assert finding.status is Status.FAIL
    [item] = finding.evidence["unapproved"]
    assert (
        item["name"] == "Steam"
        and item["source"] == f"{HKCU}\\Steam"
        and item["publisher"] == "Valve Corporation"
    )
    assert "Settings → Apps → Installed apps" in all_advice(finding)


def test_allowlist_flags_what_is_not_approved() -> None:
    approved = (SoftwareRule("Adobe Acrobat*", "Adobe*"), SoftwareRule("7-Zip*"))
    finding = software(
        Requirements(software_mode="allowlist", software_baseline=False, software_approved=approved)
    )
    assert finding.status is Status.FAIL
    assert [item["name"] for item in finding.evidence["unapproved"]] == ["Steam"]


def test_missing_per_user_key_is_read_as_empty() -> None:
    finding = software(Requirements(software_mode="blocklist"), hkcu_error="not found")
    assert finding.status is Status.PASS
    assert finding.evidence["apps_judged"] == 2
    assert HKCU in finding.evidence["inventory_sources"]


def test_unreadable_root_is_a_problem_not_a_crash() -> None:
    finding = software(Requirements(software_mode="blocklist"), hkcu_error="permission denied")
    assert finding.status is Status.PASS
    assert finding.evidence["problems"] == [f"{HKCU}: permission denied"]


def test_no_inventory_at_all_is_error() -> None:
    ctx = Recorded().context("windows", requirements=Requirements(software_mode="blocklist"))
    assert software_windows.check(ctx).status is Status.ERROR
