"""The ``vpcpeer`` command line.

Heavy modules (pulumi, pulumi_aws, boto3) are imported inside the commands that use them,
so ``vpcpeer --help`` stays instant.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from typing import Any

EXIT_CONFIG = 2  # bad input: the message says what to change
EXIT_FAILED = 1  # the work failed: the message says what went wrong
EXIT_INTERRUPTED = 130


# -- argument types: argparse turns their ArgumentTypeError into "vpcpeer ...: error: ..." (exit 2)


def _whole(low: int, high: int | None = None) -> Any:
    def parse(text: str) -> int:
        if not (text.isascii() and text.strip().isdigit()):
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number")
        value = int(text)
        if value < low or (high is not None and value > high):
            raise argparse.ArgumentTypeError(
                f"{value} is out of range: use {low}-{high}" if high is not None else f"{value} is below {low}")
        return value
    parse.__name__ = "whole number"
    return parse


def _positive(high: float) -> Any:
    def parse(text: str) -> float:
        import math
        import re

        from lambda_pkg.constants import PLAIN_NUMBER_PATTERN

        if not re.fullmatch(PLAIN_NUMBER_PATTERN, text.strip(), re.ASCII):
            raise argparse.ArgumentTypeError(f"{text!r} is not a plain number")
        value = float(text)
        if not (0 < value <= high) or not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"{value:g} is out of range: use a number above 0 and at most {high:g}")
        return value
    parse.__name__ = "number"
    return parse


def _past_hour(text: str) -> str:
    """A UTC hour the emulator can still write: complete, and within CloudWatch's 14 days."""
    from datetime import datetime, timezone

    from vpcpeer_orchestration.local.flowlogs import CLOUDWATCH_MAX_EVENT_AGE, HOUR, RETENTION_LIMIT, floor_hour

    try:
        at = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an ISO 8601 time, e.g. 2026-01-01T10:00:00Z") from None
    if at.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{text!r} has no UTC offset: add Z, e.g. {text}Z")
    now = datetime.now(timezone.utc)
    hour = floor_hour(at)
    if hour + HOUR > now:
        raise argparse.ArgumentTypeError(f"{text} is not a complete past hour (now is {now:%Y-%m-%dT%H:%M}Z)")
    if hour < now - RETENTION_LIMIT:
        raise argparse.ArgumentTypeError(f"{text} is too old: CloudWatch Logs refuses events older than "
                                         f"{CLOUDWATCH_MAX_EVENT_AGE.days} days")
    return text


def _overrides(pairs: Sequence[str] | None) -> dict[str, str]:
    from infra.stack_files import parse_override

    return dict(parse_override(p) for p in pairs or ())


def _progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def cmd_lambda_build(args: argparse.Namespace) -> int:
    """Build the reproducible analyzer zip."""
    from pathlib import Path

    from vpcpeer_orchestration.packaging import DEFAULT_ZIP_PATH, build_lambda_zip

    package = build_lambda_zip(Path(args.out) if args.out else DEFAULT_ZIP_PATH)
    if args.json:
        print(json.dumps({"path": str(package.path), "sha256": package.sha256, "size": package.size,
                          "files": list(package.files)}, indent=2))
    else:
        print(f"{package.path}  {package.size} bytes  sha256 {package.sha256}  ({len(package.files)} files)")
    return 0


def _print_plan(result: Any) -> None:
    counts = result.resource_counts()
    width = max(len(t) for t in counts) if counts else 20
    print(f"vpcpeer stack '{result.stack}': offline plan (Pulumi mocks; nothing is created)\n")
    print(f"{'RESOURCE TYPE'.ljust(width)}  COUNT")
    for token, count in counts.items():
        print(f"{token.ljust(width)}  {count:5d}")
    print(f"{'total'.ljust(width)}  {sum(counts.values()):5d}\n")
    print("Outputs:")
    outputs = result.public_outputs()
    key_width = max(len(k) for k in outputs)
    for key, value in outputs.items():
        text = value if isinstance(value, str) else json.dumps(value)
        print(f"  {key.ljust(key_width)}  {text}")


def cmd_infra_preview(args: argparse.Namespace) -> int:
    """Offline plan of the stack (no cloud, no Pulumi CLI)."""
    from infra.runner import PreviewRunner
    from vpcpeer_orchestration.packaging import packaged_overrides

    started = time.monotonic()
    overrides = _overrides(args.set)
    PreviewRunner(args.stack, overrides).settings.validated()  # a bad value fails before anything is built
    runner = PreviewRunner(args.stack, packaged_overrides(overrides))
    if not args.json:
        _progress("built the analyzer zip; evaluating the program ...")
    result = runner.run()
    if args.json:
        plan = sorted((r.to_json() for r in result.resources if r.custom), key=lambda r: (r["type"], r["name"]))
        print(json.dumps(plan, indent=2, sort_keys=True))
    else:
        _print_plan(result)
        _progress(f"planned in {time.monotonic() - started:.1f} s")
    return 0


def cmd_infra_up(args: argparse.Namespace) -> int:
    """Apply the stack through a runner mode (automation needs the pulumi CLI)."""
    from vpcpeer_orchestration.packaging import packaged_overrides

    overrides = packaged_overrides(_overrides(args.set))
    if args.mode == "emulated":
        result = _embedded_stack(args.stack, overrides).rollout(progress=_progress)
    else:
        from infra.runner import AutomationRunner
        from vpcpeer_orchestration.homes import pulumi_backend_url

        result = AutomationRunner(args.stack, overrides, action=args.action, backend_url=pulumi_backend_url()).run()
    print(json.dumps({"mode": result.mode, "stack": result.stack, "changes": dict(result.changes),
                      "outputs": result.public_outputs()}, indent=2, default=str))
    return 0


def _local_aws() -> Any:
    from vpcpeer_orchestration.local.server import LocalAws

    return LocalAws.from_env()


def _embedded_stack(stack: str, overrides: dict[str, str] | None = None) -> Any:
    from vpcpeer_orchestration.local.stack import EmbeddedStack

    return EmbeddedStack(_local_aws(), stack, overrides)


def cmd_local_up(args: argparse.Namespace) -> int:
    """Start (or find) the embedded AWS of this instance."""
    aws = _local_aws()
    started = time.monotonic()
    if aws.managed and not aws.running():
        _progress(f"starting the embedded AWS (moto server, state in {aws.home}) ...")
    endpoint = aws.endpoint()
    generation = aws.generation()
    print(f"embedded AWS at {endpoint}{f' (generation {generation})' if generation else ''} "
          f"({time.monotonic() - started:.1f} s)")
    return 0


def cmd_local_status(args: argparse.Namespace) -> int:
    status = _local_aws().status()
    if args.json:
        print(json.dumps(status, indent=2))
    else:
        state = "running" if status["running"] else "not running"
        print(f"embedded AWS: {state}  endpoint={status['endpoint']}  generation={status['generation']}  "
              f"home={status['home']}")
    return 0


def cmd_local_down(args: argparse.Namespace) -> int:
    aws = _local_aws()
    if not aws.managed:
        print("VPCPEER_AWS_ENDPOINT is set: that endpoint is not managed by vpcpeer; nothing to stop")
        return 0
    if args.purge:
        discarded = aws.purge(tuple(args.forget or ()))
        print(f"stopped the embedded AWS and discarded its state ({', '.join(discarded) or 'no generation'}); "
              "the next start begins empty")
        return 0
    print(f"stopped the embedded AWS; its state is kept in {aws.home}" if aws.stop()
          else "the embedded AWS was not running")
    return 0


def cmd_local_rollout(args: argparse.Namespace) -> int:
    """Roll the stack out into the embedded AWS (idempotent)."""
    from vpcpeer_orchestration.packaging import packaged_overrides

    started = time.monotonic()
    _progress(f"rolling out stack '{args.stack}' into the embedded AWS ...")
    stack = _embedded_stack(args.stack, packaged_overrides(_overrides(args.set)))
    result = stack.rollout(progress=None if args.json else _progress)
    if args.json:
        print(json.dumps(result.public_outputs(), indent=2, sort_keys=True))
    else:
        changes = ", ".join(f"{v} {k}" for k, v in sorted(result.changes.items()))
        print(f"rolled out {len(result.resources)} resources ({changes}) in {time.monotonic() - started:.1f} s")
        for key, value in result.public_outputs().items():
            print(f"  {key}: {value if isinstance(value, str) else json.dumps(value)}")
    return 0


def cmd_local_simulate(args: argparse.Namespace) -> int:
    """Back-fill emulated flow logs and inject scenarios."""
    from datetime import datetime, timedelta, timezone

    from vpcpeer_orchestration.local.flowlogs import floor_hour

    stack = _embedded_stack(args.stack)
    emulator = stack.flow_log_emulator(seed=args.seed, scale=args.scale, progress=_progress)
    _progress(f"writing flow logs for the last {args.hours} complete hour(s) ...")
    written = emulator.backfill(args.hours)
    last = floor_hour(datetime.now(timezone.utc)) - timedelta(hours=1)
    at = floor_hour(datetime.fromisoformat(args.at.strip().replace("Z", "+00:00"))) if args.at else last
    injected = {}
    from vpcpeer_orchestration.local.scenarios import SCENARIOS

    for i, name in enumerate(args.scenario or []):
        placement = SCENARIOS[name].placement
        # A scenario with a place of its own (the quiet-hour surge) goes there unless --at says otherwise.
        hour = placement(last) if placement and not args.at else at - timedelta(hours=i)
        injected[f"{name}@{hour:%Y-%m-%dT%H:00Z}"] = emulator.inject(name, hour)
    stack.aws.flush()
    summary = {"hours_written": len(written), "records_written": sum(written.values()), "scenarios": injected}
    print(json.dumps(summary, indent=2), flush=True)
    if args.follow:
        _progress("following: writing each hour as it completes (Ctrl-C to stop) ...")
        try:
            while True:
                if emulator.backfill(1):
                    stack.aws.flush()
                time.sleep(60)
        except KeyboardInterrupt:
            pass
    return 0


def cmd_local_alerts(args: argparse.Namespace) -> int:
    """Alerts the topic delivered on the embedded default."""
    from vpcpeer_orchestration.local.alerts import received_alerts

    alerts = received_alerts(_embedded_stack(args.stack))
    if args.json:
        print(json.dumps(alerts, indent=2))
        return 0
    if not alerts:
        print("no alerts received")
    for alert in alerts:
        print(f"--- {alert['timestamp']}  {alert['subject']}\n{alert['message']}\n")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    """The main job on the embedded default, end to end."""
    from vpcpeer_orchestration.demo import run_demo

    from vpcpeer_orchestration.demo import demo_scenarios

    scenarios = {} if args.no_scenarios else demo_scenarios(args.scenario) if args.scenario else None
    summary = run_demo(hours=args.hours, scenarios=scenarios, stack=args.stack, engine=args.engine)
    if args.json:
        print(json.dumps(summary, indent=2))
    return 0


def cmd_analyze(args: argparse.Namespace) -> int:
    """Analyse a window from flow-log files, or from the stack's log groups."""
    from lambda_pkg.errors import AnalyzerError
    from lambda_pkg.records import FlowLogFormat, FormatError
    from lambda_pkg.window import Window, parse_instant
    from vpcpeer_orchestration import offline

    try:
        window = Window(parse_instant(args.start, "start"), parse_instant(args.end, "end"))
        if args.files:
            fmt = FlowLogFormat.parse(args.format) if args.format else None
            report = offline.analyze_files(offline.config_for_stack(args.stack, _overrides(args.set)), window,
                                           offline.parse_files(args.files), fmt=fmt, jobs=args.jobs, say=_progress)
        else:
            if args.format:
                raise FormatError("--format applies to --files only (log groups have the stack's format)")
            report = offline.analyze_stack(args.stack, window, target=args.target, engine=args.engine)
    except (AnalyzerError, FormatError) as exc:
        print(f"vpcpeer analyze: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    if args.json:
        print(json.dumps(report, indent=2, default=str))
    else:
        print("\n".join(offline.summary(report)))
    return 0


def cmd_runs_wait(args: argparse.Namespace) -> int:
    """Wait for launched runs to finish; non-zero if any did not succeed."""
    from dagster import DagsterRunStatus

    instance = _instance_or_none()
    if instance is None:
        return EXIT_CONFIG
    deadline = time.monotonic() + args.timeout
    done = {DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED}
    pending = set(args.run_ids)
    failed = []
    while pending:
        for run_id in sorted(pending):
            run = instance.get_run_by_id(run_id)
            if run is None:
                print(f"{run_id}: unknown run", file=sys.stderr)
                return EXIT_FAILED
            if run.status in done:
                pending.discard(run_id)
                print(f"{run_id} {run.job_name}: {run.status.value}")
                if run.status != DagsterRunStatus.SUCCESS:
                    failed.append(run_id)
        if pending and time.monotonic() > deadline:
            print(f"timed out after {args.timeout} s waiting for {sorted(pending)}", file=sys.stderr)
            return EXIT_FAILED
        if pending:
            time.sleep(1)
    return EXIT_FAILED if failed else 0


def _instance_or_none() -> Any:
    import os

    from dagster import DagsterInstance

    if not os.environ.get("DAGSTER_HOME"):
        print("vpcpeer: DAGSTER_HOME is not set: runs live in a Dagster instance; export DAGSTER_HOME=<the "
              "instance's directory> and run this again", file=sys.stderr)
        return None
    return DagsterInstance.get()


def cmd_runs_purge(args: argparse.Namespace) -> int:
    """Delete finished runs (and their events) created more than --older-than-days ago: Dagster
    keeps every run forever, and the run and event tables are what grows on a team instance."""
    from datetime import datetime, timedelta, timezone

    from dagster import DagsterRunStatus, RunsFilter

    instance = _instance_or_none()
    if instance is None:
        return EXIT_CONFIG
    cutoff = datetime.now(timezone.utc) - timedelta(days=args.older_than_days)
    finished = [DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED]
    purged = 0
    while True:  # in pages, so a year of runs is never held in memory at once
        records = instance.get_run_records(filters=RunsFilter(statuses=finished, created_before=cutoff),
                                           limit=PURGE_PAGE)
        if not records:
            break
        for record in records:
            if args.dry_run:
                print(f"would delete {record.dagster_run.run_id} {record.dagster_run.job_name} "
                      f"({record.create_timestamp:%Y-%m-%d %H:%M} UTC)")
            else:
                instance.delete_run(record.dagster_run.run_id)
            purged += 1
        if args.dry_run or len(records) < PURGE_PAGE:
            break
    print(f"{'would delete' if args.dry_run else 'deleted'} {purged} finished run(s) created before "
          f"{cutoff:%Y-%m-%d %H:%M} UTC" + (" (first page only)" if args.dry_run and purged == PURGE_PAGE else ""))
    return 0


PURGE_PAGE = 500


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for tests and docs)."""
    from vpcpeer_orchestration.local.flowlogs import MAX_BACKFILL_HOURS, MAX_SCALE
    from vpcpeer_orchestration.local.scenarios import SCENARIOS

    parser = argparse.ArgumentParser(prog="vpcpeer", description="Monitored AWS VPC peering, orchestrated with Dagster.")
    groups = parser.add_subparsers(dest="group", required=True)

    infra = groups.add_parser("infra", help="the Pulumi stack").add_subparsers(dest="command", required=True)
    stack_args = argparse.ArgumentParser(add_help=False)
    stack_args.add_argument("--stack", default="dev", help="stack name: reads infra/Pulumi.<stack>.yaml (default: dev)")
    stack_args.add_argument("--set", action="append", metavar="KEY=VALUE",
                            help="override a config value, e.g. --set vpc_b_cidr=10.2.0.0/16 (repeatable)")
    preview = infra.add_parser("preview", parents=[stack_args], help="offline plan: resources, inputs and outputs")
    preview.add_argument("--json", action="store_true", help="print the resources as JSON (type, name, inputs)")
    preview.set_defaults(func=cmd_infra_preview)
    up = infra.add_parser("up", parents=[stack_args], help="apply the stack")
    up.add_argument("--mode", choices=("automation", "emulated"), default="automation",
                    help="automation: Pulumi Automation API (needs the pulumi CLI); emulated: local AWS emulator")
    up.add_argument("--action", choices=("up", "preview", "destroy"), default="up", help="automation action (default: up)")
    up.set_defaults(func=cmd_infra_up)

    local = groups.add_parser("local", help="the embedded default: embedded AWS and flow-log emulator").add_subparsers(
        dest="command", required=True)
    local.add_parser("up", help="start (or find) the embedded AWS").set_defaults(func=cmd_local_up)
    status = local.add_parser("status", help="where the embedded AWS is and whether it answers")
    status.add_argument("--json", action="store_true")
    status.set_defaults(func=cmd_local_status)
    rollout = local.add_parser("rollout", parents=[stack_args], help="create the stack in the embedded AWS (idempotent)")
    rollout.add_argument("--json", action="store_true", help="print the stack outputs as JSON")
    rollout.set_defaults(func=cmd_local_rollout)
    simulate = local.add_parser("simulate", help="write emulated flow logs, optionally with scenarios")
    simulate.add_argument("--stack", default="dev")
    simulate.add_argument("--hours", type=_whole(1, MAX_BACKFILL_HOURS), default=24,
                          help=f"complete past hours to back-fill (default 24, max {MAX_BACKFILL_HOURS})")
    simulate.add_argument("--scenario", action="append", choices=list(SCENARIOS), metavar="NAME",
                          help="inject a scenario (repeatable: the first goes into --at, the next an hour earlier, ...): "
                               + "; ".join(f"{s.name}: {s.description}" for s in SCENARIOS.values()))
    simulate.add_argument("--at", type=_past_hour,
                          help="UTC hour for the first scenario, ISO 8601 (default: the last complete hour)")
    simulate.add_argument("--seed", type=int, default=42)
    simulate.add_argument("--scale", type=_positive(MAX_SCALE), default=1.0,
                          help=f"volume multiplier (1.0 ~ 10,000 records/day per VPC; at most {MAX_SCALE:g})")
    simulate.add_argument("--follow", action="store_true", help="keep writing each hour as it completes")
    simulate.set_defaults(func=cmd_local_simulate)
    alerts = local.add_parser("alerts", help="alerts delivered to the topic")
    alerts.add_argument("--stack", default="dev")
    alerts.add_argument("--json", action="store_true")
    alerts.set_defaults(func=cmd_local_alerts)
    down = local.add_parser("down", help="stop the embedded AWS (its state is kept unless --purge)")
    down.add_argument("--purge", action="store_true",
                      help="also discard its state (stack, flow logs, alerts): the one way to throw it away")
    down.add_argument("--forget", action="append", metavar="GENERATION",
                      help="with --purge: also record a generation lost otherwise (named by the error that "
                           "refused to build on it)")
    down.set_defaults(func=cmd_local_down)

    demo = groups.add_parser("demo", help="the main job on the embedded default, end to end")
    demo.add_argument("--hours", type=_whole(1, MAX_BACKFILL_HOURS), default=24,
                      help=f"hours of flow logs to simulate and analyse (default 24, max {MAX_BACKFILL_HOURS})")
    injected = demo.add_mutually_exclusive_group()
    injected.add_argument("--no-scenarios", action="store_true", help="normal traffic only")
    injected.add_argument("--scenario", action="append", choices=list(SCENARIOS), metavar="NAME",
                          help="inject only this scenario (repeatable; default: every scenario that needs no history, "
                               "4 hours apart): " + ", ".join(SCENARIOS))
    demo.add_argument("--stack", default="dev")
    demo.add_argument("--engine", choices=("raw", "insights"),
                      help="analyzer engine (default raw; insights runs the production queries on the embedded "
                           "Logs Insights evaluator)")
    demo.add_argument("--json", action="store_true", help="also print the summary as JSON")
    demo.set_defaults(func=cmd_demo)

    analyze = groups.add_parser(
        "analyze", parents=[stack_args], help="analyse a window from flow-log files (no AWS needed) or the stack's log groups",
        description="Analyse [--start, --end) and print the analyzer's report. With --files, read flow-log files "
                    "(plain or .gz; v2, the format of their S3 header line, or --format), windowed by each record's "
                    "start field, with the stack's CIDRs, ports and thresholds. Without, read the stack's log groups "
                    "with the Lambda's code here. Nothing is published either way.")
    analyze.add_argument("--files", action="append", metavar="VPC=PATH",
                         help="a VPC's flow-log file, e.g. VPC-A=flows-a.log.gz (repeatable, several per VPC allowed)")
    analyze.add_argument("--start", required=True, help="window start, ISO 8601 with offset, e.g. 2026-01-01T10:00:00Z")
    analyze.add_argument("--end", required=True, help="window end (exclusive), e.g. 2026-01-01T11:00:00Z")
    analyze.add_argument("--format", help="the files' log format, e.g. '${version} ${srcaddr} ...' (default: v2, "
                                          "or what a file's header line announces)")
    analyze.add_argument("--jobs", type=_whole(1, 256), help="worker processes for --files (default: one per core)")
    analyze.add_argument("--target", choices=("embedded", "aws"), default="embedded",
                         help="without --files: the stack in the embedded AWS or in your AWS account (default: embedded)")
    analyze.add_argument("--engine", choices=("raw", "insights"),
                         help="without --files: how the log groups are read (default: the stack's engine)")
    analyze.add_argument("--json", action="store_true", help="print the report as JSON (the handler's report)")
    analyze.set_defaults(func=cmd_analyze)

    runs = groups.add_parser("runs", help="Dagster runs").add_subparsers(dest="command", required=True)
    wait = runs.add_parser("wait", help="wait for runs (e.g. from `dagster job launch --run-id`)")
    wait.add_argument("run_ids", nargs="+")
    wait.add_argument("--timeout", type=_positive(7 * 86400), default=900.0, help="seconds (default 900)")
    wait.set_defaults(func=cmd_runs_wait)
    purge = runs.add_parser("purge", help="delete finished runs older than some days (Dagster keeps them forever)")
    purge.add_argument("--older-than-days", type=_whole(1), required=True, help="runs created longer ago are deleted")
    purge.add_argument("--dry-run", action="store_true", help="list what would be deleted (one page), delete nothing")
    purge.set_defaults(func=cmd_runs_purge)

    lam = groups.add_parser("lambda", help="the analyzer package").add_subparsers(dest="command", required=True)
    build = lam.add_parser("build", help="build the reproducible Lambda zip")
    build.add_argument("--out", help="zip path (default: build/lambda_pkg.zip)")
    build.add_argument("--json", action="store_true", help="print path, sha256, size and files as JSON")
    build.set_defaults(func=cmd_lambda_build)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``vpcpeer`` console script: one ``vpcpeer: ...`` line per known
    error, exit 2 for bad input and 1 for failures; a traceback means a bug."""
    args = build_parser().parse_args(argv)
    from infra.config import InvalidStackConfig
    from infra.runner import StackRunError
    from infra.stack_files import StackFileNotFound
    from lambda_pkg.errors import AnalyzerError

    try:
        return args.func(args)
    except KeyboardInterrupt:
        print("vpcpeer: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except InvalidStackConfig as exc:
        print(f"vpcpeer: invalid configuration: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except StackFileNotFound as exc:
        print(f"vpcpeer: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except AnalyzerError as exc:  # typed: bad input (a ValueError) or a failed read, each with its fix
        print(f"vpcpeer: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_CONFIG if isinstance(exc, ValueError) else EXIT_FAILED
    except StackRunError as exc:
        print(f"vpcpeer: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except RuntimeError as exc:
        # Typed operational errors (local AWS, emulator, rollout) carry their own fix.
        if type(exc).__module__.startswith(("infra", "vpcpeer_orchestration", "lambda_pkg")):
            print(f"vpcpeer: {exc}", file=sys.stderr)
            return EXIT_FAILED
        raise
    except Exception as exc:
        # The embedded AWS (or AWS) stopped answering mid-command: say where, not a traceback.
        from botocore.exceptions import EndpointConnectionError, ReadTimeoutError

        if isinstance(exc, (EndpointConnectionError, ReadTimeoutError, ConnectionError)):
            print(f"vpcpeer: AWS endpoint not answering ({exc}); for the embedded AWS run `vpcpeer local status`, "
                  "then `vpcpeer local up`", file=sys.stderr)
            return EXIT_FAILED
        raise


if __name__ == "__main__":
    sys.exit(main())
