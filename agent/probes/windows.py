"""How Windows answers probes, shared by every Windows check and the identity reader.

Windows says "no" in many ways (HRESULTs, WBEM codes, tool-specific text);
reading them in one place keeps a refusal `unknown` everywhere, never `fail`.
"""

from __future__ import annotations

from agent.probes import CommandOutput

# "Access is denied", WBEM_E_ACCESS_DENIED (0x80041003), E_ACCESSDENIED (0x80070005), and
# manage-bde's own "Check that you have administrative rights".
_REFUSALS = (
    "access is denied",
    "access denied",
    "0x80041003",
    "0x80070005",
    "administrative rights",
    "permissiondenied",
    "permission denied",
)
# WBEM_E_INVALID_NAMESPACE (0x8004100e) and WBEM_E_INVALID_CLASS (0x80041010): the provider is not installed.
_ABSENT_PROVIDER = ("invalid namespace", "0x8004100e", "invalid class", "0x80041010")


def is_refusal(output: CommandOutput) -> bool:
    """Whether the OS refused for lack of rights (which is `unknown`, never `fail`)."""
    if output.error == "permission denied":
        return True
    if output.ok:
        return False
    text = f"{output.stdout}\n{output.stderr}".casefold()
    return any(marker in text for marker in _REFUSALS)


def is_absent_provider(output: CommandOutput) -> bool:
    """Whether a CIM namespace or class does not exist on this machine (e.g. no vendor BIOS provider)."""
    if output.ok or output.error:
        return False
    text = f"{output.stdout}\n{output.stderr}".casefold()
    return any(marker in text for marker in _ABSENT_PROVIDER)
