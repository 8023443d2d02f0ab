"""Device identity on Windows: SMBIOS through the CIMv2 classes, and the Cryptography MachineGuid.

Win32_BIOS.SerialNumber and Win32_ComputerSystemProduct.IdentifyingNumber both
map the SMBIOS system serial; the second is asked when the first is a
placeholder. Win32_ComputerSystemProduct.UUID is the SMBIOS system UUID
(Microsoft documents an all-zero UUID when there is none). The friendly
manufacturer and model are Win32_ComputerSystem's, with the product class's
Vendor and Name when those are blank. Standard users may read all three
classes; a refusal is reported as the missing right.

MachineGuid is written once when Windows is installed, so it changes on a
re-install (unlike the serial) but tells apart images cloned without sysprep.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from agent.identity import Cleaned, HardwareReading, Source, choose, clean_text, clean_uuid, reading
from agent.probes import PERMISSION_DENIED, CommandOutput, Probes, RegistryKey, cim_instances
from agent.probes.windows import is_refusal

CIMV2 = "root\\CIMV2"
CRYPTOGRAPHY_KEY = "HKLM\\SOFTWARE\\Microsoft\\Cryptography"
MACHINE_GUID = "MachineGuid"


@dataclass(frozen=True)
class ClassAnswer:
    """The first instance of a CIM class, or why there is none."""

    class_name: str
    properties: dict[str, Any] | None
    problem: str | None = None

    def source(self, property_name: str) -> Source:
        where = f"{self.class_name}.{property_name}"
        if self.properties is None:
            return Source(where, None, self.problem)
        value = self.properties.get(property_name)
        # CIM gives null for a string the firmware left out: the same as empty.
        return Source(where, value if isinstance(value, str) else "")


def class_answer(output: CommandOutput, class_name: str) -> ClassAnswer:
    if is_refusal(output):
        return ClassAnswer(
            class_name,
            None,
            f"Windows refused to read {class_name} (access denied); the Homeroom service (SYSTEM) reads it",
        )
    if output.error or not output.ok:
        return ClassAnswer(class_name, None, f"could not read {class_name}: {output.describe()}")
    try:
        instances = cim_instances(output)
    except ValueError:
        return ClassAnswer(class_name, None, f"could not read {class_name}: its output is not JSON")
    if not instances:
        return ClassAnswer(class_name, None, f"Windows has no {class_name} instance")
    return ClassAnswer(class_name, instances[0])


def machine_guid_source(key: RegistryKey) -> Source:
    where = f"{key.path}\\{MACHINE_GUID}"
    if key.error == PERMISSION_DENIED:
        return Source(where, None, f"Windows refused to read {key.path} (access denied)")
    if key.error:
        return Source(where, None, f"could not read {key.path}: {key.error}")
    value = key.values.get(MACHINE_GUID)
    if not isinstance(value, str):
        return Source(where, None, f"{MACHINE_GUID} is not set in {key.path}")
    return Source(where, value)


def clean_machine_guid(raw: str) -> Cleaned:
    """MachineGuid in the lower-case form Windows writes it; the same all-zero and format rules as UUIDs."""
    cleaned = clean_uuid(raw)
    return cleaned if cleaned.value is None else Cleaned(cleaned.value.lower())


def read_hardware(probes: Probes) -> HardwareReading:
    bios = class_answer(probes.cim(CIMV2, "Win32_BIOS"), "Win32_BIOS")
    product = class_answer(probes.cim(CIMV2, "Win32_ComputerSystemProduct"), "Win32_ComputerSystemProduct")
    system = class_answer(probes.cim(CIMV2, "Win32_ComputerSystem"), "Win32_ComputerSystem")
    guid = machine_guid_source(probes.registry_key(CRYPTOGRAPHY_KEY))
    return reading(
        {
            "serial": choose([bios.source("SerialNumber"), product.source("IdentifyingNumber")], clean_text),
            "hardware_uuid": choose([product.source("UUID")], clean_uuid),
            "manufacturer": choose([system.source("Manufacturer"), product.source("Vendor")], clean_text),
            "model": choose([system.source("Model"), product.source("Name")], clean_text),
            "machine_id": choose([guid], clean_machine_guid),
        }
    )
