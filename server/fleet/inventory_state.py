"""A device's stored inventory state as a report reads it: which report it came from, and the digest,
size and bytes' digest of its list (`server.fleet.software_inventory`, `server.fleet.report_body`).

Its own module because both the roll-up's read (`server.fleet.counted`, which reads it in the same
statement as the device's counted state) and the inventory code use it, and the roll-up cannot
import the inventory code (that imports `server.auth`, which imports the roll-up).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class InventoryState:
    reported_at: datetime
    digest: str
    items: int
    listed_digest: str | None
    listed_length: int | None
