"""Which server addresses the agent will talk to: https, or plain http only to this machine itself.

Over plain http anyone on the school network can read what a laptop sends (serial, users, sign-offs)
and answer in the server's place. Signed answers stop a stranger's answer being obeyed, but not the
reading, and an enrolment over http could pin a stranger's key; so http to another host is refused
unless agent.toml says the network is trusted. Decided before any connection is made.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from agent.errors import InsecureServerAddress

LOOPBACK_NAMES = {"localhost"}


def is_loopback_host(host: str) -> bool:
    if host.lower().rstrip(".") in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def transport_of(url: str) -> str:
    """ "https", "loopback http" or "insecure http": how answers from this address travel."""
    parts = urlsplit(url)
    if parts.scheme == "https":
        return "https"
    return "loopback http" if is_loopback_host(parts.hostname or "") else "insecure http"


def check_server_address(url: str, allow_insecure_http: bool) -> None:
    """Raises InsecureServerAddress (saying why and what to do) for an address the agent must not use."""
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError as exc:
        raise InsecureServerAddress(f"{url!r} is not a server address ({exc}): give https://HOST") from None
    if parts.scheme not in ("https", "http") or not host:
        raise InsecureServerAddress(
            f"{url!r} is not a server address: give it as https://HOST (e.g. https://homeroom.district.example)"
        )
    if parts.scheme == "https" or is_loopback_host(host) or allow_insecure_http:
        return
    raise InsecureServerAddress(
        f"refusing {url}: over plain http:// anyone on the network can read what this laptop sends and "
        f"answer in the server's place. Use https://{parts.netloc}{parts.path} (the server behind a TLS "
        "proxy), or, only on a network you trust, set allow_insecure_http = true under [server] in agent.toml"
    )
