"""What the agent tells a person when something is wrong: one plain sentence and what to do, no traceback.

Pure functions: an address, an exception or a refusal in, words out. Only `unreachable` needs
requests, and imports it itself: `check` must run on a bare Python.
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import urlsplit

ENROL_AGAIN = "enrol it again: homeroom-agent enroll --server URL --token TOKEN (ask IT for a token)"


def server_url_problem(url: str) -> str | None:
    """Why an address cannot be a Homeroom server's, before anything is sent to it."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        bare = url.split("://", 1)[-1]
        return f"{url!r} is not a web address: add https:// (https://{bare})"
    if not parts.hostname:
        return f"{url!r} names no server: write it as https://homeroom.district.example"
    return None


def unreachable(url: str, exc: BaseException) -> str:
    """One sentence for a request that never got an answer."""
    import requests  # here, not at the top: `homeroom-agent check` runs with no third-party packages

    if isinstance(exc, (requests.exceptions.MissingSchema, requests.exceptions.InvalidSchema)):
        return server_url_problem(url) or f"{url!r} is not a web address: add https://"
    host = urlsplit(url).hostname or url
    text = str(exc)
    if isinstance(exc, requests.exceptions.SSLError):
        return f"cannot reach {url}: its certificate could not be verified (is the address the district's?)"
    if isinstance(exc, requests.exceptions.Timeout):
        return f"cannot reach {url}: it did not answer in time; check the network and try again"
    if "Name or service not known" in text or "NameResolutionError" in text or "getaddrinfo" in text:
        return f"cannot reach {url}: the name {host} was not found; check the address"
    if isinstance(exc, requests.exceptions.ConnectionError):
        return f"cannot reach {url}: nothing answered there; check the address and that the server is running"
    return f"cannot reach {url}: {type(exc).__name__}"


def identity_notes(unreadable: Mapping[str, str]) -> list[str]:
    """One note per reason, naming every field it covers (no DMI table explains four fields at once)."""
    by_reason: dict[str, list[str]] = {}
    for field_name, why in unreadable.items():
        by_reason.setdefault(why, []).append(field_name)
    return [f"note: {', '.join(fields)} unknown: {why}" for why, fields in by_reason.items()]


def refusal_advice(reason: str) -> str:
    """What to do about the server's last answer to this laptop."""
    code = reason.split(":", 1)[0].strip()
    if code in ("401", "403"):
        return f"the server does not accept this laptop ({reason}): {ENROL_AGAIN}"
    if reason.startswith("cannot reach"):
        return f"the server could not be reached ({reason}); everything stays queued and is sent later"
    if code.isdigit() and int(code) >= 500:
        return f"the server had a problem ({reason}); everything stays queued and is sent later"
    return f"the server refused a record ({reason}); it is kept for IT: homeroom-agent status lists it"
