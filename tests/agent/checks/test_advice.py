"""Advice that fits the machine and the person: plain words for the reader, the command for IT."""

from __future__ import annotations

import json
from dataclasses import replace

from agent.checks import CHECKS_BY_ID
from agent.checks import firewall_linux as fw
from agent.checks.results import IT_REMEDIATION, Advice
from agent.checks.runner import run_checks
from agent.probes import CommandOutput
from server.api.schemas import CheckResultIn
from tests.helpers.paths import FIXTURES
from tests.helpers.recorded import Recorded


def _firewall(**tools: CommandOutput) -> Recorded:
    recorded = Recorded()
    argv = {
        "ufw": fw.UFW_STATUS,
        "firewalld": fw.FIREWALLD_STATE,
        "nft": fw.NFT_RULESET,
        "iptables": fw.IPTABLES_INPUT,
    }
    for name, command in argv.items():
        out = tools.get(name, CommandOutput(tuple(command), None, error="not found"))
        recorded.command(list(command), out.stdout, out.stderr, out.exit_code, out.error)
    return recorded


EMPTY_NFT = CommandOutput(
    tuple(fw.NFT_RULESET), 0, '{"nftables": [{"metainfo": {"json_schema_version": 1}}]}'
)


def test_a_firewalld_laptop_is_never_told_to_enable_ufw() -> None:
    recorded = _firewall(firewalld=CommandOutput(("firewall-cmd",), 252, "not running\n"), nft=EMPTY_NFT)
    finding = fw.check(recorded.context("linux"))
    assert isinstance(finding.remediation, Advice)
    assert finding.remediation.it == "sudo systemctl enable --now firewalld"
    assert "ufw" not in finding.remediation.yourself + finding.remediation.ask_it


def test_a_laptop_without_any_firewall_program_is_told_to_install_one() -> None:
    finding = fw.check(_firewall(nft=EMPTY_NFT).context("linux"))
    assert isinstance(finding.remediation, Advice)
    assert "install" in finding.remediation.ask_it
    assert not (finding.remediation.it or "").startswith("sudo ufw enable")


def test_ufw_laptops_get_ufw_enable_for_it() -> None:
    finding = fw.check(
        _firewall(ufw=CommandOutput(("ufw",), 0, "Status: inactive\n"), nft=EMPTY_NFT).context("linux")
    )
    assert isinstance(finding.remediation, Advice) and finding.remediation.it == "sudo ufw enable"


def test_an_active_ufw_that_allows_all_incoming_is_told_to_deny_by_default() -> None:
    """The real `ufw status verbose` of the corpus capture netns-ufw-allow-incoming."""
    capture = json.loads((FIXTURES / "corpus/linux/netns-ufw-allow-incoming.firewall.json").read_text())
    answers = {key: value for key, value in capture["probes"].items()}
    ufw = answers["linux.firewall.ufw"]
    finding = fw.check(
        _firewall(ufw=CommandOutput(("ufw",), ufw["exit_code"], ufw["stdout"]), nft=EMPTY_NFT).context(
            "linux"
        )
    )
    assert finding.status.value == "fail"
    assert (
        isinstance(finding.remediation, Advice) and finding.remediation.it == "sudo ufw default deny incoming"
    )
    assert "Deny" in finding.remediation.yourself


def test_the_runner_gives_each_reader_their_words_and_it_the_command() -> None:
    recorded = _firewall(ufw=CommandOutput(("ufw",), 0, "Status: inactive\n"), nft=EMPTY_NFT)
    spec = CHECKS_BY_ID["firewall"]
    admin_ctx = recorded.context("linux", is_admin=True)
    student_ctx = recorded.context("linux", is_admin=False)
    # The root service writes what the tray shows a student: it is nobody's reader.
    service_ctx = replace(admin_ctx, platform=replace(admin_ctx.platform, user="root"))
    (as_admin,) = run_checks([spec], admin_ctx, timeout=5)
    (as_student,) = run_checks([spec], student_ctx, timeout=5)
    (as_service,) = run_checks([spec], service_ctx, timeout=5)
    assert as_admin.remediation and "Gufw" in as_admin.remediation
    assert as_student.remediation == fw.ASK_IT_FIREWALL
    assert as_service.remediation == fw.ASK_IT_FIREWALL
    for result in (as_admin, as_student, as_service):
        assert result.evidence[IT_REMEDIATION] == "sudo ufw enable"
        assert "sudo" not in (result.remediation or "") and "terminal" not in (result.remediation or "")


def test_what_the_agent_sends_is_still_what_the_server_accepts() -> None:
    recorded = _firewall(ufw=CommandOutput(("ufw",), 0, "Status: inactive\n"), nft=EMPTY_NFT)
    (result,) = run_checks([CHECKS_BY_ID["firewall"]], recorded.context("linux", is_admin=False), timeout=5)
    accepted = CheckResultIn.model_validate(result.to_json())
    assert accepted.evidence[IT_REMEDIATION] == "sudo ufw enable"
    assert accepted.remediation == fw.ASK_IT_FIREWALL


def test_a_summary_claims_only_what_the_tools_showed() -> None:
    finding = fw.check(_firewall(ufw=CommandOutput(("ufw",), 0, "Status: inactive\n")).context("linux"))
    assert finding.summary.startswith("no firewall program is on, and neither nft nor iptables")
    seen = fw.check(
        _firewall(ufw=CommandOutput(("ufw",), 0, "Status: inactive\n"), nft=EMPTY_NFT).context("linux")
    )
    assert seen.summary == "no firewall is filtering incoming connections"
