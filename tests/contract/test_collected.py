"""The one description of what the agent sends: complete, consistent, and able to catch a new field."""

from __future__ import annotations

from typing import Any, get_args, get_origin

import pytest
from pydantic import BaseModel

from contract.collected import (
    CHECK_EVIDENCE,
    KINDS,
    LOST_MODE_ONLY,
    OPEN_FIELDS,
    TOPIC_IDS,
    kind_for_endpoint,
    main,
    policy_section,
    undescribed_fields,
)
from contract.requirements import CHECK_IDS
from server.api.schemas import (
    ApprovalRequestIn,
    EnrolIn,
    HeartbeatIn,
    LostEvidenceIn,
    LostReportIn,
    ReportIn,
    SignOffIn,
)


def test_every_field_has_when_why_and_a_topic_people_read() -> None:
    for kind in KINDS.values():
        assert kind.when and kind.endpoint.startswith("/")
        for field in kind.fields:
            assert field.when and field.why, field
            assert field.topic in TOPIC_IDS, field


def test_every_check_documents_its_evidence() -> None:
    assert set(CHECK_EVIDENCE) == set(CHECK_IDS)


def _model_paths(model: type[BaseModel], prefix: str = "") -> set[str]:
    """Every field path the server's schema accepts, walking nested models and lists of them."""
    paths: set[str] = set()
    for name, info in model.model_fields.items():
        path = f"{prefix}{name}"
        paths.add(path)
        annotation: Any = info.annotation
        options = [annotation] if get_origin(annotation) is list else [annotation, *get_args(annotation)]
        for candidate in options:
            inner = f"{path}."
            if get_origin(candidate) is list and get_args(candidate):
                candidate, inner = get_args(candidate)[0], f"{path}[]."
            if isinstance(candidate, type) and issubclass(candidate, BaseModel) and path not in OPEN_FIELDS:
                paths |= _model_paths(candidate, inner)
    return paths


@pytest.mark.parametrize(
    ("kind", "model"),
    [
        ("enrol", EnrolIn),
        ("report", ReportIn),
        ("heartbeat", HeartbeatIn),
        ("signoff", SignOffIn),
        ("approval_request", ApprovalRequestIn),
        ("lost_report", LostReportIn),
        ("lost_evidence", LostEvidenceIn),
    ],
)
def test_the_description_covers_everything_the_server_accepts(kind: str, model: type[BaseModel]) -> None:
    """Anything the server would take is described: an agent cannot send a field nobody was told of."""
    assert _model_paths(model) <= KINDS[kind].paths(), _model_paths(model) - KINDS[kind].paths()


def test_an_undescribed_field_is_caught_at_any_depth() -> None:
    report = KINDS["report"]
    body = {
        "report_id": "r",
        "identity": {"serial": "S1", "gps": [1, 2]},
        "results": [{"id": "firewall", "evidence": {"anything": {"deep": 1}}, "secret": "x"}],
        "software": [{"name": "vim", "licence_key": "k"}],
        "browser_history": [],
    }
    assert undescribed_fields(report, body) == [
        "browser_history",
        "identity.gps",
        "results[].secret",
        "software[].licence_key",
    ]
    assert undescribed_fields(KINDS["heartbeat"], {"heartbeat_id": "h", "dropped": {"report": 2}}) == []


def test_endpoints_map_to_kinds() -> None:
    assert kind_for_endpoint("/reports") is KINDS["report"]
    assert kind_for_endpoint("/signoffs") is KINDS["signoff"]
    assert kind_for_endpoint("/lost-reports") is KINDS["lost_report"]
    assert kind_for_endpoint("/lost-evidence") is KINDS["lost_evidence"]
    assert kind_for_endpoint("/lost") is None  # a future kind must be described before it is sent


def test_the_lost_mode_fields_are_described_as_sent_only_in_lost_mode() -> None:
    """contract/lost.py's evidence shape, field by field, each said to be sent only in lost mode."""
    evidence = KINDS["lost_evidence"]
    assert evidence.endpoint == "/lost-evidence" and evidence.when.startswith("only in lost mode")
    assert all(field.when.startswith("only in lost mode") for field in evidence.fields)
    assert {"local_addresses", "gateway", "wifi[].bssid", "wifi[].ssid", "wifi[].signal", "wifi[].channel",
            "logged_in_user", "uptime_seconds", "unseen", "case_id"} <= evidence.paths()  # fmt: skip
    for name, kind in KINDS.items():
        if name != "lost_evidence":
            assert kind.paths() & LOST_MODE_ONLY == set(), name
    assert undescribed_fields(KINDS["lost_report"], {"device": {"by": "serial", "value": "x"}}) == []


def test_the_section_prints_for_each_level(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["elementary"]) == 0
    assert capsys.readouterr().out == policy_section("elementary")
    assert main(["nobody"]) == 2
