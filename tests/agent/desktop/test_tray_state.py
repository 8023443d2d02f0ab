"""The tray's decisions without a display: colour, tooltip, notifications, sign-off, windows, inbox."""

from __future__ import annotations

import itertools
import json
import os
import shutil
import stat
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from agent.desktop.consent.records import SignOffLog, new_signoff
from agent.desktop.handoff import write_entry
from agent.desktop.panels import about_blocks, collects_blocks, policy_blocks, status_blocks
from agent.desktop.tray import Tray, draw_icon
from agent.desktop.tray_state import (
    NotifyMemory,
    merge_results,
    notifications,
    parse_status,
    requirement_lines,
    tray_state,
)
from contract.collected import LEVELS, NOT_COLLECTED, Level, topic_lines
from contract.policy import load_policy
from tests.helpers.paths import CONFIG

T0 = datetime(2026, 9, 1, 8, 0, tzinfo=timezone.utc)
IDS = ("disk_encryption", "firewall", "power_on_password", "antivirus", "screen_lock", "software")


def result(
    check_id: str, status: str = "pass", summary: str = "", remediation: str | None = None
) -> dict[str, Any]:
    title = check_id.replace("_", " ").capitalize()
    return {"id": check_id, "title": title, "status": status, "summary": summary, "remediation": remediation}


def all_pass() -> list[dict[str, Any]]:
    return [result(i, summary="fine") for i in IDS]


def with_status(check_id: str, status: str, summary: str = "", remediation: str | None = None) -> list[Any]:
    return [result(i, status, summary, remediation) if i == check_id else result(i) for i in IDS]


# --- colour and tooltip ---------------------------------------------------------------------------


def test_all_pass_and_signed_is_green() -> None:
    state = tray_state(all_pass(), signoff_pending=False)
    assert state.colour == "green"
    assert state.tooltip == "All 6 requirements met and the policy is signed"


def test_all_pass_but_signoff_pending_is_amber() -> None:
    state = tray_state(all_pass(), signoff_pending=True)
    assert state.colour == "amber"
    assert state.tooltip == "All 6 requirements met; the Acceptable Use Policy is waiting for your sign-off"


def test_one_fail_is_red_and_says_what() -> None:
    state = tray_state(
        with_status("firewall", "fail", "Firewall is off", "Turn it on."), signoff_pending=False
    )
    assert state.colour == "red"
    assert state.tooltip == "1 thing to fix: Firewall — Firewall is off"


def test_fail_wins_over_unknown_and_pending() -> None:
    results = with_status("firewall", "fail", "off")
    results[0] = result("disk_encryption", "unknown", "cannot tell")
    state = tray_state(results, signoff_pending=True)
    assert state.colour == "red"
    assert state.tooltip.startswith(
        "1 thing to fix: Firewall — off; 1 could not be confirmed: Disk encryption"
    )
    assert state.tooltip.endswith("the Acceptable Use Policy is waiting for your sign-off")


def test_several_failures_are_named_by_title() -> None:
    results = [result("firewall", "fail", "a"), result("antivirus", "fail", "b"), result("software")]
    assert tray_state(results, False).tooltip == "2 things to fix: Firewall, Antivirus"


@pytest.mark.parametrize("status", ["unknown", "error"])
def test_unknown_or_error_is_amber(status: str) -> None:
    state = tray_state(with_status("antivirus", status, "no answer"), signoff_pending=False)
    assert state.colour == "amber"
    assert state.tooltip == "5 of 6 requirements met; 1 could not be confirmed: Antivirus — no answer"


def test_no_results_yet_is_amber() -> None:
    assert tray_state([], signoff_pending=False) == tray_state([], False)
    state = tray_state([], signoff_pending=False)
    assert state.colour == "amber"
    assert "still checking" in state.tooltip


def test_an_unheard_of_status_counts_as_unknown() -> None:
    assert tray_state(with_status("firewall", "maybe"), False).colour == "amber"


def test_one_requirement_reads_naturally() -> None:
    assert (
        tray_state([result("firewall")], False).tooltip == "The requirement is met and the policy is signed"
    )


# --- status.json --------------------------------------------------------------------------------


def test_parse_status_keeps_well_formed_results_only() -> None:
    text = json.dumps(
        {
            "updated_at": "2026-09-01T08:00:00+00:00",
            "device_id": "d-1",
            "server_url": "https://homeroom.district.example",
            "results": [result("firewall", "fail", "off", "Turn it on."), {"no": "id"}, "junk", {"id": ""}],
        }
    )
    snapshot = parse_status(text)
    assert snapshot.device_id == "d-1"
    assert snapshot.server_url == "https://homeroom.district.example"  # what About shows
    assert [r["id"] for r in snapshot.results] == ["firewall"]
    assert snapshot.results[0]["remediation"] == "Turn it on."


@pytest.mark.parametrize("text", ["", "{", "[]", '{"results": 5}', "null"])
def test_a_damaged_status_file_reads_as_no_results(text: str) -> None:
    assert parse_status(text).results == ()


def test_the_trays_own_user_results_replace_the_services() -> None:
    service = [result("firewall"), result("screen_lock", "unknown", "no session")]
    merged = merge_results(service, [result("screen_lock", "fail", "never locks")])
    assert [(r["id"], r["status"]) for r in merged] == [("firewall", "pass"), ("screen_lock", "fail")]
    added = merge_results([result("firewall")], [result("screen_lock")])
    assert [r["id"] for r in added] == ["firewall", "screen_lock"]


# --- notifications ------------------------------------------------------------------------------


def test_a_new_failure_notifies_once_with_the_fix() -> None:
    failing = with_status("firewall", "fail", "no firewall is on", "Turn on the firewall in Settings.")
    told, memory = notifications(NotifyMemory(), failing, T0)
    assert len(told) == 1
    assert told[0].title == "Firewall needs fixing"
    assert told[0].message == "No firewall is on. Turn on the firewall in Settings."
    again, memory = notifications(memory, failing, T0 + timedelta(minutes=5))
    assert again == []
    later, _ = notifications(memory, failing, T0 + timedelta(hours=23, minutes=59))
    assert later == []


def test_a_failure_that_lasts_a_day_is_repeated_once_a_day() -> None:
    failing = with_status("firewall", "fail", "off", "Turn it on.")
    _, memory = notifications(NotifyMemory(), failing, T0)
    told, memory = notifications(memory, failing, T0 + timedelta(days=1))
    assert len(told) == 1
    quiet, _ = notifications(memory, failing, T0 + timedelta(days=1, hours=1))
    assert quiet == []


def test_fixed_then_failing_again_is_news() -> None:
    failing = with_status("firewall", "fail", "off", "Turn it on.")
    _, memory = notifications(NotifyMemory(), failing, T0)
    _, memory = notifications(memory, all_pass(), T0 + timedelta(minutes=1))
    assert memory.told_at == {}
    told, _ = notifications(memory, failing, T0 + timedelta(minutes=2))
    assert len(told) == 1


def test_a_blink_to_unknown_does_not_start_a_second_round() -> None:
    failing = with_status("firewall", "fail", "off", "Turn it on.")
    _, memory = notifications(NotifyMemory(), failing, T0)
    _, memory = notifications(memory, with_status("firewall", "unknown"), T0 + timedelta(minutes=1))
    told, _ = notifications(memory, failing, T0 + timedelta(minutes=2))
    assert told == []


def test_unknown_and_pending_never_notify() -> None:
    told, memory = notifications(NotifyMemory(), with_status("antivirus", "unknown", "?"), T0)
    assert told == []
    assert memory.told_at == {}


def test_failures_due_together_share_one_notification() -> None:
    results = [
        result("firewall", "fail", "off", "Turn on the firewall."),
        result("antivirus", "fail", "none"),
    ]
    told, memory = notifications(NotifyMemory(), results, T0)
    assert len(told) == 1
    assert told[0].title == "2 things to fix on this laptop"
    assert told[0].message == "Firewall: Turn on the firewall.\nAntivirus: None."
    assert set(memory.told_at) == {"firewall", "antivirus"}


def test_a_clock_set_back_does_not_silence_a_failure() -> None:
    failing = with_status("firewall", "fail", "off", "Turn it on.")
    _, memory = notifications(NotifyMemory(), failing, T0)
    told, _ = notifications(memory, failing, T0 - timedelta(days=30))
    assert len(told) == 1


def test_memory_round_trips_and_tolerates_damage() -> None:
    memory = NotifyMemory({"firewall": T0})
    assert NotifyMemory.from_json(json.loads(json.dumps(memory.to_json()))) == memory
    assert NotifyMemory.from_json({"failing": {"a": "not a time", "b": "2026-09-01T08:00:00"}}).told_at == {
        "b": T0
    }
    for damaged in (None, [], {"failing": 3}, "x"):
        assert NotifyMemory.from_json(damaged) == NotifyMemory()


# --- sign-off -----------------------------------------------------------------------------------


STAFF_POLICY = CONFIG / "policies" / "staff.md"


def status_with_policy(state_dir: Path, results: list[dict[str, Any]], renew_on: str = "") -> dict[str, Any]:
    """status.json as the service writes it once the server has published the staff policy."""
    (state_dir / "policies").mkdir(parents=True, exist_ok=True)
    shutil.copy(STAFF_POLICY, state_dir / "policies" / "staff.md")
    document = load_policy(STAFF_POLICY)
    status = {
        "results": results,
        "device_id": "d-1",
        "audience": "staff",
        "policies": {
            "staff": {"file": "policies/staff.md", "policy_id": document.id, "version": document.version}
        },
        "signoff": {"renew_on": renew_on, "renew_after_days": 0, "ask_again_after_hours": 0},
    }
    (state_dir / "status.json").write_text(json.dumps(status), encoding="utf-8")
    return status


def agree(user_dir: Path, at: datetime, decision: str = "agree") -> None:
    document = load_policy(STAFF_POLICY)
    record = new_signoff("pat", "Pat Doe", "d-1", document.id, document.version, decision, at)  # type: ignore[arg-type]
    SignOffLog(user_dir / "signoffs.jsonl").append(record)


def test_tray_reads_pending_from_the_policy_and_the_users_records(tmp_path: Path) -> None:
    state_dir, user_dir = tmp_path / "state", tmp_path / "user"
    status = status_with_policy(state_dir, all_pass())
    told: list[tuple[str, str]] = []
    tray = Tray(state_dir, user_dir, "pat", lambda title, message: told.append((title, message)))

    assert tray.refresh(T0).colour == "amber"
    assert tray.signoff_pending
    agree(user_dir, T0 - timedelta(days=1))
    assert tray.refresh(T0).colour == "green"
    assert tray.signed_policy == state_dir / "policies" / "staff.md"

    status["results"] = with_status("firewall", "fail", "off", "Turn it on.")
    (state_dir / "status.json").write_text(json.dumps(status), encoding="utf-8")
    assert tray.refresh(T0).colour == "red"
    assert told == [("Firewall needs fixing", "Off. Turn it on.")]
    tray.refresh(T0 + timedelta(minutes=1))
    assert len(told) == 1  # remembered in tray.json, not repeated
    assert json.loads((user_dir / "tray.json").read_text())["failing"] == {"firewall": T0.isoformat()}


def test_a_decline_or_an_expired_signoff_keeps_the_icon_amber(tmp_path: Path) -> None:
    state_dir, user_dir = tmp_path / "state", tmp_path / "user"
    status_with_policy(state_dir, all_pass(), renew_on="08-15")
    tray = Tray(state_dir, user_dir, "pat", lambda title, message: None)
    agree(user_dir, datetime(2026, 6, 1, tzinfo=timezone.utc))  # before the yearly renewal date
    assert tray.refresh(datetime(2026, 8, 1, tzinfo=timezone.utc)).colour == "green"
    assert tray.refresh(datetime(2026, 8, 16, tzinfo=timezone.utc)).colour == "amber"  # renewal is due
    agree(user_dir, datetime(2026, 8, 20, tzinfo=timezone.utc))
    assert tray.refresh(datetime(2026, 8, 21, tzinfo=timezone.utc)).colour == "green"
    agree(user_dir, datetime(2026, 8, 22, tzinfo=timezone.utc), "decline")
    assert tray.refresh(datetime(2026, 8, 23, tzinfo=timezone.utc)).colour == "amber"


def test_nothing_published_means_nothing_to_sign(tmp_path: Path) -> None:
    (tmp_path / "status.json").write_text(json.dumps({"results": all_pass(), "policies": {}}))
    tray = Tray(tmp_path, tmp_path / "user", "pat", lambda title, message: None)
    assert tray.refresh(T0).colour == "green"


# --- inbox hand-off -------------------------------------------------------------------------------


def test_inbox_records_are_whole_readable_files_with_the_kind_in_the_name(tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    os.chmod(inbox, 0o1733)  # noqa: S103 - the inbox is sticky and open to all, like /tmp
    path = write_entry(inbox, "check_now", "0a1b2c3d", {"user": "pat"})
    assert path.name.startswith("check_now-") and path.suffix == ".json"
    assert json.loads(path.read_text()) == {"kind": "check_now", "user": "pat"}
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert [p.name for p in inbox.iterdir()] == [path.name]  # no temporary file left behind


def test_check_now_without_an_inbox_is_logged_not_raised(tmp_path: Path) -> None:
    tray = Tray(tmp_path, tmp_path / "user", "pat", lambda title, message: None)
    assert tray.request_check_now() is None


def test_user_context_checks_are_handed_to_the_service(tmp_path: Path) -> None:
    (tmp_path / "inbox").mkdir()
    tray = Tray(tmp_path, tmp_path / "user", "pat", lambda title, message: None)
    path = tray.check_user_context()
    assert path is not None and path.name.startswith("user_results-")
    record = json.loads(path.read_text())
    assert record["kind"] == "user_results" and record["user"] == "pat"
    assert [r["id"] for r in record["results"]] == ["screen_lock"]
    assert tray.results()[-1]["id"] == "screen_lock"


def test_no_user_checks_enabled_means_no_record(tmp_path: Path) -> None:
    (tmp_path / "inbox").mkdir()
    (tmp_path / "server-requirements.toml").write_text('[checks]\nenabled = ["firewall"]\n')
    tray = Tray(tmp_path, tmp_path / "user", "pat", lambda title, message: None)
    assert tray.check_user_context() is None
    assert list((tmp_path / "inbox").iterdir()) == []


# --- icon and window text ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("colour", "rgb"),
    [("green", (46, 125, 50)), ("amber", (249, 168, 37)), ("red", (198, 40, 40)), ("grey", (97, 97, 97))],
)
def test_icon_is_64px_in_the_state_colour(colour: Any, rgb: tuple[int, int, int]) -> None:
    image = draw_icon(colour)
    assert image.size == (64, 64)
    assert image.getpixel((6, 32))[:3] == rgb  # type: ignore[index]
    assert image.getpixel((0, 0))[3] == 0  # type: ignore[index]  # rounded corner


def symbol_mask(colour: Any) -> set[tuple[int, int]]:
    """Where the icon's mark is drawn, colour ignored: what a person who cannot tell red from green sees."""
    image = draw_icon(colour).convert("RGB")
    background = image.getpixel((6, 32))
    return {
        (x, y)
        for y in range(64)
        for x in range(8, 56)
        if sum(abs(a - b) for a, b in zip(image.getpixel((x, y)), background, strict=True)) > 200  # type: ignore[arg-type]
    }


def test_each_state_has_its_own_symbol_not_only_its_own_colour() -> None:
    masks = {colour: symbol_mask(colour) for colour in ("green", "amber", "red", "grey")}
    for colour, mask in masks.items():
        assert len(mask) > 150, f"{colour} has a visible mark"
    for first, second in itertools.combinations(masks, 2):
        differ = len(masks[first] ^ masks[second])
        assert differ > 300, f"{first} and {second} marks differ in only {differ} pixels"
    # The red (cross) and green (tick) icons even differ in grey levels alone.
    red, green = draw_icon("red").convert("L"), draw_icon("green").convert("L")
    assert red.tobytes() != green.tobytes()


def test_status_window_lists_failures_first_with_how_to_fix() -> None:
    results = with_status("firewall", "fail", "no firewall is on", "Turn it on.")
    lines = requirement_lines(results)
    assert lines[0].title == "Firewall" and lines[0].words == "Needs fixing"
    assert all(line.how_to_fix is None for line in lines[1:])
    blocks = status_blocks({"results": results, "signoff_pending": True})
    assert ("fail", "✖ Firewall: Needs fixing") in blocks
    assert ("fix", "How to fix it: Turn it on.") in blocks
    assert any("waiting for your sign-off" in text for _, text in blocks)


@pytest.mark.parametrize("level", LEVELS)
def test_collects_window_is_the_description_of_what_is_sent(level: Level) -> None:
    """The window lists contract/collected.py's topics, in the words of the reader's level."""
    blocks = collects_blocks(level)
    assert [text for style, text in blocks if style == "bullet"] == topic_lines(level)
    assert ("body", NOT_COLLECTED[level]) in blocks
    text = " ".join(t for _, t in blocks)
    for words in ("disk encryption", "firewall", "power-on password", "antivirus", "screen lock", "software"):
        assert words in text
    for words in (
        "serial number",
        "account names that",
        "version",
        "files",
        "e-mail",
        "camera",
        "microphone",
    ):
        assert words in text
    # Lost mode's evidence is listed with its condition, and "not collected" keeps the condition.
    assert "wi-fi" in text.lower() and "only" in text.lower()
    assert NOT_COLLECTED[level].startswith(("Outside lost mode", "Unless it is lost"))


def test_about_and_policy_text() -> None:
    assert ("bullet", "Device id: d-1") in about_blocks("0.1.0", "https://hr.example", "d-1")
    blocks = policy_blocks(
        "+++\nid = 'x'\n+++\n# Title\n\nI will **care** for\nmy laptop.\n\n## Rules\n- one\n"
    )
    assert blocks == [
        ("heading", "Title"),
        ("body", "I will care for my laptop."),
        ("subheading", "Rules"),
        ("bullet", "one"),
    ]


# --- a stopped service, a failing backend, a hidden Quit ---------------------------------------------


def test_a_stale_status_shows_homeroom_is_not_running(tmp_path: Path) -> None:
    status = {"updated_at": T0.isoformat(), "results": all_pass(), "policies": {}}
    (tmp_path / "status.json").write_text(json.dumps(status))
    tray = Tray(tmp_path, tmp_path / "user", "pat", lambda title, message: None)
    assert tray.refresh(T0 + timedelta(minutes=2)).colour == "green"
    stopped = tray.refresh(T0 + timedelta(minutes=11))
    assert (stopped.colour, stopped.tooltip) == ("grey", "Homeroom is not running — tell IT")


def test_no_status_at_all_for_ten_minutes_is_not_running_either(tmp_path: Path) -> None:
    tray = Tray(tmp_path, tmp_path / "user", "pat", lambda title, message: None)
    assert tray.refresh(tray.started_at + timedelta(minutes=1)).colour == "amber"  # still starting
    assert tray.refresh(tray.started_at + timedelta(minutes=11)).colour == "grey"


def test_the_service_rewrites_status_so_a_running_service_never_looks_stale(state_dir: Path) -> None:
    from tests.helpers.agent_service import Clock, service

    loop = service(state_dir, Clock())
    loop.cycle(send=False)
    first = json.loads((state_dir / "status.json").read_text())["updated_at"]
    loop._status_written_at -= 61  # a minute has passed since it was written
    loop.cycle(send=False)  # no check is due, but the status is refreshed
    again = json.loads((state_dir / "status.json").read_text())
    assert again["updated_at"] > first and again["results"], "refreshed, results kept"


def test_a_backend_that_fails_to_show_a_state_is_logged_and_the_polling_goes_on(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """pystray's dummy backend (it draws nothing), with a title update that fails as the xorg one did
    (Latin-1 only); the real xorg backend is in test_tray_xorg.py."""
    monkeypatch.setenv("PYSTRAY_BACKEND", "dummy")  # no display here
    from pystray._dummy import Icon as DummyIcon

    from agent.desktop.tray import refresh_icon
    from agent.desktop.tray_state import TrayState

    class Latin1Icon(DummyIcon):  # type: ignore[misc]
        def _update_title(self) -> None:
            self.title.encode("latin-1")

        def _update_icon(self) -> None:  # the dummy backend draws nothing
            pass

        def _show(self) -> None:
            pass

        def _hide(self) -> None:
            pass

    icon = Latin1Icon("homeroom", draw_icon("amber"), "starting")
    icon.visible = True
    status = {"updated_at": datetime.now(timezone.utc).isoformat(), "results": all_pass(), "policies": {}}
    status["results"][0] = {**status["results"][0], "status": "fail", "summary": "Ферма — выключена"}
    (tmp_path / "status.json").write_text(json.dumps(status))
    tray = Tray(tmp_path, tmp_path / "user", "pat", lambda title, message: None)
    shown = refresh_icon(icon, tray, TrayState("amber", "starting"))
    assert shown.colour == "red" and "could not show red" in caplog.text
    status["results"] = all_pass()
    (tmp_path / "status.json").write_text(json.dumps(status))
    assert refresh_icon(icon, tray, shown).colour == "green", "the next poll still happens"
    (tmp_path / "status.json").unlink()
    (tmp_path / "status.json").mkdir()  # unreadable: read as "no results yet", not a crash
    assert refresh_icon(icon, tray, shown).colour == "amber"


def test_agent_toml_can_hide_quit(tmp_path: Path) -> None:
    from agent.desktop.tray import MENU_QUIT, load_show_quit, menu_names

    hidden = tmp_path / "agent.toml"
    hidden.write_text("[tray]\nshow_quit = false\n")
    assert load_show_quit(hidden) is False and MENU_QUIT not in menu_names(False)
    assert menu_names(True)[-1] == MENU_QUIT
    broken = tmp_path / "broken.toml"
    broken.write_text('[tray]\nshow_quit = "no"\n')
    assert load_show_quit(broken) is True  # logged; the default stands
