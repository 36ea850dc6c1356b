"""`vpcpeer analyze`: the analyzer at a terminal, on flow-log files or on a stack's log groups.

Files need no AWS: the stack's config gives the CIDRs, allowed ports and thresholds, and
records are windowed by their ``start`` field. Large files are cut into parts read by
worker processes (``jobs``, default one per core) and the partial aggregations merged, so
the report is the one a single pass would give. Without files, the window is analysed from
the stack's log groups by the same code the Lambda runs, without any effect.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from multiprocessing import get_all_start_methods, get_context
from pathlib import Path
from typing import Any

from lambda_pkg.aggregate import VpcTraffic
from lambda_pkg.analysis import build_report
from lambda_pkg.constants import ENV_ANALYZER_ENGINE
from lambda_pkg.coverage import assess_files
from lambda_pkg.flowfiles import FlowFileError, FlowLogFile, Part, open_flow_log, parts, read_part
from lambda_pkg.records import Addresses, FlowLogFormat
from lambda_pkg.settings import AnalyzerConfig
from lambda_pkg.window import Window

FILES_ENGINE = "files"
# A part is at least this large (smaller ones cost more to hand over than to read) ...
MIN_PART_BYTES = 8 << 20
# ... and there is one per worker: parts are equal byte ranges, so they take about as long,
# and every part beyond the first costs a merge of its evidence tables (large for a scan).
PARTS_PER_JOB = 1
# Inputs this large report progress on stderr.
PROGRESS_BYTES = 64 << 20


def default_jobs() -> int:
    """Worker processes: the cores this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def plan(files: Sequence[FlowLogFile], jobs: int) -> list[Part]:
    """The parts to read: about PARTS_PER_JOB per worker, none smaller than MIN_PART_BYTES."""
    total = sum(f.size for f in files)
    target = max(MIN_PART_BYTES, -(-total // max(1, jobs * PARTS_PER_JOB)))
    return [part for f in files for part in parts(f, target)]


def analyze_files(config: AnalyzerConfig, window: Window, files: Mapping[str, Sequence[str | os.PathLike[str]]], *,
                  fmt: FlowLogFormat | None = None, jobs: int | None = None,
                  say: Callable[[str], None] | None = None) -> dict[str, Any]:
    """The report for ``window`` from each VPC's flow-log files (``files``: label -> paths)."""
    labels = [v.label for v in config.vpcs]
    unknown = sorted(set(files) - set(labels))
    if unknown:
        raise FlowFileError(f"{', '.join(unknown)}: not a VPC of this stack; use {' or '.join(labels)}=PATH")
    opened = [open_flow_log(label, path, fmt)
              for label, paths in files.items() for path in paths]
    jobs = jobs or default_jobs()
    todo = plan(opened, jobs)
    started = time.monotonic()
    total = sum(part.size for part in todo)
    progress = say if say and total >= PROGRESS_BYTES else None
    if progress:
        progress(f"reading {len(opened)} file(s), {total / 1e6:,.0f} MB, in {len(todo)} part(s) with "
                 f"{min(jobs, len(todo))} process(es) ...")
    traffic: dict[str, VpcTraffic] = {}
    read = 0
    for done, (part, partial) in enumerate(_read(config, window, todo, jobs), start=1):
        label = part.file.label
        if label in traffic:
            traffic[label].merge(partial)
        else:
            traffic[label] = partial  # the first part's aggregation is the total so far: nothing to copy
        read += part.size  # parts finish in any order
        if progress:
            progress(f"  {done}/{len(todo)} parts, {read / 1e6:,.0f} MB, {time.monotonic() - started:.1f} s")
    for spec in config.vpcs:  # a VPC given no file: an empty aggregation (reported as not covered)
        if spec.label not in traffic:
            traffic[spec.label] = VpcTraffic(spec, next(v for v in config.vpcs if v is not spec), window)
    vpcs = {spec.label: traffic[spec.label].report() for spec in config.vpcs}
    given = {label: [str(p) for p in files.get(label, ())] for label in labels}
    for vpc in vpcs.values():
        vpc["coverage"] = assess_files(vpc, vpcs[vpc["peer"]], given[vpc["vpc"]], config.thresholds)
    stats = {"files": {label: paths for label, paths in given.items() if paths}, "parts": len(todo),
             "processes": min(jobs, len(todo)), "bytes": total, "seconds": round(time.monotonic() - started, 3)}
    return build_report(config, window, FILES_ENGINE, stats, vpcs)


def _read(config: AnalyzerConfig, window: Window, todo: list[Part], jobs: int) -> Any:
    """(part, its aggregation) for every part, in order of completion."""
    if jobs == 1 or len(todo) == 1:
        addresses = Addresses()
        for part in todo:
            yield part, read_part(config, window, part, addresses)
        return
    # fork: workers start at once with the modules loaded; elsewhere the default start method.
    context = get_context("fork") if "fork" in get_all_start_methods() else None
    with ProcessPoolExecutor(max_workers=min(jobs, len(todo)), mp_context=context) as pool:
        futures = {pool.submit(read_part, config, window, part): part for part in todo}
        for future in as_completed(futures):
            yield futures[future], future.result()


def analyze_stack(stack: str, window: Window, *, target: str, engine: str | None = None) -> dict[str, Any]:
    """The report for ``window`` from the stack's log groups: the Lambda's code and environment,
    run here with this machine's credentials (``aws``) or against the embedded AWS, no effect."""
    event = {"window": window.to_json(), "orchestrated": True, "source": "vpcpeer analyze"}
    if target == "embedded":
        from vpcpeer_orchestration.local.server import LocalAws
        from vpcpeer_orchestration.local.stack import EmbeddedStack

        embedded = EmbeddedStack(LocalAws.from_env(), stack)
        return embedded.analyze(event, engine=engine or embedded.deployed_environment().get(ENV_ANALYZER_ENGINE, "raw"))
    import boto3

    from infra.config import PROJECT
    from infra.state_backend import read_stack_outputs
    from lambda_pkg.clients import client_config
    from lambda_pkg.handler import Clients, handle
    from vpcpeer_orchestration.homes import pulumi_backend_url

    config = client_config()
    outputs = read_stack_outputs(pulumi_backend_url(), PROJECT, stack, s3_client=lambda: boto3.client("s3", config=config))
    function = outputs["lambda_function_name"]
    environment = boto3.client("lambda", config=config).get_function_configuration(FunctionName=function)
    environ = {**environment.get("Environment", {}).get("Variables", {}), **({ENV_ANALYZER_ENGINE: engine} if engine else {})}
    return handle(event, None, environ=environ,
                  clients=lambda: Clients.from_factory(lambda service: boto3.client(service, config=config)))


def config_for_stack(stack: str, overrides: Mapping[str, str] | None = None) -> AnalyzerConfig:
    """The analyzer config a stack deploys, from its config file alone (no AWS, no state)."""
    from infra.stack_files import load_stack_settings
    from lambda_pkg.settings import config_from_env

    cfg = load_stack_settings(stack, overrides).validated()
    return config_from_env(cfg.analyzer_environment(
        topic_arn=f"{cfg.prefix}-alerts (nothing is published by vpcpeer analyze)", ledger_table=""))


def summary(report: Mapping[str, Any]) -> list[str]:
    """The report in a few lines for a terminal."""
    window = report["window"]
    lines = [f"window {window['start']} .. {window['end']}  ({report['engine']})"]
    for vpc in report["vpcs"].values():
        coverage = vpc["coverage"]
        lines.append(
            f"{vpc['vpc']} {vpc['cidr']}: {vpc['total_requests']:,} requests ({vpc['rejected_connections']:,} rejected, "
            f"{vpc['external_traffic_count']:,} from the internet), {vpc['total_bytes'] / 1e6:,.1f} MB, "
            f"{vpc['unique_sources']:,} sources, {vpc['unique_destinations']:,} destinations, "
            f"{len(vpc['port_breakdown']):,} ports")
        if not coverage["complete"]:
            lines.append(f"  not fully monitored: {'; '.join(coverage['reasons'])}")
        if vpc["top_source_ips"]:
            lines.append("  top sources: " + ", ".join(f"{ip} ({n:,})" for ip, n in vpc["top_source_ips"][:5]))
        odd = {**vpc["malformed_records"]}
        if odd or vpc["out_of_window_records"]:
            lines.append(f"  {vpc['lines_read']:,} lines read; malformed: "
                         f"{', '.join(f'{k} {v:,}' for k, v in odd.items()) or 'none'}; "
                         f"outside the window: {vpc['out_of_window_records']:,}")
        if vpc["evidence"]["truncated"]:
            lines.append(f"  evidence tables capped (counts stay exact): {', '.join(vpc['evidence']['truncated'])}")
    anomalies = report["anomalies"]
    lines.append(f"anomalies: {len(anomalies)}")
    lines.extend(f"  {a['severity']:<6} {a['type']:<18} {a['description']}" for a in anomalies)
    return lines


def parse_files(pairs: Sequence[str]) -> dict[str, list[Path]]:
    """``VPC-A=PATH`` arguments as label -> paths (a label may be given several files)."""
    files: dict[str, list[Path]] = {}
    for pair in pairs:
        label, sep, path = pair.partition("=")
        if not sep or not label or not path:
            raise FlowFileError(f"--files {pair!r}: give LABEL=PATH, e.g. --files VPC-A=flows-a.log.gz")
        files.setdefault(label.strip(), []).append(Path(path))
    return files
