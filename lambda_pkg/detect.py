"""Anomaly rules: pure functions of a per-VPC report and thresholds.

Each anomaly carries ``type``, ``vpc``, ``severity``, ``description``, its ``evidence``
and a ``key`` that identifies the condition (rule, VPC, subject) for de-duplication.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lambda_pkg.settings import Thresholds

HIGH, MEDIUM = "high", "medium"
SEVERITY_ORDER = (HIGH, MEDIUM)

Anomaly = dict[str, Any]


def _anomaly(kind: str, vpc: str, severity: str, description: str, subject: str, evidence: dict[str, Any]) -> Anomaly:
    return {
        "type": kind,
        "vpc": vpc,
        "severity": severity,
        "description": description,
        "key": f"{kind}:{vpc}:{subject}",
        "evidence": evidence,
    }


def traffic_spike(vpc: Mapping[str, Any], t: Thresholds) -> list[Anomaly]:
    """More requests than the baseline plus the threshold percentage."""
    requests = vpc["total_requests"]
    if requests <= t.spike_threshold:
        return []
    return [_anomaly(
        "traffic_spike", vpc["vpc"], HIGH,
        f"{requests} requests in the hour exceed the baseline of {t.traffic_baseline:g} "
        f"by more than {t.anomaly_threshold_percent:g}% (threshold {t.spike_threshold:g})",
        "volume",
        {"total_requests": requests, "baseline": t.traffic_baseline, "threshold": t.spike_threshold,
         "top_source_ips": vpc["top_source_ips"][:5]},
    )]


def unexpected_ports(vpc: Mapping[str, Any], t: Thresholds) -> list[Anomaly]:
    """Traffic entering the VPC on a port its security group does not allow (replies excluded)."""
    found = []
    for port, detail in vpc["evidence"]["unexpected_ports"].items():
        if detail["count"] < t.unexpected_port_min_count:
            continue
        found.append(_anomaly(
            "unexpected_port", vpc["vpc"], MEDIUM,
            f"{detail['count']} flows entered {vpc['vpc']} on port {port}, which is not among its allowed "
            f"ports {vpc['allowed_ports']}",
            port,
            {"port": int(port), "count": detail["count"], "allowed_ports": vpc["allowed_ports"],
             "top_sources": detail["top_sources"]},
        ))
    return found


def external_traffic(vpc: Mapping[str, Any], t: Thresholds) -> list[Anomaly]:
    """Unsolicited flows from outside both VPC CIDRs into the VPC (replies to NAT traffic excluded)."""
    ext = vpc["evidence"]["unsolicited_external"]
    if ext["count"] <= t.external_traffic_threshold:
        return []
    return [_anomaly(
        "external_traffic", vpc["vpc"], HIGH,
        f"{ext['count']} unsolicited flows from outside both peered CIDRs reached {vpc['vpc']} "
        f"(threshold {t.external_traffic_threshold})",
        "inbound",
        {"count": ext["count"], "external_records": vpc["external_traffic_count"],
         "top_sources": ext["top_sources"], "top_ports": ext["top_ports"]},
    )]


def high_rejections(vpc: Mapping[str, Any], t: Thresholds) -> list[Anomaly]:
    """More rejected flows than the threshold."""
    rejected = vpc["rejected_connections"]
    if rejected <= t.rejection_threshold:
        return []
    return [_anomaly(
        "high_rejections", vpc["vpc"], MEDIUM,
        f"{rejected} rejected flows in the hour (threshold {t.rejection_threshold})",
        "rejects",
        {"rejected_connections": rejected, **vpc["evidence"]["rejections"]},
    )]


def port_scans(vpc: Mapping[str, Any], t: Thresholds) -> list[Anomaly]:
    """One source touching many distinct ports or hosts, mostly rejected."""
    found = []
    for cand in vpc["evidence"]["scan_candidates"]:
        wide = cand["distinct_ports"] >= t.port_scan_min_ports or cand["distinct_hosts"] >= t.port_scan_min_hosts
        ratio = cand["rejected"] / cand["records"] if cand["records"] else 0.0
        if not wide or cand["records"] < t.port_scan_min_records or ratio < t.port_scan_min_reject_ratio:
            continue
        found.append(_anomaly(
            "port_scan", vpc["vpc"], HIGH,
            f"{cand['source']} probed {cand['distinct_ports']} ports on {cand['distinct_hosts']} hosts; "
            f"{cand['rejected']} of {cand['records']} flows rejected",
            cand["source"],
            {**cand, "reject_ratio": round(ratio, 3)},
        ))
    return found


RULES = (traffic_spike, port_scans, external_traffic, unexpected_ports, high_rejections)


def detect_anomalies(vpcs: Mapping[str, Mapping[str, Any]], thresholds: Thresholds) -> list[Anomaly]:
    """Every rule over every VPC, high severity first, in a stable order."""
    found = [a for vpc in vpcs.values() for rule in RULES for a in rule(vpc, thresholds)]
    return sorted(found, key=lambda a: (SEVERITY_ORDER.index(a["severity"]), a["vpc"], a["key"]))
