"""The district's networks, read from the files IT has: ranges, access-point exports in the header
spellings controllers use, every mistake named by its line; and where evidence puts a laptop."""

from __future__ import annotations

import ipaddress

import pytest

from server.errors import CommandError
from server.lost.networks import (
    AccessPoint,
    DistrictRange,
    normal_bssid,
    parse_access_points,
    parse_ranges,
    where_seen,
)


def test_ranges_read_with_comments_a_header_and_any_separator() -> None:
    text = (
        "# district ranges, from the network team\n"
        "network,building\n"
        "10.12.0.0/16, Lincoln High\n"
        "203.0.113.0/24\tDistrict Office   # the NAT pool\n"
        "\n"
        "2001:db8:12::/48   Roosevelt   Elementary\n"
    )
    assert parse_ranges("ranges.txt", text) == [
        DistrictRange(ipaddress.ip_network("10.12.0.0/16"), "Lincoln High"),
        DistrictRange(ipaddress.ip_network("203.0.113.0/24"), "District Office"),
        DistrictRange(ipaddress.ip_network("2001:db8:12::/48"), "Roosevelt Elementary"),
    ]


@pytest.mark.parametrize(
    ("text", "said"),
    [
        (
            "10.12.0.0/16 Lincoln High\n10.12.0.1/16 Lincoln High\n",
            "ranges.txt, line 2: 10.12.0.1/16 has host bits set: did you mean 10.12.0.0/16?",
        ),
        (
            "10.12.0.0/16 Lincoln High\n\n10.300.0.0/16 Roosevelt\n",
            "line 3: '10.300.0.0/16' is not an address range",
        ),
        ("10.12.0.0/16\n", "line 1: 10.12.0.0/16 has no building"),
        ("# nothing\n", "no address ranges in it"),
    ],
)
def test_a_bad_range_names_its_line_and_the_fix(text: str, said: str) -> None:
    with pytest.raises(CommandError) as caught:
        parse_ranges("ranges.txt", text)
    assert said in str(caught.value)


@pytest.mark.parametrize(
    "written",
    ["00:1A:2B:3C:4D:5E", "00-1a-2b-3c-4d-5e", "001a.2b3c.4d5e", "001A2B3C4D5E", r"00\:1A\:2B\:3C\:4D\:5E"],
)
def test_bssids_in_every_spelling_are_one(written: str) -> None:
    assert normal_bssid(written) == "00:1a:2b:3c:4d:5e"


def test_not_a_bssid() -> None:
    assert normal_bssid("00:1a:2b:3c:4d") is None
    assert normal_bssid("zz:1a:2b:3c:4d:5e") is None


# Header spellings of the usual controller exports (each with its own column order and extra columns).
EXPORTS = [
    "BSSID,Building,Room\n00:1A:2B:3C:4D:5E,Lincoln High,Library\n",
    "AP Name,Base Radio MAC,Location,Model\nLibrary,001a.2b3c.4d5e,Lincoln High,AIR-AP2802I\n",
    "Name,Serial,MAC address,Site\nLibrary,Q2XX-1234,00-1A-2B-3C-4D-5E,Lincoln High\n",
    "\ufeffmac;site_name;room_name\n001A2B3C4D5E;Lincoln High;Library\n",
    "RADIO_MAC\tBUILDING\tAREA\n00:1a:2b:3c:4d:5e\tLincoln High\tLibrary\n",
]


@pytest.mark.parametrize("export", EXPORTS)
def test_access_points_from_each_controllers_header(export: str) -> None:
    assert parse_access_points("aps.csv", export) == [
        AccessPoint("00:1a:2b:3c:4d:5e", "Lincoln High", "Library")
    ]


def test_a_room_column_is_optional() -> None:
    assert parse_access_points("aps.csv", "bssid,site\n00:1a:2b:3c:4d:5e,Lincoln High\n") == [
        AccessPoint("00:1a:2b:3c:4d:5e", "Lincoln High", "")
    ]


@pytest.mark.parametrize(
    ("text", "said"),
    [
        (
            "Serial,Model\nQ2XX,MR46\n",
            "aps.csv, line 1: the header lacks a BSSID column and a building column",
        ),
        (
            "bssid,building,room\n00:1a:2b:3c:4d:5e,Lincoln,Library\nnot-a-mac,Lincoln,Gym\n",
            "aps.csv, line 3: 'not-a-mac' is not a BSSID",
        ),
        ("bssid,building,room\n00:1a:2b:3c:4d:5e,,Library\n", "line 2: 00:1a:2b:3c:4d:5e has no building"),
        (
            "bssid,building,room\n00:1a:2b:3c:4d:5e,Lincoln,Library\n00:1A:2B:3C:4D:5E,Lincoln,Gym\n",
            "line 3: 00:1a:2b:3c:4d:5e is also on line 2, somewhere else",
        ),
        ("bssid,building,room\n", "no access points in it"),
        ("", "the file is empty"),
    ],
)
def test_a_bad_export_names_its_line(text: str, said: str) -> None:
    with pytest.raises(CommandError) as caught:
        parse_access_points("aps.csv", text)
    assert said in str(caught.value)


RANGES = [
    DistrictRange(ipaddress.ip_network("10.12.0.0/16"), "Lincoln High"),
    DistrictRange(ipaddress.ip_network("2001:db8:12::/48"), "Roosevelt Elementary"),
]
POINTS = [
    AccessPoint("00:1a:2b:3c:4d:50", "Lincoln High", "Library"),
    AccessPoint("00:1a:2b:3c:99:00", "Roosevelt Elementary", "Gym"),
]


def test_an_access_point_heard_puts_the_laptop_in_a_room() -> None:
    seen = where_seen("198.51.100.7", ["AA:BB:CC:DD:EE:FF", "00:1A:2B:3C:4D:50"], RANGES, POINTS)
    assert seen is not None and seen.words == "seen near Lincoln High, Library"
    # Another network (SSID) of the same radio: the BSSID one up from the base the export lists.
    other_ssid = where_seen(None, ["00:1a:2b:3c:4d:53"], RANGES, POINTS)
    assert other_ssid is not None and other_ssid.words == "seen near Lincoln High, Library"


def test_a_district_address_puts_it_in_a_building_and_nothing_else_does() -> None:
    by_range = where_seen("10.12.4.20", ["aa:bb:cc:dd:ee:ff"], RANGES, POINTS)
    assert (
        by_range is not None and by_range.words == "seen near Lincoln High" and "10.12.0.0/16" in by_range.by
    )
    v6 = where_seen("2001:db8:12::5", [], RANGES, POINTS)
    assert v6 is not None and v6.building == "Roosevelt Elementary"
    mapped = where_seen("::ffff:10.12.0.9", [], RANGES, POINTS)
    assert mapped is not None and mapped.building == "Lincoln High"
    assert where_seen("198.51.100.7", ["aa:bb:cc:dd:ee:ff", "garbage"], RANGES, POINTS) is None
    assert where_seen("not an address", [], RANGES, POINTS) is None
    assert where_seen(None, [], [], []) is None
