"""Device identity on Linux: the kernel's DMI attributes in sysfs, and systemd's machine id.

`/sys/class/dmi/id/` holds one file per SMBIOS string, each the value and a
newline (drivers/firmware/dmi-id.c). The serials and the UUID are mode 0400,
readable by root only, so a user's run sees them as "permission denied": that
is a missing right, filled in by the Homeroom service, never an error. The
kernel leaves `product_uuid` out when the firmware's UUID is all zeros or all
FF, and prints it lower-case. Machines without SMBIOS (many VMs and ARM boards,
which describe themselves by device tree) have no `/sys/class/dmi/id` at all.

`root` lets a test point the reader at a fake tree; the agent always uses "/".
"""

from __future__ import annotations

import hashlib
import hmac
import posixpath
import re

from agent.identity import Cleaned, HardwareReading, Source, choose, clean_text, clean_uuid, reading
from agent.probes import NOT_FOUND, FileContent, Probes

DMI_DIR = "sys/class/dmi/id"
MACHINE_ID = "etc/machine-id"
_MACHINE_ID = re.compile(r"^[0-9a-f]{32}$")


def dmi_source(content: FileContent) -> Source:
    """A sysfs DMI attribute as a `Source`: its text, or why it could not be read."""
    if content.text is not None:
        return Source(content.path, content.text)
    if content.denied:
        return Source(
            content.path, None, f"only root can read {content.path}; the Homeroom service (root) fills it in"
        )
    if content.missing:
        return Source(content.path, None, f"{content.path} does not exist: the firmware does not provide it")
    return Source(content.path, None, f"could not read {content.path}: {content.error}")


def uuid_source(content: FileContent) -> Source:
    if content.missing:
        return Source(
            content.path,
            None,
            f"{content.path} does not exist: the firmware gives no system UUID "
            "(Linux hides one that is all zeros or all FF)",
        )
    return dmi_source(content)


def clean_machine_id(raw: str) -> Cleaned:
    """machine-id(5): 32 lower-case hex digits; "uninitialized" or empty until systemd commits one."""
    text = raw.strip()
    if not text:
        return Cleaned(None, "is empty: the system image was prepared for cloning and has not booted since")
    if text == "uninitialized":
        return Cleaned(None, "is 'uninitialized': systemd has not yet committed an id (first boot)")
    if not _MACHINE_ID.match(text):
        return Cleaned(None, f"is not a machine id ({text[:40]!r})")
    return Cleaned(app_specific_machine_id(text))


# A fixed, random application id: the machine id is only ever sent keyed with it.
HOMEROOM_APP_ID = bytes.fromhex("6c1f0b7e52a94d3a8e1d2f4b9c07a5e3")


def app_specific_machine_id(machine_id: str) -> str:
    """machine-id(5) asks that the id itself stay confidential and that applications use a keyed
    hash of it instead (as sd_id128_get_machine_app_specific does): stable per machine, useless to
    anyone correlating with other software's records."""
    return hmac.new(bytes.fromhex(machine_id), HOMEROOM_APP_ID, hashlib.sha256).hexdigest()[:32]


def machine_id_source(content: FileContent) -> Source:
    if content.text is not None:
        return Source(content.path, content.text)
    return Source(content.path, None, f"could not read {content.path}: {content.error}")


def read_hardware(probes: Probes, root: str = "/") -> HardwareReading:
    dmi = posixpath.join(root, DMI_DIR)
    machine_id = choose(
        [machine_id_source(probes.read_file(posixpath.join(root, MACHINE_ID)))], clean_machine_id
    )

    if probes.list_dir(dmi).error == NOT_FOUND:
        no_dmi = (
            f"this machine has no DMI (SMBIOS) table: {dmi} does not exist, as on virtual machines "
            "without SMBIOS and ARM boards described by device tree"
        )
        return reading(
            {"machine_id": machine_id},
            {"serial": no_dmi, "hardware_uuid": no_dmi, "manufacturer": no_dmi, "model": no_dmi},
        )

    def attribute(name: str) -> FileContent:
        return probes.read_file(posixpath.join(dmi, name))

    product_serial = attribute("product_serial")
    serial_sources = [dmi_source(product_serial)]
    # board_serial is root-only too: worth asking only when product_serial was readable but useless.
    if not product_serial.denied:
        serial_sources.append(dmi_source(attribute("board_serial")))

    return reading(
        {
            "serial": choose(serial_sources, clean_text),
            "hardware_uuid": choose([uuid_source(attribute("product_uuid"))], clean_uuid),
            "manufacturer": choose([dmi_source(attribute("sys_vendor"))], clean_text),
            "model": choose([dmi_source(attribute("product_name"))], clean_text),
            "machine_id": machine_id,
        }
    )
