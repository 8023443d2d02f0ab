"""When the sign-off dialog is shown, and why: the pure rules, with many edges of time."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from agent.desktop.consent.decide import (
    MESSAGES,
    Renewal,
    SignOff,
    expires_at,
    is_acceptable_name,
    is_signed,
    normalise_full_name,
    signoff_prompt,
)

UTC = timezone.utc
CHICAGO = ZoneInfo("America/Chicago")
POLICY = "staff-aup"
V1, V2 = "a" * 64, "b" * 64
NO_RENEWAL = Renewal()
SCHOOL_YEAR = Renewal(yearly_on=(8, 15))


def signoff(
    decision: str = "agree",
    at: datetime = datetime(2026, 6, 1, 12, tzinfo=UTC),
    version: str = V1,
    policy_id: str = POLICY,
    record_id: str = "r1",
) -> SignOff:
    return SignOff(
        record_id=record_id,
        user="ada",
        full_name="Ada Lovelace",
        device_id="dev-1",
        policy_id=policy_id,
        policy_version=version,
        decision=decision,  # type: ignore[arg-type]
        decided_at=at,
    )


def reason(records: list[SignOff], now: datetime, renewal: Renewal = NO_RENEWAL, **kw: object) -> str | None:
    at_login = bool(kw.get("at_login", False))
    version = str(kw.get("version", V1))
    prompt = signoff_prompt(records, POLICY, version, renewal, now, at_login=at_login)
    return None if prompt is None else prompt.reason


NOW = datetime(2026, 7, 1, 9, tzinfo=UTC)

# --- first, changed, signed ------------------------------------------------------------------


def test_nothing_recorded_is_the_first_time() -> None:
    prompt = signoff_prompt([], POLICY, V1, NO_RENEWAL, NOW, at_login=False)
    assert prompt is not None and prompt.reason == "first"
    assert prompt.message == MESSAGES["first"].format(title="the Acceptable Use Policy")
    assert "Welcome" in prompt.message


def test_an_agreement_to_this_version_means_no_prompt() -> None:
    assert reason([signoff()], NOW) is None
    assert reason([signoff()], NOW, at_login=True) is None


def test_an_agreement_to_an_older_version_means_it_changed() -> None:
    assert reason([signoff(version=V1)], NOW, version=V2) == "changed"


def test_an_agreement_to_another_policy_does_not_count() -> None:
    assert reason([signoff(policy_id="student-aup")], NOW) == "first"


def test_only_declines_of_an_older_version_is_still_the_first_time() -> None:
    assert reason([signoff("decline", version=V1)], NOW, version=V2) == "first"


def test_records_in_any_order() -> None:
    older = signoff(version=V1, at=datetime(2026, 1, 1, tzinfo=UTC), record_id="a")
    newer = signoff(version=V2, at=datetime(2026, 3, 1, tzinfo=UTC), record_id="b")
    assert reason([newer, older], NOW, version=V2) is None
    assert reason([older, newer], NOW, version=V2) is None


# --- renewal --------------------------------------------------------------------------------


def test_yearly_renewal_example_from_the_issue() -> None:
    signed = signoff(at=datetime(2026, 6, 1, 12, tzinfo=UTC))
    assert expires_at(signed.decided_at, SCHOOL_YEAR) == datetime(2026, 8, 15, tzinfo=UTC)
    assert reason([signed], datetime(2026, 8, 14, 23, 59, 59, tzinfo=UTC), SCHOOL_YEAR) is None
    assert reason([signed], datetime(2026, 8, 15, tzinfo=UTC), SCHOOL_YEAR) == "renewal"


def test_signed_on_or_after_the_renewal_date_lasts_until_next_year() -> None:
    on_the_day = signoff(at=datetime(2026, 8, 15, 8, tzinfo=UTC))
    assert expires_at(on_the_day.decided_at, SCHOOL_YEAR) == datetime(2027, 8, 15, tzinfo=UTC)
    in_autumn = signoff(at=datetime(2026, 10, 1, tzinfo=UTC))
    assert reason([in_autumn], datetime(2027, 8, 14, tzinfo=UTC), SCHOOL_YEAR) is None
    assert reason([in_autumn], datetime(2027, 8, 15, tzinfo=UTC), SCHOOL_YEAR) == "renewal"


def test_yearly_date_is_local_midnight_in_the_zone_of_now() -> None:
    signed = signoff(at=datetime(2026, 6, 1, tzinfo=UTC))
    local_midnight = datetime(2026, 8, 15, tzinfo=CHICAGO)  # 05:00 UTC (daylight time)
    assert reason([signed], local_midnight - timedelta(seconds=1), SCHOOL_YEAR) is None
    assert reason([signed], local_midnight, SCHOOL_YEAR) == "renewal"
    # The same instant seen from UTC is already past midnight there: expired in UTC's reading.
    assert reason([signed], (local_midnight - timedelta(hours=1)).astimezone(UTC), SCHOOL_YEAR) == "renewal"


def test_signed_late_evening_local_is_that_local_day() -> None:
    # 14 August 23:30 in Chicago is 15 August 04:30 UTC: locally it was before the renewal date.
    signed_at = datetime(2026, 8, 14, 23, 30, tzinfo=CHICAGO)
    assert expires_at(signed_at, SCHOOL_YEAR, CHICAGO) == datetime(2026, 8, 15, tzinfo=CHICAGO)
    assert expires_at(signed_at, SCHOOL_YEAR, UTC) == datetime(2027, 8, 15, tzinfo=UTC)


def test_leap_day_renewal_falls_on_28_february_in_common_years() -> None:
    leap = Renewal(yearly_on=(2, 29))
    assert expires_at(datetime(2026, 3, 1, tzinfo=UTC), leap) == datetime(2027, 2, 28, tzinfo=UTC)
    assert expires_at(datetime(2027, 3, 1, tzinfo=UTC), leap) == datetime(2028, 2, 29, tzinfo=UTC)


def test_every_days_expires_exactly_that_long_after_signing() -> None:
    renewal = Renewal(every_days=30)
    signed = signoff(at=datetime(2026, 6, 1, 12, tzinfo=UTC))
    assert reason([signed], datetime(2026, 7, 1, 11, 59, tzinfo=UTC), renewal) is None
    assert reason([signed], datetime(2026, 7, 1, 12, tzinfo=UTC), renewal) == "renewal"


def test_with_both_rules_the_earlier_expiry_wins() -> None:
    both = Renewal(yearly_on=(8, 15), every_days=365)
    assert expires_at(datetime(2026, 6, 1, tzinfo=UTC), both) == datetime(2026, 8, 15, tzinfo=UTC)
    short = Renewal(yearly_on=(8, 15), every_days=10)
    assert expires_at(datetime(2026, 6, 1, tzinfo=UTC), short) == datetime(2026, 6, 11, tzinfo=UTC)


def test_no_renewal_never_expires() -> None:
    assert expires_at(datetime(2000, 1, 1, tzinfo=UTC), NO_RENEWAL) is None
    assert reason([signoff(at=datetime(2000, 1, 1, tzinfo=UTC))], NOW) is None


def test_a_fresh_agreement_after_expiry_counts() -> None:
    old = signoff(at=datetime(2025, 6, 1, tzinfo=UTC), record_id="old")
    renewed = signoff(at=datetime(2026, 8, 20, tzinfo=UTC), record_id="new")
    assert reason([renewed, old], datetime(2026, 9, 1, tzinfo=UTC), SCHOOL_YEAR) is None


def test_an_expired_agreement_to_an_older_version_is_a_change_not_a_renewal() -> None:
    old = signoff(at=datetime(2025, 6, 1, tzinfo=UTC), version=V1)
    assert reason([old], datetime(2026, 9, 1, tzinfo=UTC), SCHOOL_YEAR, version=V2) == "changed"


# --- declined -------------------------------------------------------------------------------


def test_declined_is_asked_again_at_login_only_by_default() -> None:
    declined = signoff("decline", at=datetime(2026, 7, 1, 8, tzinfo=UTC))
    assert reason([declined], NOW) is None
    assert reason([declined], NOW + timedelta(days=30)) is None
    assert reason([declined], NOW, at_login=True) == "declined"


def test_declined_is_asked_again_after_the_district_interval() -> None:
    renewal = Renewal(decline_retry_hours=4)
    declined_at = datetime(2026, 7, 1, 8, tzinfo=UTC)
    declined = signoff("decline", at=declined_at)
    assert reason([declined], declined_at + timedelta(hours=3, minutes=59), renewal) is None
    assert reason([declined], declined_at + timedelta(hours=4), renewal) == "declined"


def test_declined_message_is_friendly() -> None:
    prompt = signoff_prompt([signoff("decline")], POLICY, V1, NO_RENEWAL, NOW, at_login=True)
    assert prompt is not None and "questions" in prompt.message and "not agreed" in prompt.message


def test_the_latest_decision_about_this_version_decides() -> None:
    agree = signoff("agree", at=datetime(2026, 6, 1, tzinfo=UTC), record_id="a")
    decline = signoff("decline", at=datetime(2026, 6, 2, tzinfo=UTC), record_id="d")
    assert reason([agree, decline], NOW, at_login=True) == "declined"
    again = signoff("agree", at=datetime(2026, 6, 3, tzinfo=UTC), record_id="b")
    assert reason([again, agree, decline], NOW, at_login=True) is None


def test_equal_times_go_to_the_later_record() -> None:
    at = datetime(2026, 6, 1, tzinfo=UTC)
    agree, decline = signoff("agree", at=at, record_id="a"), signoff("decline", at=at, record_id="d")
    assert reason([agree, decline], NOW, at_login=True) == "declined"
    assert reason([decline, agree], NOW, at_login=True) is None


def test_a_decline_after_an_expired_agreement_is_declined() -> None:
    agree = signoff("agree", at=datetime(2025, 6, 1, tzinfo=UTC), record_id="a")
    decline = signoff("decline", at=datetime(2026, 8, 16, tzinfo=UTC), record_id="d")
    later = datetime(2026, 8, 17, tzinfo=UTC)
    assert reason([agree, decline], later, SCHOOL_YEAR) is None
    assert reason([agree, decline], later, SCHOOL_YEAR, at_login=True) == "declined"


def test_times_in_different_zones_compare_as_instants() -> None:
    signed = signoff(at=datetime(2026, 6, 1, 12, tzinfo=ZoneInfo("Pacific/Auckland")), record_id="nz")
    renewal = Renewal(every_days=1)
    assert reason([signed], datetime(2026, 6, 1, 23, 59, tzinfo=UTC), renewal) is None
    assert reason([signed], datetime(2026, 6, 2, 0, 0, tzinfo=UTC), renewal) == "renewal"


def test_is_signed_matches_the_tray_colour_rule() -> None:
    assert is_signed([signoff()], POLICY, V1, NO_RENEWAL, NOW)
    assert not is_signed([], POLICY, V1, NO_RENEWAL, NOW)
    assert not is_signed([signoff("decline")], POLICY, V1, NO_RENEWAL, NOW)
    assert not is_signed([signoff()], POLICY, V2, NO_RENEWAL, NOW)


def test_naive_now_is_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        signoff_prompt([], POLICY, V1, NO_RENEWAL, datetime(2026, 1, 1), at_login=True)


# --- records and rules validate themselves --------------------------------------------------


def test_signoff_round_trips_through_json_in_utc() -> None:
    original = signoff(at=datetime(2026, 6, 1, 7, tzinfo=CHICAGO))
    data = original.to_json()
    assert data["decided_at"] == "2026-06-01T12:00:00+00:00"
    again = SignOff.from_json(data)
    assert again == original and again.decided_at.tzinfo == UTC


@pytest.mark.parametrize(
    "change",
    [
        {"decision": "maybe"},
        {"decided_at": "2026-06-01T12:00:00"},
        {"decided_at": "yesterday"},
        {"record_id": "../../etc/passwd"},
        {"record_id": ""},
        {"user": 7},
        {"device_id": 7},
        {"policy_version": ""},
    ],
)
def test_malformed_records_raise_value_error(change: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        SignOff.from_json({**signoff().to_json(), **change})


def test_missing_field_is_a_value_error() -> None:
    data = signoff().to_json()
    del data["policy_id"]
    with pytest.raises(ValueError, match="not a sign-off record"):
        SignOff.from_json(data)


def test_device_id_may_be_unknown() -> None:
    data = {**signoff().to_json(), "device_id": None}
    assert SignOff.from_json(data).device_id is None


@pytest.mark.parametrize(
    "renewal",
    [
        {"yearly_on": (13, 1)},
        {"yearly_on": (2, 30)},
        {"yearly_on": (4, 31)},
        {"every_days": 0},
        {"decline_retry_hours": 0},
    ],
)
def test_impossible_renewal_rules_are_refused(renewal: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        Renewal(**renewal)  # type: ignore[arg-type]


# --- full names -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "typed",
    [
        "Ada Lovelace",
        "  Ada   Lovelace ",
        "José Álvarez",
        "Mary-Jane O'Brien",
        "Nguyễn Văn An",
        "John Smith Jr.",
        "Sukarno",  # people with one name
        "Ada",
        "Bo",
        "Ólafsdóttir",
    ],
)
def test_names_that_unlock_agree(typed: str) -> None:
    assert is_acceptable_name(typed)


@pytest.mark.parametrize("typed", ["", "A", "é", "   ", "Ada 123", "a@b.c d", "- -", "Ada L0velace", "A."])
def test_not_names(typed: str) -> None:
    assert not is_acceptable_name(typed)


def test_names_are_recorded_with_single_spaces() -> None:
    assert normalise_full_name("  Ada \t Lovelace\n") == "Ada Lovelace"


def test_the_opening_sentence_names_the_document_by_its_own_title() -> None:
    title = "My School Laptop Promise"
    for records, at_login in (([], False), ([signoff(decision="decline")], True)):
        prompt = signoff_prompt(records, POLICY, V1, Renewal(), NOW, at_login, title=title)
        assert prompt is not None and f"“{title}”" in prompt.message
        assert "Acceptable Use Policy" not in prompt.message
