"""Windows access control for the files the service shares with users or keeps from them.

On POSIX, modes do this (the inbox is 1733, the key file 0600). Windows ignores modes, so the
service sets a protected DACL instead. What each path is given is plain data (`Ace` lists, turned
into SDDL by a pure function), so it is tested on any OS; only `apply` talks to Windows, through
advapi32 by ctypes, imported inside it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

# Well-known SIDs in SDDL's short form.
SYSTEM = "SY"
ADMINISTRATORS = "BA"
USERS = "BU"
CREATOR_OWNER = "CO"  # stands for whoever creates a file inside the directory

# File access rights (winnt.h).
FILE_ALL_ACCESS = 0x001F01FF
FILE_LIST_DIRECTORY = 0x00000001
FILE_ADD_FILE = 0x00000002
FILE_TRAVERSE = 0x00000020
FILE_DELETE_CHILD = 0x00000040
FILE_READ_ATTRIBUTES = 0x00000080
SYNCHRONIZE = 0x00100000

# ACE inheritance flags, as SDDL writes them.
OBJECT_INHERIT = "OI"
CONTAINER_INHERIT = "CI"
INHERIT_ONLY = "IO"

SE_FILE_OBJECT = 1
OWNER_SECURITY_INFORMATION = 0x00000001
DACL_SECURITY_INFORMATION = 0x00000004
PROTECTED_DACL_SECURITY_INFORMATION = 0x80000000
SDDL_REVISION_1 = 1


@dataclass(frozen=True)
class Ace:
    """One allow entry: who, which rights, and how it passes to files created inside."""

    trustee: str
    rights: int
    inheritance: tuple[str, ...] = ()


# Users may create a file in the inbox (add file, traverse, read its attributes) but may not list
# it or delete others' files; each file's creator gets full control of that file alone.
INBOX_ACL: tuple[Ace, ...] = (
    Ace(SYSTEM, FILE_ALL_ACCESS, (OBJECT_INHERIT, CONTAINER_INHERIT)),
    Ace(ADMINISTRATORS, FILE_ALL_ACCESS, (OBJECT_INHERIT, CONTAINER_INHERIT)),
    Ace(USERS, FILE_ADD_FILE | FILE_TRAVERSE | FILE_READ_ATTRIBUTES | SYNCHRONIZE),
    Ace(CREATOR_OWNER, FILE_ALL_ACCESS, (OBJECT_INHERIT, INHERIT_ONLY)),
)

# The device key, where no keyring works: the service's account and administrators, nobody else.
KEY_FILE_ACL: tuple[Ace, ...] = (
    Ace(SYSTEM, FILE_ALL_ACCESS),
    Ace(ADMINISTRATORS, FILE_ALL_ACCESS),
)


# The service's state folder under ProgramData: SYSTEM and administrators change it, users read it
# (status.json, the policies, what the tray shows) and nothing more; ProgramData's own default
# would let any user add files and folders there. The inbox and the key file get their own ACLs.
FILE_GENERIC_READ_EXECUTE = 0x001200A9
STATE_DIR_ACL: tuple[Ace, ...] = (
    Ace(SYSTEM, FILE_ALL_ACCESS, (OBJECT_INHERIT, CONTAINER_INHERIT)),
    Ace(ADMINISTRATORS, FILE_ALL_ACCESS, (OBJECT_INHERIT, CONTAINER_INHERIT)),
    Ace(USERS, FILE_GENERIC_READ_EXECUTE, (OBJECT_INHERIT, CONTAINER_INHERIT)),
)


def to_sddl(aces: tuple[Ace, ...]) -> str:
    """A protected DACL ("P": nothing inherited from the parent folder) in SDDL."""
    entries = "".join(f"(A;{''.join(ace.inheritance)};0x{ace.rights:x};;;{ace.trustee})" for ace in aces)
    return f"D:P{entries}"


def apply(path: Path, aces: tuple[Ace, ...]) -> None:
    """Replace the DACL of `path` with `aces`, protected from inheritance. Windows only.

    Raises OSError with Windows' error code when Windows refuses, so the caller fails loudly
    rather than leaving a file readable by every user.
    """
    import ctypes
    from ctypes import wintypes

    advapi32 = ctypes.WinDLL("advapi32", use_last_error=True)  # type: ignore[attr-defined,unused-ignore]
    kernel32 = ctypes.WinDLL("kernel32", use_last_error=True)  # type: ignore[attr-defined,unused-ignore]
    advapi32.ConvertStringSecurityDescriptorToSecurityDescriptorW.argtypes = [
        wintypes.LPCWSTR,
        wintypes.DWORD,
        ctypes.POINTER(ctypes.c_void_p),
        ctypes.c_void_p,
    ]
    advapi32.GetSecurityDescriptorDacl.argtypes = [
        ctypes.c_void_p,
        ctypes.POINTER(wintypes.BOOL),
        ctypes.POINTER(ctypes.c_void_p),
        ctypes.POINTER(wintypes.BOOL),
    ]
    advapi32.SetNamedSecurityInfoW.argtypes = [
        wintypes.LPWSTR,
        ctypes.c_int,
        wintypes.DWORD,
        ctypes.c_void_p,
        ctypes.c_void_p,
        ctypes.c_void_p,
        ctypes.c_void_p,
    ]
    advapi32.SetNamedSecurityInfoW.restype = wintypes.DWORD
    kernel32.LocalFree.argtypes = [ctypes.c_void_p]
    descriptor = ctypes.c_void_p()
    if not advapi32.ConvertStringSecurityDescriptorToSecurityDescriptorW(
        to_sddl(aces), SDDL_REVISION_1, ctypes.byref(descriptor), None
    ):
        raise OSError(ctypes.get_last_error(), f"cannot build the ACL for {path}")  # type: ignore[attr-defined,unused-ignore]
    try:
        present, defaulted = wintypes.BOOL(), wintypes.BOOL()
        dacl = ctypes.c_void_p()
        if not advapi32.GetSecurityDescriptorDacl(
            descriptor, ctypes.byref(present), ctypes.byref(dacl), ctypes.byref(defaulted)
        ):
            raise OSError(ctypes.get_last_error(), f"cannot read the ACL built for {path}")  # type: ignore[attr-defined,unused-ignore]
        error = advapi32.SetNamedSecurityInfoW(
            str(path),
            SE_FILE_OBJECT,
            DACL_SECURITY_INFORMATION | PROTECTED_DACL_SECURITY_INFORMATION,
            None,
            None,
            dacl,
            None,
        )
        if error:
            raise OSError(error, f"Windows refused to set the ACL of {path}")
    finally:
        kernel32.LocalFree(descriptor)


# Owners that may speak for any account, as root may on POSIX: the service itself and administrators.
# By SID, because their names are translated ("Administrateurs" on a French Windows).
TRUSTED_OWNER_SIDS = frozenset({"S-1-5-18", "S-1-5-32-544"})


@dataclass(frozen=True)
class Owner:
    sid: str
    account: str  # the name without its domain, as getpass.getuser() gives it to the tray


def may_speak_for(owner: Owner | None, user: str) -> bool:
    """Whether a file with this owner may carry records for `user` (Windows names ignore case)."""
    if owner is None:
        return False
    return owner.sid in TRUSTED_OWNER_SIDS or owner.account.casefold() == user.casefold()


def owner_of_path(path: Path) -> Owner:
    """Who owns a file or folder, by name (GetNamedSecurityInfoW). Windows only."""
    return _owner(str(path), None)


def owner_of_handle(handle: int) -> Owner:
    """The owner of an open file (its C runtime descriptor), as Windows records it. Windows only."""
    return _owner(None, handle)


def _owner(path: str | None, handle: int | None) -> Owner:
    import ctypes
    from ctypes import wintypes

    advapi32 = ctypes.WinDLL("advapi32", use_last_error=True)  # type: ignore[attr-defined,unused-ignore]
    kernel32 = ctypes.WinDLL("kernel32", use_last_error=True)  # type: ignore[attr-defined,unused-ignore]
    # Object type, what to read, then owner, group, DACL, SACL and the descriptor to free.
    after_object = [
        ctypes.c_int,
        wintypes.DWORD,
        ctypes.POINTER(ctypes.c_void_p),
        ctypes.c_void_p,
        ctypes.c_void_p,
        ctypes.c_void_p,
        ctypes.POINTER(ctypes.c_void_p),
    ]
    advapi32.GetSecurityInfo.argtypes = [wintypes.HANDLE, *after_object]
    advapi32.GetSecurityInfo.restype = wintypes.DWORD
    advapi32.GetNamedSecurityInfoW.argtypes = [wintypes.LPCWSTR, *after_object]
    advapi32.GetNamedSecurityInfoW.restype = wintypes.DWORD
    advapi32.ConvertSidToStringSidW.argtypes = [ctypes.c_void_p, ctypes.POINTER(wintypes.LPWSTR)]
    advapi32.LookupAccountSidW.argtypes = [
        wintypes.LPCWSTR,
        ctypes.c_void_p,
        wintypes.LPWSTR,
        ctypes.POINTER(wintypes.DWORD),
        wintypes.LPWSTR,
        ctypes.POINTER(wintypes.DWORD),
        ctypes.POINTER(wintypes.DWORD),
    ]
    kernel32.LocalFree.argtypes = [ctypes.c_void_p]
    sid, descriptor = ctypes.c_void_p(), ctypes.c_void_p()
    if path is not None:
        error = advapi32.GetNamedSecurityInfoW(
            path, SE_FILE_OBJECT, OWNER_SECURITY_INFORMATION, ctypes.byref(sid), None, None, None,
            ctypes.byref(descriptor),
        )  # fmt: skip
    else:
        import msvcrt  # type: ignore[import-not-found,unused-ignore]

        error = advapi32.GetSecurityInfo(
            msvcrt.get_osfhandle(handle),  # type: ignore[attr-defined,unused-ignore]
            SE_FILE_OBJECT, OWNER_SECURITY_INFORMATION, ctypes.byref(sid), None, None, None,
            ctypes.byref(descriptor),
        )  # fmt: skip
    if error:
        raise OSError(error, f"Windows would not say who owns {path or 'an inbox entry'}")
    try:
        text = wintypes.LPWSTR()
        if not advapi32.ConvertSidToStringSidW(sid, ctypes.byref(text)):
            raise OSError(ctypes.get_last_error(), "cannot write the owner's SID")  # type: ignore[attr-defined,unused-ignore]
        sid_string = str(text.value)
        kernel32.LocalFree(text)
        name, domain = ctypes.create_unicode_buffer(256), ctypes.create_unicode_buffer(256)
        name_size, domain_size, use = wintypes.DWORD(256), wintypes.DWORD(256), wintypes.DWORD()
        if not advapi32.LookupAccountSidW(
            None, sid, name, ctypes.byref(name_size), domain, ctypes.byref(domain_size), ctypes.byref(use)
        ):
            return Owner(sid_string, "")  # a deleted account: it speaks for nobody
        return Owner(sid_string, name.value)
    finally:
        kernel32.LocalFree(descriptor)
