"""`homeroom-agent …`: the commands a person (or IT, or the service manager) runs.

Exit codes: 0 all requirements met, 1 something failed or is unknown,
2 a usage or configuration error (with the file, line and fix).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agent.checks import CHECKS, CHECKS_BY_ID, select
from agent.checks.bundle import bundle_json, read_bundle
from agent.checks.context import CheckContext, SoftwareBaseline
from agent.checks.display import exit_code_for, results_table
from agent.checks.results import CheckResult, Status
from agent.checks.runner import run_checks
from agent.config import AgentConfig, load_agent_config
from agent.errors import BundleError
from agent.messages import identity_notes, refusal_advice, server_url_problem
from agent.probes import LiveProbes, Probes, RecordingProbes, ReplayProbes
from agent.probes.facts import PlatformFacts, detect
from agent.state import BaselineFile, FixedBaseline, resolve_state_dir
from contract import __version__
from contract.config_files import CONFIG_DIR, read_config_text
from contract.errors import ConfigError
from contract.requirements import CHECK_IDS, Requirements, requirements_from_text
from contract.wire import key_fingerprint

if TYPE_CHECKING:
    from agent.service import AgentService

USAGE_ERROR = 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="homeroom-agent",
        description="Checks this laptop against the district's Acceptable Use Policy.",
    )
    parser.add_argument("--version", action="version", version=f"homeroom-agent {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", type=Path, metavar="FILE", help="agent.toml to use")
    common.add_argument("--requirements", type=Path, metavar="FILE", help="requirements.toml to use")
    common.add_argument("--state-dir", metavar="DIR", help="where the agent keeps its state")

    check = commands.add_parser("check", parents=[common], help="run the checks and show the results")
    check.add_argument("--json", action="store_true", help='print {"results": [...]} as JSON')
    check.add_argument(
        "--only", choices=CHECK_IDS, metavar="ID", help=f"run one check: {', '.join(CHECK_IDS)}"
    )
    check.add_argument(
        "--context",
        choices=("all", "system", "user"),
        default="all",
        help="system: what the service runs; user: what the tray runs in the user's session",
    )
    check.add_argument(
        "--from-bundle", type=Path, metavar="FILE", help="re-run the checks from a diagnostic bundle"
    )

    diagnose = commands.add_parser(
        "diagnose", parents=[common], help="save every probe's raw output to a bundle for IT"
    )
    diagnose.add_argument("-o", "--output", type=Path, required=True, metavar="FILE")

    enroll = commands.add_parser(
        "enroll", parents=[common], help="enrol this laptop with the district's server"
    )
    enroll.add_argument("--server", metavar="URL", help="the server's address (default: from agent.toml)")
    enroll.add_argument("--token", help="the enrolment token from IT (default: from agent.toml)")
    enroll.add_argument(
        "--token-file",
        type=Path,
        metavar="FILE",
        help="read the token from FILE (root-only) and remove FILE once enrolled (for packages)",
    )
    enroll.add_argument(
        "--if-not-enrolled", action="store_true", help="do nothing (and remove --token-file) if enrolled"
    )

    run = commands.add_parser("run", parents=[common], help="the service loop: check, report, send")
    run.add_argument("--once", action="store_true", help="one cycle, send everything queued, then exit")
    run.add_argument("--now", action="store_true", help="with --once: check and report now, whatever is due")

    commands.add_parser(
        "status",
        parents=[common],
        help="enrolment, last report, queued, dropped and refused records, local problems",
    )

    consent = commands.add_parser("consent", parents=[common], help="the Acceptable Use Policy sign-off")
    action = consent.add_mutually_exclusive_group(required=True)
    action.add_argument("--show", action="store_true", help="open the policy and sign-off window now")
    action.add_argument("--status", action="store_true", help="what you have signed on this laptop")
    action.add_argument("--at-login", action="store_true", help="ask only if a sign-off is due (for login)")

    commands.add_parser("tray", parents=[common], help="the tray icon for the logged-in user")
    return parser


@dataclass(frozen=True)
class Setup:
    ctx: CheckContext
    requirements_text: str
    baseline_file: BaselineFile | None


def _requirements(path: Path | None, bundled: str | None = None) -> tuple[Requirements, str]:
    if path is None and bundled is not None:
        return requirements_from_text("requirements in the bundle", bundled), bundled
    chosen = path or CONFIG_DIR / "requirements.toml"
    text = read_config_text(chosen)
    return requirements_from_text(str(chosen), text), text


def live_setup(args: argparse.Namespace, probes: Probes) -> Setup:
    config = load_agent_config(args.config) if args.config else load_agent_config()
    requirements, text = _requirements(args.requirements)
    platform = detect()
    baseline = BaselineFile(resolve_state_dir(args.state_dir, config.state_dir, platform))
    ctx = CheckContext(probes, platform, requirements, datetime.now(timezone.utc), baseline)
    return Setup(ctx, text, baseline)


def bundle_setup(args: argparse.Namespace) -> Setup:
    bundle = read_bundle(args.from_bundle)
    requirements, text = _requirements(args.requirements, bundle.requirements_toml)
    baseline: SoftwareBaseline | None = (
        None if bundle.software_baseline is None else FixedBaseline(bundle.software_baseline)
    )
    platform: PlatformFacts = bundle.platform
    ctx = CheckContext(ReplayProbes(bundle.probes), platform, requirements, bundle.created, baseline)
    return Setup(ctx, text, None)


def _run(setup: Setup, only: str | None, context: str) -> list[CheckResult]:
    requirements = setup.ctx.requirements
    enabled = CHECK_IDS if only else requirements.enabled
    where = None if context == "all" else context
    specs = select(enabled, only, where)  # type: ignore[arg-type]
    return run_checks(specs, setup.ctx, requirements.check_timeout_seconds)


def needed_admin(results: Sequence[CheckResult], platform: PlatformFacts) -> list[str]:
    """Titles of checks left unconfirmed because this run lacks the admin rights they need here."""
    if platform.is_admin:
        return []
    return [
        r.title
        for r in results
        if r.status in (Status.UNKNOWN, Status.ERROR) and platform.os in CHECKS_BY_ID[r.id].needs_admin_on
    ]


def command_check(args: argparse.Namespace) -> int:
    setup = bundle_setup(args) if args.from_bundle else live_setup(args, LiveProbes())
    results = _run(setup, args.only, args.context)
    if args.json:
        print(json.dumps({"results": [r.to_json() for r in results]}, indent=2))
    else:
        if args.from_bundle:
            facts = setup.ctx.platform
            print(
                f"Replaying {args.from_bundle}: {facts.os} {facts.os_version} ({facts.hostname}), "
                f"recorded {setup.ctx.now:%Y-%m-%d %H:%M} UTC\n"
            )
        width = shutil.get_terminal_size((100, 24)).columns
        for_it = bool(args.from_bundle) or setup.ctx.platform.reader_is_admin
        print(results_table(results, width, needed_admin(results, setup.ctx.platform), for_it), end="")
    return exit_code_for(results)


def command_diagnose(args: argparse.Namespace) -> int:
    recorder = RecordingProbes(LiveProbes())
    setup = live_setup(args, recorder)
    print(f"Running {len(CHECKS)} checks and recording what they see…", file=sys.stderr)
    results = _run(setup, None, "all")
    baseline = setup.baseline_file.load() if setup.baseline_file else None
    data = bundle_json(
        setup.ctx.now, setup.ctx.platform, recorder.records, setup.requirements_text, baseline, results
    )
    try:
        args.output.write_text(json.dumps(data, indent=1), encoding="utf-8")
    except OSError as exc:
        print(f"homeroom-agent: cannot write {args.output}: {exc.strerror or exc}", file=sys.stderr)
        return USAGE_ERROR
    print(
        f"Saved {len(recorder.records)} probe outputs to {args.output}. Send this file to your IT team.",
        file=sys.stderr,
    )
    return 0


def _state_and_config(
    args: argparse.Namespace, service_side: bool = False
) -> tuple[Path, AgentConfig, PlatformFacts]:
    config = load_agent_config(args.config) if args.config else load_agent_config()
    platform = detect()
    return resolve_state_dir(args.state_dir, config.state_dir, platform, service_side), config, platform


def command_enroll(args: argparse.Namespace) -> int:
    from agent.errors import EnrolmentError
    from agent.identity import local_macs, read_identity
    from agent.server_link.client import ServerClient
    from agent.server_link.keys import open_key_store
    from agent.service import EnrolmentRecord, write_enrolment

    state_dir, config, platform = _state_and_config(args)
    if args.if_not_enrolled and _already_enrolled(state_dir, args.token_file):
        return 0
    server = args.server or config.server_url
    token = args.token or _token_from_file(args.token_file) or config.enrolment_token
    if not server or not token:
        server, token = _deployed(platform, state_dir, server, token)
    if not server or not token:
        raise ConfigError(
            str(args.config or CONFIG_DIR / "agent.toml"),
            None,
            "no server address or enrolment token",
            "pass --server URL --token TOKEN, or set [server] url and enrolment_token",
        )
    if problem := server_url_problem(server):
        print(f"homeroom-agent: {problem}", file=sys.stderr)
        return USAGE_ERROR
    refusal = address_refusal(server, config.allow_insecure_http)
    if refusal:
        print(f"homeroom-agent: {refusal}", file=sys.stderr)
        return USAGE_ERROR
    state_dir.mkdir(parents=True, exist_ok=True)
    keys = open_key_store(state_dir)
    key = Ed25519PrivateKey.generate()
    identity = read_identity(LiveProbes(), platform, local_macs())
    for note in identity_notes(identity.unreadable):
        print(note, file=sys.stderr)
    try:
        enrolment = ServerClient(server, allow_insecure_http=config.allow_insecure_http).enrol(
            token, key, identity.to_json(), __version__
        )
    except EnrolmentError as exc:
        print(f"homeroom-agent: {exc}", file=sys.stderr)
        return 1
    keys.save(key)
    now = datetime.now(timezone.utc).isoformat()
    write_enrolment(
        state_dir,
        EnrolmentRecord(
            server,
            enrolment.device_id,
            enrolment.group,
            now,
            server_public_key=enrolment.server_public_key,
            server_key_pinned=f"at enrolment, {now}",
        ),
    )
    _forget_the_previous_server(state_dir)
    _forget_the_deployed_token(state_dir)
    if args.token_file is not None:
        from agent.install_enrolment import forget_token

        forget_token(args.token_file)
    if enrolment.waiting:
        print(f"Claim sent to {server} for device {enrolment.device_id}: {enrolment.waiting}")
        print("The service keeps trying; `homeroom-agent status` shows when the server accepts this laptop.")
    else:
        again = " again (same device record, new key)" if enrolment.replaced_key else ""
        print(f"Enrolled{again} with {server} as device {enrolment.device_id} in group {enrolment.group}.")
    print(f"Device key: {keys.description}")
    print(
        f"Server signing key: {key_fingerprint(enrolment.server_public_key)} (pinned: only its answers count)"
    )
    return 0


def _already_enrolled(state_dir: Path, token_file: Path | None) -> bool:
    """An installer's or package's start: enrolled already, so a token left for it is not needed."""
    from agent.errors import NotEnrolled
    from agent.install_enrolment import forget_token
    from agent.service import read_enrolment

    try:
        enrolment = read_enrolment(state_dir)
    except NotEnrolled:
        return False  # a damaged record: enrol again
    if enrolment is None:
        return False
    if token_file is not None:
        forget_token(token_file)
    _forget_the_deployed_token(state_dir)
    print(f"Already enrolled with {enrolment.server_url} as device {enrolment.device_id}: nothing to do.")
    return True


def _deployed(platform: PlatformFacts, state_dir: Path, server: str, token: str) -> tuple[str, str]:
    """The MSI's staged token or the MDM's managed preferences (agent.deployment), for what is unset."""
    from agent.deployment import deployed_enrolment

    deployed = deployed_enrolment(platform.os, state_dir)
    if deployed is None:
        return server, token
    print(f"Using the server and enrolment token from {deployed.source}", file=sys.stderr)
    return server or deployed.server_url, token or deployed.token


def _forget_the_deployed_token(state_dir: Path) -> None:
    from agent.deployment import forget_token_file

    if forget_token_file(state_dir):
        print("Removed the installer's copy of the enrolment token (no longer needed).")


def _token_from_file(token_file: Path | None) -> str:
    from agent.install_enrolment import token_file_problem, token_from_file

    if token_file is None:
        return ""
    if problem := token_file_problem(token_file):
        print(f"homeroom-agent: {problem}", file=sys.stderr)
    return token_from_file(token_file)


def _forget_the_previous_server(state_dir: Path) -> None:
    """A new enrolment has sent nothing yet: the next cycle reports, and status shows no old delivery."""
    from agent.server_link.link_state import LINK_FILE
    from agent.service import Schedule
    from agent.state import SCHEDULE_FILE

    (state_dir / LINK_FILE).unlink(missing_ok=True)
    schedule_path = state_dir / SCHEDULE_FILE
    if schedule_path.exists():
        schedule = Schedule.load(schedule_path)
        schedule.last_report_at, schedule.last_digest = 0.0, ""
        schedule.save(schedule_path)


def address_refusal(url: str, allow_insecure_http: bool) -> str | None:
    """Why the agent will not talk to `url` (plain http to another host), or None."""
    from agent.errors import InsecureServerAddress
    from agent.server_link.address import check_server_address

    try:
        check_server_address(url, allow_insecure_http)
    except InsecureServerAddress as exc:
        return str(exc)
    return None


def trust_lines(state_dir: Path, allow_insecure_http: bool) -> list[str]:
    """What `status` says about the server's pinned key and the answers refused as not its own."""
    from agent.server_link.answers import RefusedAnswers
    from agent.service import read_enrolment

    lines: list[str] = []
    enrolment = read_enrolment(state_dir)
    if enrolment is not None:
        refusal = address_refusal(enrolment.server_url, allow_insecure_http)
        if refusal:
            lines.append(f"Not sending:     {refusal}")
        if enrolment.server_public_key:
            lines.append(
                f"Server key:      {key_fingerprint(enrolment.server_public_key)}, pinned "
                f"{enrolment.server_key_pinned or 'at enrolment'}"
            )
        else:
            lines.append(
                "Server key:      not pinned yet (enrolled before keys were pinned; pinned at the "
                "first signed answer)"
            )
    refused = RefusedAnswers(state_dir).load()
    if refused.get("total"):
        last = refused.get("last") or {}
        lines.append(
            f"Refused answers: {refused['total']} not from this district's server (nothing in them "
            f"applied); last at {last.get('at')} from {last.get('server_url')}: {last.get('reason')}"
        )
    return lines


def _service(args: argparse.Namespace) -> AgentService:
    from agent.service import AgentService

    state_dir, config, platform = _state_and_config(args)
    requirements, problem = _service_requirements(args, state_dir)
    service = AgentService(state_dir, config, platform, requirements)
    _note_requirements_problem(service, problem)
    return service


def _service_requirements(
    args: argparse.Namespace, state_dir: Path
) -> tuple[tuple[Requirements, str], str | None]:
    """A broken local requirements.toml does not stop the service while a good server copy is in effect."""
    from agent.recovery import service_requirements

    return service_requirements(state_dir, lambda: _requirements(args.requirements))


def _note_requirements_problem(service: AgentService, problem: str | None) -> None:
    from agent.recovery import note_requirements_problem

    note_requirements_problem(service.outbox, problem)


def command_run(args: argparse.Namespace) -> int:
    from agent.service import read_enrolment

    service = _service(args)
    enrolment = read_enrolment(service.state_dir)
    if enrolment is None:
        print(
            "homeroom-agent: not enrolled yet: run `homeroom-agent enroll --server URL --token TOKEN`",
            file=sys.stderr,
        )
        return USAGE_ERROR
    refusal = address_refusal(enrolment.server_url, service.config.allow_insecure_http)
    if refusal:
        print(f"homeroom-agent: {refusal}", file=sys.stderr)
        return USAGE_ERROR
    if not args.once:
        from agent.service_log import configure_service_logging

        configure_service_logging(sys.stderr, os_name=service.platform.os)
        service.run_forever()
        return 0
    started = datetime.now(timezone.utc).isoformat()
    result = service.cycle(force_report=args.now or service.schedule.last_report_at == 0)
    if result.checked:
        _print_cycle_results(service.state_dir)
    drained = result.drained
    sent = drained.delivered if drained else 0
    print(
        f"checked: {'yes' if result.checked else 'not due'}, "
        f"report queued: {'yes' if result.reported else 'no'}, sent: {sent}, "
        f"still queued: {result.queued_after}"
    )
    service.outbox.close()
    refused = service.refused_answers.load().get("last") or {}
    if result.drained and refused.get("at", "") >= started:
        print(
            f"homeroom-agent: refused an answer from {refused.get('server_url')}: {refused.get('reason')}; "
            "nothing in it was applied",
            file=sys.stderr,
        )
    if result.queued_after:
        print(
            "homeroom-agent: could not deliver everything; it stays queued and is sent on the next run",
            file=sys.stderr,
        )
        _print_server_problem(service.state_dir, sys.stderr)
        return 3
    return 0


def _print_cycle_results(state_dir: Path) -> None:
    """The results this cycle found (as status.json holds them), in the table `check` prints."""
    from agent.service import result_from_json
    from agent.state import STATUS_FILE

    try:
        listed = json.loads((state_dir / STATUS_FILE).read_text(encoding="utf-8")).get("results", [])
    except (OSError, ValueError, AttributeError):
        return
    results = [r for item in listed if (r := result_from_json(item)) is not None]
    print(results_table(results, shutil.get_terminal_size((100, 24)).columns), end="")


def _print_server_problem(state_dir: Path, out: TextIO, label: str = "homeroom-agent: ") -> None:
    """The server's last refusal (or the network's failure), with what to do about it."""
    from agent.server_link.link_state import LinkState

    link = LinkState.load(state_dir)
    if link.problem:
        when = datetime.fromtimestamp(link.problem_at, timezone.utc)
        print(f"{label}at {when:%Y-%m-%d %H:%M} UTC {refusal_advice(link.problem)}", file=out)


def _last_report_line(state_dir: Path, queued_at: float) -> str:
    """When a report last reached the server; one only queued is not called a report."""
    from agent.server_link.link_state import LinkState

    delivered = LinkState.load(state_dir).last_report_delivered_at
    if delivered:
        return f"Last report:     {datetime.fromtimestamp(delivered, timezone.utc):%Y-%m-%d %H:%M:%S} UTC"
    if queued_at:
        queued = datetime.fromtimestamp(queued_at, timezone.utc)
        return f"Last report:     none delivered yet (one queued at {queued:%Y-%m-%d %H:%M:%S} UTC)"
    return "Last report:     never"


def _status_if_not_enrolled(args: argparse.Namespace) -> int | None:
    """`status` on a laptop never enrolled: say so, and create nothing (no state dir, outbox or key)."""
    from agent.errors import NotEnrolled
    from agent.service import read_enrolment

    state_dir, _config, _platform = _state_and_config(args)
    try:
        if state_dir.is_dir() and read_enrolment(state_dir) is not None:
            return None
    except NotEnrolled as exc:  # a damaged enrolment.json: say which and what to do, no traceback
        print(f"State directory: {state_dir}")
        print(f"Enrolment:       {exc}")
        return 1
    print(f"State directory: {state_dir}")
    print("Enrolment:       not enrolled: run `homeroom-agent enroll --server URL --token TOKEN`")
    return 0


def command_status(args: argparse.Namespace) -> int:
    from agent.lost.mode import status_line as lost_status_line
    from agent.service import read_enrolment

    if (not_enrolled := _status_if_not_enrolled(args)) is not None:
        return not_enrolled
    service = _service(args)
    enrolment = read_enrolment(service.state_dir)
    stats = service.outbox.stats()
    schedule = service.schedule
    print(f"State directory: {service.state_dir}")
    if enrolment is None:
        print("Enrolment:       not enrolled")
    else:
        print(
            f"Enrolment:       device {enrolment.device_id}, group {enrolment.group}, "
            f"server {enrolment.server_url}"
        )
    print(f"Device key:      {service.keys.description}")
    for line in trust_lines(service.state_dir, service.config.allow_insecure_http):
        print(line)
    print(_last_report_line(service.state_dir, schedule.last_report_at))
    print(lost_status_line(service.state_dir))
    _print_server_problem(service.state_dir, sys.stdout, "Last problem:    ")
    queued = ", ".join(f"{count} {kind}" for kind, count in sorted(stats.queued.items())) or "nothing"
    print(f"Queued to send:  {queued} ({stats.total_bytes} bytes)")
    _print_outbox_health(service)
    service.outbox.close()
    return 0


def _when(timestamp: float) -> str:
    return f"{datetime.fromtimestamp(timestamp, timezone.utc):%Y-%m-%d %H:%M:%S} UTC"


def _print_outbox_health(service: AgentService) -> None:
    """What was dropped, refused or set aside, why the last send failed, and what is wrong locally."""
    from agent.server_link.outbox import never_dropped_kinds

    outbox = service.outbox
    stats = outbox.stats()
    if stats.over_bound:
        print(
            f"Outbox over its bound: {stats.total_bytes} of {stats.max_bytes} bytes; only records that are "
            f"never dropped ({', '.join(never_dropped_kinds())}) are left, so none was dropped"
        )
    if stats.dropped_total:
        dropped = ", ".join(f"{count} {kind}" for kind, count in stats.dropped_total.items())
        waiting = ", ".join(f"{count} {kind}" for kind, count in stats.dropped.items())
        told = f"; not yet reported to the server: {waiting}" if waiting else "; all reported to the server"
        print(f"Dropped (outbox full): {dropped}{told}")
    if stats.rejected:
        print(f"Refused by the server (kept for IT): {stats.rejected}")
        for item in outbox.rejected_items()[-5:]:
            print(f"  {item.kind} {item.record_id} at {_when(item.rejected_at)}: {_printable(item.reason)}")
    link = outbox.link_state()
    if link.last_failure_at is not None:
        since = link.last_delivered_at is not None and link.last_delivered_at > link.last_failure_at
        later = f" (delivered since, at {_when(link.last_delivered_at or 0)})" if since else ""
        print(
            f"Last send failure: {_when(link.last_failure_at)}: {_printable(link.last_failure or '')}{later}"
        )
    for problem in outbox.problems():
        told = f"reported {_when(problem.reported_at)}" if problem.reported_at else "not yet reported"
        print(f"Local problem ({told}): {_printable(problem.text)}")


def _printable(text: str) -> str:
    """Reasons come from the server: no control character reaches the terminal as itself."""
    return "".join(ch if ch.isprintable() else ascii(ch)[1:-1] for ch in text)


def command_consent(args: argparse.Namespace) -> int:
    from agent.desktop.consent.flow import ask_if_needed, status_lines

    state_dir, _config, _platform = _state_and_config(args, service_side=True)
    now = datetime.now(timezone.utc).astimezone()
    if args.status:
        print("\n".join(status_lines(state_dir, now)))
        return 0
    outcome = ask_if_needed(state_dir, now, at_login=True, force=args.show)
    print(outcome.note if outcome.decision is None else f"{outcome.decision}: {outcome.note}")
    if outcome.asked and outcome.decision in ("agree", "decline") and not outcome.delivered:
        print("(the Homeroom service is not running: your decision is kept and sent when it is)")
    return 0 if outcome.decision in (None, "agree") else 1


def command_tray(args: argparse.Namespace) -> int:
    from agent.desktop.tray import run_tray
    from agent.service_log import configure_service_logging

    # The session's log (the user's journal under systemd --user, else ~/.xsession-errors) says
    # which backend drew the icon and its menu, and why a refresh failed.
    configure_service_logging(sys.stderr)
    state_dir, config, _platform = _state_and_config(args, service_side=True)
    run_tray(state_dir, show_quit=config.tray_show_quit)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handlers = {
        "check": command_check,
        "diagnose": command_diagnose,
        "enroll": command_enroll,
        "run": command_run,
        "status": command_status,
        "consent": command_consent,
        "tray": command_tray,
    }
    try:
        return handlers[args.command](args)
    except (ConfigError, BundleError, ValueError) as exc:
        print(f"homeroom-agent: {exc}", file=sys.stderr)
        return USAGE_ERROR
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
