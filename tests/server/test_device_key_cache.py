"""The device-key cache of one server process: keys are used for `cache_seconds`, then read again, and
they leave memory when their time is past. A district's every laptop passes through the cache in 15
minutes: kept for ever, a million keys would sit in every worker process."""

from __future__ import annotations

from types import SimpleNamespace

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from contract.wire import public_key_text, signed_headers
from server.auth import DeviceAuthenticator, DeviceRecord, SignedRequest

PATH = "/api/v1/heartbeat"


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


class Fleet:
    """Devices with keys, and a lookup that counts how often the database would be read."""

    def __init__(self, size: int) -> None:
        self.keys = {f"dev-{number:03}": Ed25519PrivateKey.generate() for number in range(size)}
        self.reads = 0

    def lookup(self, device_id: str) -> DeviceRecord | None:
        self.reads += 1
        key = self.keys.get(device_id)
        if key is None:
            return None
        row = SimpleNamespace(
            id=device_id,
            group_name="",
            public_key=public_key_text(key),
            claims_pending=False,
            commands_pending=False,
            lost_case_id=None,
            previous_public_key=None,
            previous_key_until=None,
        )
        return DeviceRecord(row)  # type: ignore[arg-type]

    def request(self, device_id: str, now: float) -> SignedRequest:
        body = b"{}"
        headers = signed_headers(self.keys[device_id], device_id, "POST", PATH, body, now)
        return SignedRequest.from_headers(headers, "POST", PATH, body)

    def every_device_sends(self, authenticator: DeviceAuthenticator, now: float) -> None:
        for device_id in self.keys:
            authenticator.verify(self.request(device_id, now), self.lookup)


def test_a_key_is_used_for_its_time_then_read_again() -> None:
    clock, fleet = Clock(), Fleet(1)
    authenticator = DeviceAuthenticator(300, 30, clock=clock)
    authenticator.verify(fleet.request("dev-000", clock.now), fleet.lookup)
    assert fleet.reads == 1 and authenticator.is_cached("dev-000")
    clock.now += 29
    authenticator.verify(fleet.request("dev-000", clock.now), fleet.lookup)
    assert fleet.reads == 1  # from the cache
    clock.now += 2
    assert not authenticator.is_cached("dev-000")
    authenticator.verify(fleet.request("dev-000", clock.now), fleet.lookup)
    assert fleet.reads == 2


def test_keys_past_their_time_leave_memory() -> None:
    clock, fleet = Clock(), Fleet(40)
    authenticator = DeviceAuthenticator(300, 30, clock=clock)
    fleet.every_device_sends(authenticator, clock.now)
    assert authenticator.cached_devices() == 40
    clock.now += 31  # every key is past its time; the next one remembered sweeps them
    authenticator.verify(fleet.request("dev-007", clock.now), fleet.lookup)
    assert authenticator.cached_devices() == 1
    assert authenticator.is_cached("dev-007") and not authenticator.is_cached("dev-008")


def test_a_sweep_keeps_the_keys_still_in_their_time() -> None:
    clock, fleet = Clock(), Fleet(4)
    authenticator = DeviceAuthenticator(300, 30, clock=clock)
    authenticator.verify(fleet.request("dev-000", clock.now), fleet.lookup)
    clock.now += 20
    authenticator.verify(fleet.request("dev-001", clock.now), fleet.lookup)
    clock.now += 15  # dev-000 is 35 s old, dev-001 15 s
    authenticator.verify(fleet.request("dev-002", clock.now), fleet.lookup)
    assert authenticator.cached_devices() == 2
    assert authenticator.is_cached("dev-001") and authenticator.is_cached("dev-002")


def test_with_the_cache_off_no_key_is_kept() -> None:
    clock, fleet = Clock(), Fleet(10)
    authenticator = DeviceAuthenticator(300, 0, clock=clock)
    fleet.every_device_sends(authenticator, clock.now)
    assert authenticator.cached_devices() == 0
    assert fleet.reads == 10
