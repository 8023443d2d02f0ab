"""Device identity against recorded outputs of the real tools, and live against this machine.

Sources of the recorded formats (details in tests/fixtures/identity/SOURCES.md):
- Windows: `Get-CimInstance ... | ConvertTo-Json -Depth 4 -Compress` of Win32_BIOS,
  Win32_ComputerSystemProduct and Win32_ComputerSystem: property names from Microsoft's class
  references, JSON shape as Windows PowerShell 5.1 writes a CIM instance; the PowerShell error
  record Get-CimInstance prints when WMI answers "Access denied" (HRESULT 0x80041003); MachineGuid
  as a REG_SZ under HKLM\\SOFTWARE\\Microsoft\\Cryptography.
- macOS: `ioreg -rd1 -c IOPlatformExpertDevice` in ioreg's text format, and
  `system_profiler SPHardwareDataType -json`.
- Linux: the kernel's DMI sysfs attributes (`/sys/class/dmi/id/*`: value and newline; serials and product_uuid
  mode 0400, the UUID printed lower-case) and machine-id(5) (32 lower-case hex digits and a newline). Written
  inline below to match them exactly.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
from pathlib import Path

import pytest

from agent.identity import (
    DeviceIdentity,
    clean_text,
    clean_uuid,
    local_macs,
    normalise_mac,
    read_identity,
    usable_macs,
)
from agent.identity import linux as identity_linux
from agent.identity import macos as identity_macos
from agent.identity import windows as identity_windows
from agent.identity.linux import HOMEROOM_APP_ID, app_specific_machine_id
from agent.probes import LiveProbes, Probes
from agent.probes.facts import OsName, PlatformFacts
from tests.helpers.recorded import Recorded, fixture

MAC = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$")


def facts(os_name: OsName) -> PlatformFacts:
    return PlatformFacts(
        os=os_name,
        os_version={"windows": "10.0.22631", "macos": "14.6.1", "linux": "Ubuntu 24.04.1 LTS"}[os_name],
        kernel="",
        machine="x86_64",
        hostname="student-lt042",
        user="SYSTEM",
        is_admin=True,
    )


# --- placeholders and normalisation ----------------------------------------------------------


@pytest.mark.parametrize(
    "placeholder",
    [
        "To be filled by O.E.M.",
        "To Be Filled By O.E.M.",
        "Default string",
        "System Serial Number",
        "Not Specified",
        "None",
        "0",
        "123456789",
        "0000000000",
        "",
        "   ",
        "System manufacturer",
    ],
)
def test_vendor_placeholders_are_dropped_with_a_reason(placeholder: str) -> None:
    cleaned = clean_text(placeholder + "\n")
    assert cleaned.value is None
    assert cleaned.why


def test_real_serials_are_kept_trimmed() -> None:
    assert clean_text("7HZQ3X3\n").value == "7HZQ3X3"
    assert clean_text("PF2ABCDE  ").value == "PF2ABCDE"
    assert clean_text("VMware-56 4d 1a 2b 3c 4d 5e 6f-70 81 92 a3 b4 c5 d6 e7").value is not None


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("4c4c4544-0048-5a10-8051-b7c04f335833\n", "4C4C4544-0048-5A10-8051-B7C04F335833"),
        ("{6B9D14E2-3C71-5F08-9A4E-2D6F81C0B357}", "6B9D14E2-3C71-5F08-9A4E-2D6F81C0B357"),
        ("6b9d14e23c715f089a4e2d6f81c0b357", "6B9D14E2-3C71-5F08-9A4E-2D6F81C0B357"),
    ],
)
def test_uuids_become_upper_case_canonical(raw: str, expected: str) -> None:
    assert clean_uuid(raw).value == expected


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("00000000-0000-0000-0000-000000000000", "all zeros"),
        ("FFFFFFFF-FFFF-FFFF-FFFF-FFFFFFFFFFFF", "all FF"),
        ("03000200-0400-0500-0006-000700080009", "AMI"),
        ("Not Settable", "not a UUID"),
        ("", "empty"),
    ],
)
def test_placeholder_uuids_are_dropped_with_a_reason(raw: str, reason: str) -> None:
    cleaned = clean_uuid(raw)
    assert cleaned.value is None
    assert reason in cleaned.why


def test_macs_are_normalised_filtered_deduplicated_and_sorted() -> None:
    assert normalise_mac("F0-2F-74-1A-2B-3C") == "f0:2f:74:1a:2b:3c"
    assert normalise_mac("f02f.741a.2b3c") == "f0:2f:74:1a:2b:3c"
    assert normalise_mac("00:00:00:00:00:00:00:e0") is None  # a 64-bit (FireWire) address
    macs = usable_macs(
        [
            "F0-2F-74-1A-2B-3C",  # Wi-Fi card, as Windows prints it
            "f0:2f:74:1a:2b:3c",  # the same card again
            "3c:22:fb:10:20:30",  # Ethernet
            "00:00:00:00:00:00",  # loopback
            "02:42:ac:11:00:02",  # Docker bridge: locally administered
            "ce:03:04:3f:0d:82",  # private Wi-Fi address: locally administered
            "00:50:56:c0:00:08",  # VMware host adapter
            "0a:00:27:00:00:11",  # VirtualBox host-only adapter
            "00:15:5d:01:02:03",  # Hyper-V vEthernet
            "01:00:5e:00:00:fb",  # multicast
            "",
        ]
    )
    assert macs == ("3c:22:fb:10:20:30", "f0:2f:74:1a:2b:3c")


def test_local_macs_live_are_well_formed_without_the_zero_address() -> None:
    found = local_macs()
    assert found == sorted(set(found))
    assert all(MAC.match(mac) for mac in found)
    assert "00:00:00:00:00:00" not in found
    assert set(usable_macs(found)) <= set(found)


# --- Windows ------------------------------------------------------------------------------------

CIMV2 = identity_windows.CIMV2
GUID = "8f6b3c2a-4d1e-4f7a-9b0c-5e2d1a3f4b6c"
# What Get-CimInstance prints on stderr when WMI refuses the caller (PowerShell 5.1 error record).
ACCESS_DENIED = (
    "Get-CimInstance : Access denied \r\n"
    "At line:1 char:1\r\n"
    "+ Get-CimInstance -Namespace 'root\\CIMV2' -ClassName 'Win32_BIOS' -ErrorAction Stop | ...\r\n"
    "+ ~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~\r\n"
    "    + CategoryInfo          : PermissionDenied: (root\\CIMV2:Win32_BIOS:String) [Get-CimInstance], "
    "CimException\r\n"
    "    + FullyQualifiedErrorId : HRESULT 0x80041003,Microsoft.Management.Infrastructure.CimCmdlets."
    "GetCimInstanceCommand\r\n"
)


def windows(maker: str, guid: str | None = GUID) -> Recorded:
    recorded = (
        Recorded()
        .cim(CIMV2, "Win32_BIOS", stdout=fixture(f"identity/win32-bios-{maker}.json"))
        .cim(
            CIMV2,
            "Win32_ComputerSystemProduct",
            stdout=fixture(f"identity/win32-computersystemproduct-{maker}.json"),
        )
        .cim(CIMV2, "Win32_ComputerSystem", stdout=fixture(f"identity/win32-computersystem-{maker}.json"))
    )
    if guid is not None:
        recorded.registry(identity_windows.CRYPTOGRAPHY_KEY, values={"MachineGuid": guid})
    return recorded


def test_windows_dell_laptop_is_fully_identified() -> None:
    device = read_identity(
        windows("dell").probes(), facts("windows"), ["A4-BB-6D-10-20-30", "00-15-5D-00-01-02"]
    )
    assert device.serial == "7HZQ3X3"
    assert device.hardware_uuid == "4C4C4544-0048-5A10-8051-B7C04F335833"
    assert (device.manufacturer, device.model) == ("Dell Inc.", "Latitude 3440")
    assert device.machine_id == GUID
    assert device.macs == ("a4:bb:6d:10:20:30",)
    assert (device.os, device.os_version, device.hostname) == ("windows", "10.0.22631", "student-lt042")
    assert device.unreadable == {}


def test_windows_unconfigured_ami_board_has_no_serial_uuid_or_model() -> None:
    device = read_identity(windows("oem").probes(), facts("windows"), [])
    assert device.serial is None and device.hardware_uuid is None
    assert device.manufacturer is None and device.model is None
    assert "Win32_BIOS.SerialNumber holds the placeholder 'Default string'" in device.unreadable["serial"]
    assert "Win32_ComputerSystemProduct.IdentifyingNumber" in device.unreadable["serial"]
    assert "AMI" in device.unreadable["hardware_uuid"]
    assert "To be filled by O.E.M." in device.unreadable["model"]
    assert device.machine_id == GUID


def test_windows_blank_bios_serial_falls_back_to_the_product_identifying_number() -> None:
    bios = json.loads(fixture("identity/win32-bios-dell.json"))
    bios["SerialNumber"] = None
    recorded = windows("dell").cim(CIMV2, "Win32_BIOS", stdout=json.dumps(bios, separators=(",", ":")))
    assert identity_windows.read_hardware(recorded.probes()).serial == "7HZQ3X3"


def test_windows_access_denied_is_unreadable_with_the_right_named() -> None:
    recorded = windows("dell").cim(CIMV2, "Win32_BIOS", stderr=ACCESS_DENIED, exit_code=1)
    recorded.cim(CIMV2, "Win32_ComputerSystemProduct", stderr=ACCESS_DENIED, exit_code=1)
    hardware = identity_windows.read_hardware(recorded.probes())
    assert hardware.serial is None and hardware.hardware_uuid is None
    assert "access denied" in hardware.unreadable["serial"]
    assert "SYSTEM" in hardware.unreadable["hardware_uuid"]
    assert hardware.model == "Latitude 3440"  # Win32_ComputerSystem still answered


def test_windows_timeout_and_missing_machine_guid_say_how() -> None:
    recorded = windows("dell", guid=None).cim(
        CIMV2, "Win32_ComputerSystemProduct", exit_code=None, error="timed out after 30 s"
    )
    recorded.registry(identity_windows.CRYPTOGRAPHY_KEY, values={"MachineGuid": ""})
    hardware = identity_windows.read_hardware(recorded.probes())
    assert hardware.serial == "7HZQ3X3"
    assert "timed out after 30 s" in (hardware.unreadable["hardware_uuid"])
    assert hardware.machine_id is None
    assert "MachineGuid" in hardware.unreadable["machine_id"]


def test_windows_machine_guid_registry_refusal() -> None:
    recorded = windows("dell", guid=None)
    recorded.registry(identity_windows.CRYPTOGRAPHY_KEY, error="permission denied")
    hardware = identity_windows.read_hardware(recorded.probes())
    assert "refused" in hardware.unreadable["machine_id"]


# --- macOS --------------------------------------------------------------------------------------

IOREG = identity_macos.IOREG_PLATFORM
PROFILER = identity_macos.SYSTEM_PROFILER_HARDWARE


def test_intel_mac_from_ioreg_alone() -> None:
    # No system_profiler recorded: asking it would make the serial "not recorded".
    probes = Recorded().command(IOREG, fixture("identity/ioreg-platform-intel.txt")).probes()
    device = read_identity(probes, facts("macos"), ["3c:22:fb:10:20:30"])
    assert device.serial == "C02XY0ABMD6M"
    assert device.hardware_uuid == "6B9D14E2-3C71-5F08-9A4E-2D6F81C0B357"
    assert (device.manufacturer, device.model) == ("Apple Inc.", "MacBookPro16,1")
    assert device.machine_id is None
    assert set(device.unreadable) == {"machine_id"}


def test_apple_silicon_model_comes_from_the_model_data_not_compatible() -> None:
    probes = Recorded().command(IOREG, fixture("identity/ioreg-platform-apple-silicon.txt")).probes()
    hardware = identity_macos.read_hardware(probes)
    assert (hardware.serial, hardware.model) == ("L2X7QW4K9P", "Mac14,2")
    assert hardware.hardware_uuid == "A1F3C5E7-92B4-5D60-8E1A-3C5B7D9F0E24"


def test_ioreg_data_values_in_hex_are_decoded() -> None:
    assert identity_macos.ioreg_value('<"J413AP","Mac14,2","AppleARM">') == "J413AP"
    assert identity_macos.ioreg_value("<4d6163426f6f6b50726f31362c3100>") == "MacBookPro16,1"
    assert identity_macos.ioreg_value("<02000000>") is None
    assert identity_macos.parse_ioreg(fixture("identity/ioreg-platform-intel.txt"))["board-id"] == (
        "Mac-E1008331FDC96864"
    )


def test_system_profiler_fills_in_when_ioreg_fails() -> None:
    probes = (
        Recorded()
        .command(IOREG, exit_code=None, error="timed out after 15 s")
        .command(PROFILER, fixture("identity/system-profiler-hardware.json"))
        .probes()
    )
    hardware = identity_macos.read_hardware(probes)
    assert hardware.serial == "L2X7QW4K9P"
    assert hardware.hardware_uuid == "A1F3C5E7-92B4-5D60-8E1A-3C5B7D9F0E24"
    assert hardware.model == "Mac14,2"
    assert hardware.manufacturer is None
    assert "timed out" in hardware.unreadable["manufacturer"]


def test_mac_with_blank_serial_in_both_tools_is_unreadable() -> None:
    ioreg = fixture("identity/ioreg-platform-intel.txt").replace('"C02XY0ABMD6M"', '""')
    profiler = fixture("identity/system-profiler-hardware.json").replace('"L2X7QW4K9P"', '"0"')
    probes = Recorded().command(IOREG, ioreg).command(PROFILER, profiler).probes()
    hardware = identity_macos.read_hardware(probes)
    assert hardware.serial is None
    assert "ioreg IOPlatformSerialNumber is empty" in hardware.unreadable["serial"]
    assert "system_profiler serial_number holds the placeholder '0'" in hardware.unreadable["serial"]
    assert hardware.hardware_uuid == "6B9D14E2-3C71-5F08-9A4E-2D6F81C0B357"


# --- Linux --------------------------------------------------------------------------------------

DMI = "/sys/class/dmi/id"
MACHINE_ID = "3f2a9c1e7b4d4e0fa6c85d21e9b07a44"
# What is sent instead of /etc/machine-id: HMAC-SHA256 keyed by the machine id over Homeroom's app id
# (computed independently here with the standard library).
SENT_MACHINE_ID = hmac.new(bytes.fromhex(MACHINE_ID), HOMEROOM_APP_ID, hashlib.sha256).hexdigest()[:32]


def linux(**attributes: str | None) -> Recorded:
    """A DMI tree as sysfs shows it to root; an attribute given as None is absent."""
    values: dict[str, str | None] = {
        "product_serial": "PF2ABCDE\n",
        "board_serial": "L1HF2AB0CDE\n",
        "product_uuid": "e1a2b3c4-d5e6-11eb-8b6d-f02f741a2b3c\n",
        "sys_vendor": "LENOVO\n",
        "product_name": "20XW0026US\n",
    }
    values.update(attributes)
    recorded = Recorded().file("/etc/machine-id", MACHINE_ID + "\n")
    recorded.directory(DMI, sorted(name for name, text in values.items() if text is not None))
    for name, text in values.items():
        if text is None:
            recorded.file(f"{DMI}/{name}", None, error="not found")
        else:
            recorded.file(f"{DMI}/{name}", text)
    return recorded


def test_linux_thinkpad_as_root() -> None:
    device = read_identity(linux().probes(), facts("linux"), ["f0:2f:74:1a:2b:3c"])
    assert device.serial == "PF2ABCDE"
    assert device.hardware_uuid == "E1A2B3C4-D5E6-11EB-8B6D-F02F741A2B3C"
    assert (device.manufacturer, device.model) == ("LENOVO", "20XW0026US")
    assert device.machine_id == SENT_MACHINE_ID
    assert device.unreadable == {}
    assert json.loads(json.dumps(device.to_json()))["macs"] == ["f0:2f:74:1a:2b:3c"]


def test_linux_as_a_user_serial_and_uuid_are_unreadable_not_errors() -> None:
    recorded = linux()
    for name in ("product_serial", "board_serial", "product_uuid"):
        recorded.file(f"{DMI}/{name}", None, error="permission denied")
    hardware = identity_linux.read_hardware(recorded.probes())
    assert hardware.serial is None and hardware.hardware_uuid is None
    assert hardware.unreadable["serial"] == (
        "only root can read /sys/class/dmi/id/product_serial; the Homeroom service (root) fills it in"
    )
    assert "only root can read /sys/class/dmi/id/product_uuid" in hardware.unreadable["hardware_uuid"]
    assert (hardware.manufacturer, hardware.model) == ("LENOVO", "20XW0026US")


def test_linux_placeholder_product_serial_falls_back_to_board_serial() -> None:
    hardware = identity_linux.read_hardware(linux(product_serial="To Be Filled By O.E.M.\n").probes())
    assert hardware.serial == "L1HF2AB0CDE"
    assert "serial" not in hardware.unreadable


def test_linux_placeholders_everywhere_and_no_uuid() -> None:
    recorded = linux(
        product_serial="System Serial Number\n",
        board_serial="Default string\n",
        product_uuid=None,
        sys_vendor="System manufacturer\n",
        product_name="System Product Name\n",
    )
    hardware = identity_linux.read_hardware(recorded.probes())
    assert (hardware.serial, hardware.hardware_uuid, hardware.manufacturer, hardware.model) == (
        None,
        None,
        None,
        None,
    )
    assert "'System Serial Number'" in hardware.unreadable["serial"]
    assert "'Default string'" in hardware.unreadable["serial"]
    assert "no system UUID" in hardware.unreadable["hardware_uuid"]
    assert "'System Product Name'" in hardware.unreadable["model"]


def test_linux_without_dmi_says_so_for_every_firmware_field() -> None:
    recorded = Recorded().file("/etc/machine-id", MACHINE_ID + "\n").directory(DMI, [], error="not found")
    hardware = identity_linux.read_hardware(recorded.probes())
    for name in ("serial", "hardware_uuid", "manufacturer", "model"):
        assert "no DMI (SMBIOS) table" in hardware.unreadable[name]
    assert hardware.machine_id == SENT_MACHINE_ID


@pytest.mark.parametrize(
    ("text", "reason"),
    [("uninitialized\n", "first boot"), ("", "cloning"), ("not-an-id\n", "not a machine id")],
)
def test_linux_machine_id_not_yet_committed(text: str, reason: str) -> None:
    hardware = identity_linux.read_hardware(linux().file("/etc/machine-id", text).probes())
    assert hardware.machine_id is None
    assert reason in hardware.unreadable["machine_id"]


def test_linux_live_on_this_machine() -> None:
    """This build machine has no /sys/class/dmi/id; its /etc/machine-id is real."""
    if Path(DMI).exists():
        pytest.skip("this machine has DMI; the no-DMI path is covered by the recorded test")
    device = read_identity(LiveProbes(), facts("linux"), local_macs())
    assert device.serial is None and device.hardware_uuid is None
    assert "no DMI (SMBIOS) table" in device.unreadable["serial"]
    machine_id = Path("/etc/machine-id").read_text(encoding="ascii").strip()
    assert device.machine_id == app_specific_machine_id(machine_id)
    assert device.machine_id != machine_id
    assert all(MAC.match(mac) for mac in device.macs)


def write_sysfs(root: Path, attributes: dict[str, str], private: tuple[str, ...]) -> None:
    dmi = root / "sys/class/dmi/id"
    dmi.mkdir(parents=True)
    for name, text in attributes.items():
        (dmi / name).write_text(text, encoding="ascii")
        os.chmod(dmi / name, 0o400 if name in private else 0o444)
    (root / "etc").mkdir()
    (root / "etc/machine-id").write_text(MACHINE_ID + "\n", encoding="ascii")


def test_linux_live_probes_against_a_fake_sysfs_tree(tmp_path: Path) -> None:
    private = ("product_serial", "board_serial", "product_uuid")
    write_sysfs(
        tmp_path,
        {
            "product_serial": "5CD1234XYZ\n",
            "board_serial": "PXYZA0B1C2D3E4\n",
            "product_uuid": "4c4c4544-0048-5a10-8051-b7c04f335833\n",
            "sys_vendor": "HP\n",
            "product_name": "HP ProBook 450 G9\n",
        },
        private,
    )
    probes: Probes = LiveProbes()
    hardware = identity_linux.read_hardware(probes, root=str(tmp_path))
    if os.geteuid() == 0:  # root reads 0400 files; a user gets "permission denied" (tested above)
        assert hardware.serial == "5CD1234XYZ"
        assert hardware.hardware_uuid == "4C4C4544-0048-5A10-8051-B7C04F335833"
    assert (hardware.manufacturer, hardware.model) == ("HP", "HP ProBook 450 G9")
    assert hardware.machine_id == SENT_MACHINE_ID


def test_linux_fake_sysfs_without_uuid_file(tmp_path: Path) -> None:
    write_sysfs(tmp_path, {"sys_vendor": "Notebook\n", "product_serial": "0\n"}, ())
    hardware = identity_linux.read_hardware(LiveProbes(), root=str(tmp_path))
    assert hardware.serial is None
    assert "placeholder '0'" in hardware.unreadable["serial"]
    assert "board_serial does not exist" in hardware.unreadable["serial"]
    assert "no system UUID" in hardware.unreadable["hardware_uuid"]
    assert hardware.manufacturer == "Notebook"  # Clevo white-box laptops


def test_device_identity_json_is_plain_data() -> None:
    device = DeviceIdentity(
        serial=None,
        hardware_uuid="4C4C4544-0048-5A10-8051-B7C04F335833",
        hostname="lab-pc07",
        manufacturer=None,
        model=None,
        os="windows",
        os_version="10.0.22631",
        machine_id=None,
        macs=("3c:22:fb:10:20:30",),
        unreadable={"serial": "Win32_BIOS.SerialNumber is empty"},
    )
    assert json.loads(json.dumps(device.to_json())) == {
        "serial": None,
        "hardware_uuid": "4C4C4544-0048-5A10-8051-B7C04F335833",
        "hostname": "lab-pc07",
        "manufacturer": None,
        "model": None,
        "os": "windows",
        "os_version": "10.0.22631",
        "machine_id": None,
        "macs": ["3c:22:fb:10:20:30"],
        "unreadable": {"serial": "Win32_BIOS.SerialNumber is empty"},
    }
