"""Lost and stolen laptops: the words both ends agree on, and the shape of what crosses the wire.

A report is typed by a person in the tray, checked there (a clear message), checked again by the
service as hostile input (anyone on the laptop can write to the inbox) and a third time by the
server's schema; all three use these limits. Lost mode is entered only on a *signed* heartbeat
answer that carries `lost_mode`, so nobody on the school network can switch a laptop into
collecting location evidence, and nothing here is collected or sent outside it.

Wire shapes (JSON; times are ISO 8601 with a zone):

Agent -> server, ``POST /api/v1/lost-reports`` (signed by the device key, queued in the outbox)::

    {"record_id": RecordId, "reporter": Account, "reporter_name": str, "contact": str,
     "device": {"by": "this" | "serial" | "asset_tag" | "hostname", "value": str},
     "kind": "lost" | "stolen", "last_seen_at": datetime | null, "last_seen_where": str,
     "what_happened": str, "police_report": str | null, "made_at": datetime}

  answer: ``{"record_id", "stored": bool, "duplicate": bool, "outcome": Outcome,
  "message": str, "closest": [str]}`` — `closest` names the devices nearest an unknown
  serial, asset tag or hostname.

Server -> agent, in the heartbeat answer, only while the device is lost (or in a drill)::

    "lost_mode": {"case_id": str, "since": datetime, "interval_seconds": int,
                  "notice": str | null, "lock_screen": bool, "drill": bool}

  Absent or null: not lost, and the agent leaves lost mode.

Agent -> server, ``POST /api/v1/lost-evidence`` (signed), every `interval_seconds` in lost mode::

    {"record_id": RecordId, "case_id": str, "collected_at": datetime,
     "local_addresses": [str], "gateway": str | null,
     "wifi": [{"bssid": str, "ssid": str, "signal": int | null, "channel": int | null}],
     "logged_in_user": str | null, "uptime_seconds": int | null, "unseen": [str]}

  `unseen` says, in words, what could not be collected and why (no Wi-Fi adapter, no permission).
  The server adds the public address it saw the request come from.
"""

from __future__ import annotations

from typing import Literal

Kind = Literal["lost", "stolen"]
KINDS: tuple[Kind, ...] = ("lost", "stolen")

DeviceBy = Literal["this", "serial", "asset_tag", "hostname"]
DEVICE_BY: tuple[DeviceBy, ...] = ("this", "serial", "asset_tag", "hostname")

# The server's record of a device, changed only by IT (a user's report makes it "reported").
Status = Literal["reported", "confirmed_lost", "confirmed_stolen", "recovered", "written_off"]
STATUSES: tuple[Status, ...] = ("reported", "confirmed_lost", "confirmed_stolen", "recovered", "written_off")
# Statuses in which the laptop is in lost mode.
LOST_STATUSES: frozenset[Status] = frozenset({"reported", "confirmed_lost", "confirmed_stolen"})

# What the server made of a user's report.
Outcome = Literal["recorded", "unknown_device", "already_reported", "already_recovered"]

REPORTER_NAME_MAX = 200
CONTACT_MAX = 300
DEVICE_VALUE_MAX = 200
WHERE_MAX = 500
WHAT_HAPPENED_MAX = 4000
POLICE_REPORT_MAX = 100
NOTICE_MAX = 2000

DEFAULT_INTERVAL_SECONDS = 120
MIN_INTERVAL_SECONDS = 30
MAX_INTERVAL_SECONDS = 3600

WIFI_MAX = 100  # networks per evidence record
ADDRESSES_MAX = 50
