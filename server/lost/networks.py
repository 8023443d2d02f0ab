"""The district's own networks: its address ranges and its access points, read from the files IT
has, and where a lost laptop's evidence puts it ("seen near Lincoln High, library"). Pure.

Two imports, each replacing the whole list (a controller's export is the whole fleet of access
points): a ranges file, one `CIDR BUILDING` a line, and a CSV export of the access points. Every
Wi-Fi controller can export one, but each names its columns its own way ("BSSID", "Radio MAC",
"MAC Address"; "Building", "Site", "Location"; "Room", "Area", "AP Name"), so the header is matched
against those variants, without regard to case, spaces, hyphens or underscores.

Matching trusts only what a laptop cannot choose freely: an access point it hears (a BSSID of the
district's) or the address the *server* saw its request come from. The laptop's own local
addresses are not matched: home routers hand out the same private ranges (10.0.0.0/8,
192.168.0.0/16) that districts use inside their buildings.
"""

from __future__ import annotations

import csv
import io
import ipaddress
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from server.errors import CommandError

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

BSSID_HEADERS = (
    "bssid",
    "bss id",
    "radio mac",
    "radio mac address",
    "base radio mac",
    "wireless mac",
    "wlan mac",
    "ap mac",
    "ap mac address",
    "mac",
    "mac address",
    "macaddress",
)
BUILDING_HEADERS = ("building", "building name", "site", "site name", "school", "campus", "location")
ROOM_HEADERS = (
    "room",
    "room name",
    "room number",
    "area",
    "zone",
    "ap location",
    "placement",
    "ap name",
    "name",
    "description",
)
BUILDING_MAX = 200
ROOM_MAX = 200


@dataclass(frozen=True)
class DistrictRange:
    network: IPNetwork
    building: str


@dataclass(frozen=True)
class AccessPoint:
    bssid: str
    building: str
    room: str


@dataclass(frozen=True)
class Sighting:
    """Where evidence puts a laptop: a building, a room when an access point said so, and how."""

    building: str
    room: str
    by: str  # "access point aa:bb:…" or "address 203.0.113.9"

    @property
    def words(self) -> str:
        place = f"{self.building}, {self.room}" if self.room else self.building
        return f"seen near {place}"


def _problem(name: str, line: int, message: str) -> CommandError:
    return CommandError(f"{name}, line {line}: {message}")


def _clean_text(value: str) -> str:
    return " ".join(value.split())


# --- address ranges -------------------------------------------------------------------------------

_RANGE_HEADER_WORDS = {"cidr", "network", "range", "subnet", "prefix", "address", "addresses"}


def parse_ranges(name: str, text: str) -> list[DistrictRange]:
    """`CIDR BUILDING` a line (a comma, a tab or spaces between), `#` comments and blank lines
    skipped, a first line of column names skipped. A mistake names the line and the fix."""
    found: list[DistrictRange] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip() if not raw.lstrip().startswith("#") else ""
        if not line:
            continue
        parts = re.split(r"\s*,\s*|\t+|\s+", line, maxsplit=1)
        first = parts[0].strip().strip('"')
        if not found and first.lower() in _RANGE_HEADER_WORDS:
            continue
        building = _clean_text(parts[1].strip().strip('"')) if len(parts) > 1 else ""
        try:
            network = ipaddress.ip_network(first, strict=True)
        except ValueError as exc:
            if "has host bits set" in str(exc):
                fixed = ipaddress.ip_network(first, strict=False)
                raise _problem(name, number, f"{first} has host bits set: did you mean {fixed}?") from None
            raise _problem(
                name,
                number,
                f"{first!r} is not an address range: write it as 10.12.0.0/16 or 2001:db8:12::/48",
            ) from None
        if not building:
            raise _problem(name, number, f"{network} has no building: write `{network} Lincoln High`")
        if len(building) > BUILDING_MAX:
            raise _problem(name, number, f"the building name is longer than {BUILDING_MAX} characters")
        found.append(DistrictRange(network, building))
    if not found:
        raise CommandError(f"{name}: no address ranges in it (one `CIDR BUILDING` a line)")
    return found


# --- access points --------------------------------------------------------------------------------


def normal_bssid(text: str) -> str | None:
    """aa:bb:cc:dd:ee:ff from any of the usual spellings (colons, hyphens, Cisco's dots, none,
    either case, nmcli's escaped colons), or None."""
    digits = re.sub(r"[\s:.\-\\]", "", text).lower()
    if not re.fullmatch(r"[0-9a-f]{12}", digits):
        return None
    return ":".join(digits[i : i + 2] for i in range(0, 12, 2))


def _header_key(header: str) -> str:
    return " ".join(re.sub(r"[_\-]+", " ", header.strip().strip("\ufeff").lower()).split())


def _column(headers: Sequence[str], wanted: Sequence[str]) -> int | None:
    keys = [_header_key(h) for h in headers]
    for candidate in wanted:
        if candidate in keys:
            return keys.index(candidate)
    return None


def _dialect(text: str) -> type[csv.Dialect] | csv.Dialect:
    first = text.splitlines()[0] if text.strip() else ""
    try:
        return csv.Sniffer().sniff(first, delimiters=",;\t")
    except csv.Error:
        return csv.excel


def parse_access_points(name: str, text: str) -> list[AccessPoint]:
    """A controller's CSV export: BSSID, building and room columns found by their header."""
    text = text.lstrip("\ufeff")
    rows = csv.reader(io.StringIO(text), _dialect(text))
    try:
        headers = next(rows)
    except StopIteration:
        raise CommandError(
            f"{name}: the file is empty (a CSV export of the access points is expected)"
        ) from None
    except csv.Error as exc:
        raise _problem(name, 1, f"is not readable as CSV ({exc})") from None
    bssid_at = _column(headers, BSSID_HEADERS)
    building_at = _column(headers, BUILDING_HEADERS)
    room_at = _column(headers, ROOM_HEADERS)
    if bssid_at is None or building_at is None:
        missing = " and ".join(
            what
            for what, at in (("a BSSID column", bssid_at), ("a building column", building_at))
            if at is None
        )
        raise _problem(
            name,
            1,
            f"the header lacks {missing} (found: {', '.join(repr(h) for h in headers)}); name them "
            "BSSID (or Radio MAC, MAC Address), Building (or Site, Location) and Room (or Area, AP Name)",
        )
    found: dict[str, tuple[int, AccessPoint]] = {}
    try:
        for row in rows:
            number = rows.line_num
            if not any(cell.strip() for cell in row):
                continue
            if len(row) <= max(bssid_at, building_at):
                raise _problem(name, number, f"has {len(row)} columns, the header {len(headers)}")
            bssid = normal_bssid(row[bssid_at])
            if bssid is None:
                raise _problem(
                    name,
                    number,
                    f"{row[bssid_at]!r} is not a BSSID (12 hexadecimal digits, e.g. 00:1a:2b:3c:4d:5e)",
                )
            building = _clean_text(row[building_at])
            room = _clean_text(row[room_at]) if room_at is not None and room_at < len(row) else ""
            if not building:
                raise _problem(name, number, f"{bssid} has no building")
            if len(building) > BUILDING_MAX or len(room) > ROOM_MAX:
                raise _problem(
                    name, number, f"a building or room name is longer than {BUILDING_MAX} characters"
                )
            point = AccessPoint(bssid, building, room)
            if bssid in found and found[bssid][1] != point:
                raise _problem(name, number, f"{bssid} is also on line {found[bssid][0]}, somewhere else")
            found.setdefault(bssid, (number, point))
    except csv.Error as exc:
        raise _problem(name, rows.line_num, f"is not readable as CSV ({exc})") from None
    if not found:
        raise CommandError(f"{name}: no access points in it")
    return [point for _, point in found.values()]


# --- where evidence puts a laptop -----------------------------------------------------------------


def _same_radio(a: str, b: str) -> bool:
    """Controllers give each network (SSID) of one radio its own BSSID, numbered up from the radio's
    base MAC in the last hexadecimal digit; an export may list only the base."""
    return a[:-1] == b[:-1]


def where_seen(
    public_address: str | None,
    bssids: Iterable[str],
    ranges: Sequence[DistrictRange],
    access_points: Sequence[AccessPoint],
) -> Sighting | None:
    """An access point the laptop heard (room level) first; then the district range the server saw
    its request come from (building level); None when neither is the district's."""
    heard = [b for b in (normal_bssid(text) for text in bssids) if b]
    by_bssid = {point.bssid: point for point in access_points}
    for bssid in heard:
        point = by_bssid.get(bssid)
        if point is not None:
            return Sighting(point.building, point.room, f"access point {bssid}")
    for bssid in heard:
        for point in access_points:
            if _same_radio(point.bssid, bssid):
                return Sighting(point.building, point.room, f"access point {point.bssid} (network {bssid})")
    if public_address:
        try:
            address = ipaddress.ip_address(public_address)
        except ValueError:
            return None
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        for district in ranges:
            if address.version == district.network.version and address in district.network:
                return Sighting(district.building, "", f"address {address} in {district.network}")
    return None
