"""Device identity on macOS: the platform expert's registry entry, with system_profiler as the fallback.

`ioreg -rd1 -c IOPlatformExpertDevice` prints the one IOPlatformExpertDevice
entry as `"key" = value` lines between braces. IOPlatformSerialNumber and
IOPlatformUUID are strings (`"…"`); "model" and "manufacturer" are device-tree
data, which ioreg prints as `<"…">` when the bytes are NUL-terminated text
(several strings as `<"a","b">`) and as hex (`<4d6163…>`) otherwise. ioreg
needs no rights and answers in milliseconds; system_profiler takes a second or
more, so it is asked only when ioreg leaves something out.

macOS has no machine id of the Linux or Windows kind: the hardware UUID is
the Mac's own stable identifier.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from agent.identity import HardwareReading, Source, choose, clean_text, clean_uuid, reading
from agent.probes import CommandOutput, Probes

IOREG_PLATFORM = ["ioreg", "-rd1", "-c", "IOPlatformExpertDevice"]
SYSTEM_PROFILER_HARDWARE = ["system_profiler", "SPHardwareDataType", "-json"]
NO_MACHINE_ID = "macOS has no machine id; the hardware UUID identifies this Mac"

_PROPERTY = re.compile(r'^\s*"((?:[^"\\]|\\.)*)" = (.*?)\s*$')
_QUOTED = re.compile(r'"((?:[^"\\]|\\.)*)"')
_HEX_DATA = re.compile(r"^<([0-9a-fA-F]*)>$")


@dataclass(frozen=True)
class ToolAnswer:
    """A tool's properties by name, or why there are none."""

    tool: str
    properties: dict[str, str] | None
    problem: str | None = None

    def source(self, name: str) -> Source:
        where = f"{self.tool} {name}"
        if self.properties is None:
            return Source(where, None, self.problem)
        if name not in self.properties:
            return Source(where, None, f"{self.tool} does not report {name}")
        return Source(where, self.properties[name])


def ioreg_value(value: str) -> str | None:
    """The text of one ioreg value: a string, NUL-terminated data, or hex data that spells text."""
    if value.startswith('"') and value.endswith('"') and len(value) >= 2:
        return value[1:-1]
    if value.startswith('<"'):
        strings = _QUOTED.findall(value)
        return strings[0] if strings else None
    hex_data = _HEX_DATA.match(value)
    if hex_data and len(hex_data.group(1)) % 2 == 0:
        text = bytes.fromhex(hex_data.group(1)).split(b"\x00", 1)[0]
        if text and all(32 <= byte < 127 for byte in text):
            return text.decode("ascii")
    return None


def parse_ioreg(text: str) -> dict[str, str]:
    """The text-valued properties of the entry `ioreg -rd1` prints; numbers, arrays and blobs are skipped."""
    properties: dict[str, str] = {}
    depth = 0
    for line in text.splitlines():
        stripped = line.strip()
        if stripped == "{":
            depth += 1
            continue
        if stripped == "}":
            depth -= 1
            if depth == 0 and properties:
                break
            continue
        if depth != 1:
            continue
        found = _PROPERTY.match(line)
        if found:
            value = ioreg_value(found.group(2))
            if value is not None:
                properties.setdefault(found.group(1), value)
    return properties


def parse_system_profiler_hardware(text: str) -> dict[str, str] | None:
    """The string fields of SPHardwareDataType's one hardware overview, or None when the JSON has none."""
    try:
        data: Any = json.loads(text)
    except ValueError:
        return None
    items = data.get("SPHardwareDataType") if isinstance(data, dict) else None
    if not isinstance(items, list) or not items or not isinstance(items[0], dict):
        return None
    return {key: value for key, value in items[0].items() if isinstance(value, str)}


def ioreg_answer(output: CommandOutput) -> ToolAnswer:
    if not output.ok:
        return ToolAnswer("ioreg", None, f"could not run ioreg: {output.describe()}")
    properties = parse_ioreg(output.stdout)
    if not properties:
        return ToolAnswer("ioreg", None, "ioreg printed no IOPlatformExpertDevice entry")
    return ToolAnswer("ioreg", properties)


def system_profiler_answer(output: CommandOutput) -> ToolAnswer:
    if not output.ok:
        return ToolAnswer("system_profiler", None, f"could not run system_profiler: {output.describe()}")
    properties = parse_system_profiler_hardware(output.stdout)
    if properties is None:
        return ToolAnswer("system_profiler", None, "system_profiler gave no SPHardwareDataType overview")
    return ToolAnswer("system_profiler", properties)


def decide(registry: ToolAnswer, profiler: ToolAnswer | None) -> HardwareReading:
    def sources(ioreg_key: str, profiler_key: str | None) -> list[Source]:
        found = [registry.source(ioreg_key)]
        if profiler is not None and profiler_key is not None:
            found.append(profiler.source(profiler_key))
        return found

    return reading(
        {
            "serial": choose(sources("IOPlatformSerialNumber", "serial_number"), clean_text),
            "hardware_uuid": choose(sources("IOPlatformUUID", "platform_UUID"), clean_uuid),
            "manufacturer": choose(sources("manufacturer", None), clean_text),
            "model": choose(sources("model", "machine_model"), clean_text),
        },
        {"machine_id": NO_MACHINE_ID},
    )


def read_hardware(probes: Probes) -> HardwareReading:
    registry = ioreg_answer(probes.run(IOREG_PLATFORM))
    first = decide(registry, None)
    if first.serial and first.hardware_uuid and first.model:
        return first
    profiler = system_profiler_answer(probes.run(SYSTEM_PROFILER_HARDWARE, timeout=60.0))
    return decide(registry, profiler)
