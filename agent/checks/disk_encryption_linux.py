"""Disk encryption on Linux: is every block device under `/` reached through dm-crypt?

`findmnt` names the device mounted at `/`; `lsblk -s` walks from it down to
the disks it is built on. LUKS usually sits under LVM (root LV -> VG -> crypt
-> partition) and a volume group may span several disks, so the rule is that
*every* path from `/` down to a disk passes through a `crypt` device: one
unencrypted physical volume leaves part of the system readable.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from agent.checks.context import CheckContext
from agent.checks.results import Finding, broken, failed, passed, unknown

FINDMNT_ROOT = ["findmnt", "-J", "-o", "SOURCE,TARGET,FSTYPE", "/"]
LSBLK_COLUMNS = "NAME,PATH,TYPE,FSTYPE"
REMEDY = (
    "Disk encryption is chosen when Linux is installed. Please ask your school's IT team to set up this "
    "laptop again with full-disk encryption (LUKS); they will keep your files safe while they do."
)


@dataclass(frozen=True)
class RootMount:
    source: str
    fstype: str


@dataclass(frozen=True)
class RootEncryption:
    encrypted: bool
    # Each path from the root device down to a disk, as device names.
    chains: tuple[tuple[str, ...], ...]
    crypt_devices: tuple[str, ...]
    unencrypted_chains: tuple[tuple[str, ...], ...]


def parse_findmnt_root(text: str) -> RootMount:
    data = json.loads(text)
    filesystems = data.get("filesystems") or []
    if not filesystems:
        raise ValueError("findmnt listed no filesystem for /")
    entry = filesystems[0]
    # btrfs subvolumes are shown as "/dev/mapper/x[/@]": the device is before the bracket.
    source = str(entry.get("source") or "").split("[", 1)[0]
    return RootMount(source, str(entry.get("fstype") or ""))


def _chains(node: dict[str, Any], prefix: tuple[dict[str, Any], ...]) -> list[tuple[dict[str, Any], ...]]:
    path = (*prefix, node)
    children = node.get("children") or []
    if not children:
        return [path]
    found: list[tuple[dict[str, Any], ...]] = []
    for child in children:
        found.extend(_chains(child, path))
    return found


def parse_lsblk_inverse(text: str) -> RootEncryption:
    """Reads `lsblk -J -s` of the root device: each device's children are the devices it is built on."""
    data = json.loads(text)
    roots = data.get("blockdevices") or []
    if not roots:
        raise ValueError("lsblk listed no block device")
    chains: list[tuple[dict[str, Any], ...]] = []
    for root in roots:
        chains.extend(_chains(root, ()))
    names = tuple(tuple(str(dev.get("name")) for dev in chain) for chain in chains)
    crypt = sorted({str(dev.get("name")) for chain in chains for dev in chain if dev.get("type") == "crypt"})
    bare = tuple(
        tuple(str(dev.get("name")) for dev in chain)
        for chain in chains
        if not any(dev.get("type") == "crypt" for dev in chain)
    )
    return RootEncryption(not bare, names, tuple(crypt), bare)


def root_encryption(ctx: CheckContext) -> RootEncryption | Finding:
    """Shared with the power-on password check, which needs to know whether `/` is behind LUKS."""
    mount_out = ctx.probes.run(FINDMNT_ROOT, probe_id="linux.findmnt.root")
    if not mount_out.ok:
        return broken(f"could not find the root filesystem: {mount_out.describe()}")
    try:
        mount = parse_findmnt_root(mount_out.stdout)
    except (ValueError, json.JSONDecodeError) as exc:
        return broken(f"could not read findmnt output: {exc}")
    if not mount.source.startswith("/dev/"):
        return unknown(
            f"/ is on {mount.source or 'no device'} ({mount.fstype}), "
            "not a block device that lsblk can follow",
            "Ask your school's IT team to confirm how this laptop's disk is encrypted.",
            root_source=mount.source,
            root_fstype=mount.fstype,
        )
    tree_out = ctx.probes.run(
        ["lsblk", "-J", "-s", "-o", LSBLK_COLUMNS, mount.source], probe_id="linux.lsblk.root"
    )
    if not tree_out.ok:
        return broken(f"could not list the devices under /: {tree_out.describe()}")
    try:
        return parse_lsblk_inverse(tree_out.stdout)
    except (ValueError, json.JSONDecodeError) as exc:
        return broken(f"could not read lsblk output: {exc}")


def check(ctx: CheckContext) -> Finding:
    state = root_encryption(ctx)
    if isinstance(state, Finding):
        return state
    evidence = {
        "chains": [" <- ".join(chain) for chain in state.chains],
        "crypt_devices": list(state.crypt_devices),
    }
    if state.encrypted:
        return passed(f"/ is encrypted with dm-crypt ({', '.join(state.crypt_devices)})", **evidence)
    if state.crypt_devices:
        bare = ", ".join(chain[-1] for chain in state.unencrypted_chains)
        return failed(f"/ is only partly encrypted: {bare} is not behind dm-crypt", REMEDY, **evidence)
    return failed("/ is not encrypted", REMEDY, **evidence)
