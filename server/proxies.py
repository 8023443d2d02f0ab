"""Which peers may tell the server who the client is (X-Forwarded-For) and that it came over https.

Behind nginx every connection comes from nginx, so the console's per-address sign-in lockout and
the audit log's addresses would all say "the proxy" unless the proxy passes the client's address
on. A header is only as honest as whoever sent it: anyone who can reach a server process directly
could write `X-Forwarded-For: <someone else>` to dodge the lockout or forge the audit trail. So the
address in the header is used only when the connection comes from a trusted proxy; from any other
peer the header is ignored and the peer's own address counts.

uvicorn's proxy-headers middleware does the rewriting (it walks X-Forwarded-For from the right,
skipping trusted hops); this module decides and checks the list it is given.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from server.errors import CommandError

TRUSTED_PROXIES_VARIABLE = "HOMEROOM_TRUSTED_PROXIES"
# nginx on the same machine: what uvicorn trusts by default, kept so a plain install behaves as before.
DEFAULT_TRUSTED_PROXIES = ("127.0.0.1", "::1")
NOBODY = "none"


def trusted_proxies(flags: Sequence[str] | None, environment: str | None) -> list[str]:
    """`--trusted-proxy` (repeated), else HOMEROOM_TRUSTED_PROXIES (comma-separated), else loopback.

    Each entry is an IP address or network (`10.0.0.5`, `10.0.0.0/24`, `fd00::/64`); `none` trusts
    nobody (every header ignored). `*` is refused: it would let anyone choose their address.
    """
    if flags:
        given = list(flags)
    elif environment is not None and environment.strip():
        given = environment.split(",")
    else:
        return list(DEFAULT_TRUSTED_PROXIES)
    entries = [entry.strip() for entry in given if entry.strip()]
    if [entry.lower() for entry in entries] == [NOBODY]:
        return []
    return [_checked(entry) for entry in entries]


def _checked(entry: str) -> str:
    if entry == "*" or entry.lower() == NOBODY:
        raise CommandError(
            f"trusted proxy {entry!r}: list the proxies' own addresses, e.g. 10.0.0.5 (trusting every peer "
            "lets anyone choose the address the server records); `none` alone trusts nobody"
        )
    try:
        if "/" in entry:
            return str(ipaddress.ip_network(entry, strict=False))
        return str(ipaddress.ip_address(entry))
    except ValueError:
        raise CommandError(
            f"trusted proxy {entry!r} is not an IP address or network: give one such as 10.0.0.5 or "
            "10.0.0.0/24 (names are not looked up)"
        ) from None
