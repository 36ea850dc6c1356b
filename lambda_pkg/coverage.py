"""Whether each VPC's flow log saw the whole window: no blind hour passes for a quiet one.

A report of zero requests is only a fact if the VPC's flow log was there and delivering.
``assess`` (pure) marks a VPC's coverage incomplete, with the reasons, when no flow log
delivers to its log group, none is active, deliveries fail, the flow log was created after
the window began and nothing arrived, its log holds nothing while the peer logged accepted
flows into it, or its log group received nothing in or after the window (a live flow log
writes every interval, NODATA included: a log silent since is a dead pipeline, not a quiet
hour). Incomplete coverage becomes a high-severity ``flow_logs_silent``
anomaly and keeps that VPC's metrics out of CloudWatch.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

from lambda_pkg.engines import aws_calls
from lambda_pkg.settings import Thresholds
from lambda_pkg.window import Window

ACTIVE = "ACTIVE"
DELIVERY_FAILED = "FAILED"


def destination_group(flow_log: Mapping[str, Any]) -> str | None:
    """The CloudWatch log group a flow log delivers to (by name, or from its destination ARN)."""
    if flow_log.get("LogGroupName"):
        return flow_log["LogGroupName"]
    destination = flow_log.get("LogDestination") or ""
    if ":log-group:" not in destination:
        return None
    return destination.split(":log-group:", 1)[1].removesuffix(":*")


def flow_logs_by_group(ec2: Any, log_groups: list[str]) -> dict[str, list[dict[str, Any]]]:
    """The flow logs delivering to each of ``log_groups``, as EC2 describes them (status, errors, creation).

    One paginated DescribeFlowLogs for all groups: a flow log created with a destination ARN
    is matched by that ARN, so no server-side filter on the group name would find it.
    """
    found: dict[str, list[dict[str, Any]]] = {group: [] for group in log_groups}
    token = None
    while True:
        response = aws_calls.call("DescribeFlowLogs", ec2.describe_flow_logs, **({"NextToken": token} if token else {}))
        for flow_log in response.get("FlowLogs", []):
            group = destination_group(flow_log)
            if group in found:
                found[group].append(_describe(flow_log))
        token = response.get("NextToken")
        if not token:
            return found


def delivered_since(logs: Any, log_group: str, since_ms: int) -> bool:
    """True if the log group holds any record from ``since_ms`` on (one short read)."""
    page = aws_calls.call(f"FilterLogEvents on {log_group}", logs.filter_log_events, logGroupName=log_group,
                          startTime=since_ms, limit=1)
    return bool(page.get("events"))


def _describe(flow_log: Mapping[str, Any]) -> dict[str, Any]:
    created = flow_log.get("CreationTime")
    return {
        "id": flow_log.get("FlowLogId"),
        "resource": flow_log.get("ResourceId"),
        "status": flow_log.get("FlowLogStatus"),
        "traffic_type": flow_log.get("TrafficType"),
        "deliver_status": flow_log.get("DeliverLogsStatus"),
        "deliver_error": flow_log.get("DeliverLogsErrorMessage"),
        "created": created.astimezone(timezone.utc).isoformat() if isinstance(created, datetime) else created,
    }


def assess(vpc: Mapping[str, Any], peer: Mapping[str, Any], flow_logs: list[Mapping[str, Any]], window: Window,
           thresholds: Thresholds, delivered_after: bool = True) -> dict[str, Any]:
    """The coverage block of one VPC's report (``delivered_after``: the group received records
    after the window; only asked when the window itself holds none)."""
    # Every record of the window, whatever its status (NODATA shows a live log) or shape.
    records = sum(vpc["records_by_status"].values()) + sum(vpc["malformed_records"].values())
    peer_flows_in = int(peer["accepted_to_peer"])
    reasons = []
    active = [f for f in flow_logs if f.get("status") == ACTIVE]
    if not flow_logs:
        reasons.append(f"no flow log delivers to {vpc['log_group']}")
    elif not active:
        reasons.append(f"its flow log is not active ({', '.join(str(f.get('status')) for f in flow_logs)})")
    failing = [f for f in active if f.get("deliver_status") == DELIVERY_FAILED]
    if active and len(failing) == len(active):
        reasons.append(f"flow-log delivery fails: {failing[0].get('deliver_error') or 'no reason given'}")
    created = [_instant(f.get("created")) for f in active]
    if active and records == 0 and all(c is not None and c > window.start for c in created):
        reasons.append(f"its flow log was created at {min(created).isoformat()}, after the window began, "  # type: ignore[type-var]
                       "and no record arrived")
    silent = _silent_beside_peer(vpc, peer, records, thresholds)
    if silent:
        reasons.append(silent)
    elif records == 0 and active and not delivered_after:
        reasons.append(f"{vpc['log_group']} received no record in or after the window")
    return {"complete": not reasons, "reasons": reasons, "records": records, "peer_flows_in": peer_flows_in,
            "flow_logs": [dict(f) for f in flow_logs]}


def assess_files(vpc: Mapping[str, Any], peer: Mapping[str, Any], files: list[str],
                 thresholds: Thresholds) -> dict[str, Any]:
    """The coverage block of a VPC read from flow-log files (``files``: the paths given for it)."""
    records = sum(vpc["records_by_status"].values()) + sum(vpc["malformed_records"].values())
    reasons = [] if files else ["no flow-log file was given for it"]
    silent = _silent_beside_peer(vpc, peer, records, thresholds)
    if files and silent:
        reasons.append(silent)
    return {"complete": not reasons, "reasons": reasons, "records": records,
            "peer_flows_in": int(peer["accepted_to_peer"]), "flow_logs": [], "files": list(files)}


def _silent_beside_peer(vpc: Mapping[str, Any], peer: Mapping[str, Any], records: int,
                        thresholds: Thresholds) -> str | None:
    """The reason a VPC's empty log is blindness, not quiet: its peer saw flows go into it."""
    peer_flows_in = int(peer["accepted_to_peer"])
    if records == 0 and peer_flows_in >= thresholds.flow_logs_silent_min_peer_flows:
        return f"its log holds no record while {peer['vpc']} logged {peer_flows_in} accepted flows into it"
    return None


def _instant(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None
