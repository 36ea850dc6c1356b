"""Anomaly rules: pure functions of a per-VPC report and thresholds.

Each anomaly carries ``type``, ``vpc``, ``severity``, ``description``, its ``evidence``
and a ``key`` that identifies the condition (rule, VPC, subject) for de-duplication.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lambda_pkg.baseline import static_band
from lambda_pkg.constants import BASELINE_STATIC
from lambda_pkg.settings import Thresholds

HIGH, MEDIUM = "high", "medium"
SEVERITY_ORDER = (HIGH, MEDIUM)

# Every anomaly type the rules emit, with its severity (the one place both are defined).
ANOMALY_SEVERITY = {
    "flow_logs_silent": HIGH,
    "traffic_spike": HIGH,
    "traffic_drop": MEDIUM,
    "port_scan": HIGH,
    "external_traffic": HIGH,
    "unexpected_port": MEDIUM,
    "high_rejections": MEDIUM,
    "new_talker": MEDIUM,
}

Anomaly = dict[str, Any]
# The evidence entry that sums the unexpected ports beyond those listed one by one.
OTHER_PORTS = "other"
# New talkers of one VPC and hour reported one by one; the rest are one anomaly.
NEW_TALKERS_LISTED = 10


def _anomaly(kind: str, vpc: str, description: str, subject: str, evidence: dict[str, Any],
             severity: str | None = None) -> Anomaly:
    return {
        "type": kind,
        "vpc": vpc,
        "severity": severity or ANOMALY_SEVERITY[kind],
        "description": description,
        "key": f"{kind}:{vpc}:{subject}",
        "evidence": evidence,
    }


def requests_band(vpc: Mapping[str, Any], t: Thresholds) -> dict[str, Any]:
    """The VPC's requests band: learned and attached to the report (lambda_pkg/baseline.py), or
    the constant for a report analysed without history."""
    return (vpc.get("baseline") or {}).get("total_requests") or static_band("total_requests", t, "no history read")


def _learned_severity(deviation: float, t: Thresholds) -> str:
    """Past the band is medium; past twice its half-width, high."""
    return HIGH if deviation >= 2 * t.baseline_band_sigmas else MEDIUM


def traffic_spike(vpc: Mapping[str, Any], t: Thresholds) -> list[Anomaly]:
    """More requests than the hour's band: learned from the same hour of earlier days, or the
    reference's constant (baseline plus the threshold percentage)."""
    requests = vpc["total_requests"]
    band = requests_band(vpc, t)
    if band["high"] is None or requests <= band["high"]:
        return []
    evidence = {"total_requests": requests, "expected": band["expected"], "threshold": band["high"],
                "baseline": band, "top_source_ips": vpc["top_source_ips"][:5]}
    if band["method"] == BASELINE_STATIC:
        return [_anomaly(
            "traffic_spike", vpc["vpc"],
            f"{requests} requests in the hour exceed the baseline of {t.traffic_baseline:g} "
            f"by more than {t.anomaly_threshold_percent:g}% (threshold {t.spike_threshold:g})",
            "volume", evidence,
        )]
    deviation = (requests - band["expected"]) / band["spread"]
    return [_anomaly(
        "traffic_spike", vpc["vpc"],
        f"{requests} requests in the hour against {band['expected']:g} expected for this {band['basis']} "
        f"(band up to {band['high']:g}, learned from {band['samples']} days): {deviation:.1f} deviations above",
        "volume", {**evidence, "deviations": round(deviation, 2)}, severity=_learned_severity(deviation, t),
    )]


def traffic_drop(vpc: Mapping[str, Any], t: Thresholds) -> list[Anomaly]:
    """Fewer requests than the learned band allows: a hole in the traffic (a link, a service or a
    route gone). Only with a learned band, and only for an hour the flow log fully covered (a
    blind hour is flow_logs_silent, not a drop)."""
    requests = vpc["total_requests"]
    band = requests_band(vpc, t)
    coverage = vpc.get("coverage") or {}
    if band["method"] == BASELINE_STATIC or not coverage.get("complete", True) or requests >= band["low"]:
        return []
    deviation = (band["expected"] - requests) / band["spread"]
    return [_anomaly(
        "traffic_drop", vpc["vpc"],
        f"{requests} requests in the hour against {band['expected']:g} expected for this {band['basis']} "
        f"(band down to {band['low']:g}, learned from {band['samples']} days): {deviation:.1f} deviations below",
        "volume", {"total_requests": requests, "expected": band["expected"], "threshold": band["low"],
                   "baseline": band, "deviations": round(deviation, 2)},
        severity=_learned_severity(deviation, t),
    )]


def unexpected_ports(vpc: Mapping[str, Any], t: Thresholds) -> list[Anomaly]:
    """Traffic headed into a VPC on a port that VPC does not allow (replies excluded).

    Seen either in the VPC's own flow log (it arrived) or in the peer's (it left the peer
    toward this VPC, often rejected there on egress); the anomaly names the VPC entered.
    """
    found = []
    evidence = vpc["evidence"]
    for target, allowed, observations in (
        (vpc["vpc"], vpc["allowed_ports"], evidence["unexpected_ports"]),
        (vpc["peer"], vpc["peer_allowed_ports"], evidence["unexpected_ports_to_peer"]),
    ):
        for port, detail in observations.items():
            if detail["count"] < t.unexpected_port_min_count:
                continue
            if port == OTHER_PORTS:
                # Beyond the ports listed one by one (a wide scan): one alert for the rest, not thousands.
                found.append(_anomaly(
                    "unexpected_port", target,
                    f"{detail['count']} flows headed into {target} on {detail['ports']} further ports outside its "
                    f"allowed ports {allowed} (seen in {vpc['vpc']}'s flow log)",
                    "other-ports",
                    {"ports": detail["ports"], "count": detail["count"], "allowed_ports": allowed,
                     "observed_in": vpc["vpc"]},
                ))
                continue
            found.append(_anomaly(
                "unexpected_port", target,
                f"{detail['count']} flows headed into {target} on port {port}, which is not among its allowed "
                f"ports {allowed} (seen in {vpc['vpc']}'s flow log)",
                port,
                {"port": int(port), "count": detail["count"], "allowed_ports": allowed,
                 "observed_in": vpc["vpc"], "top_sources": detail["top_sources"]},
            ))
    return found


def external_traffic(vpc: Mapping[str, Any], t: Thresholds) -> list[Anomaly]:
    """Unsolicited flows from outside both VPC CIDRs into the VPC (replies to NAT traffic excluded)."""
    ext = vpc["evidence"]["unsolicited_external"]
    if ext["count"] <= t.external_traffic_threshold:
        return []
    return [_anomaly(
        "external_traffic", vpc["vpc"],
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
        "high_rejections", vpc["vpc"],
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
            "port_scan", vpc["vpc"],
            f"{cand['source']} was rejected on {cand['distinct_ports']} distinct ports across "
            f"{cand['distinct_hosts']} hosts; {cand['rejected']} of its {cand['records']} flows rejected",
            cand["source"],
            {**cand, "reject_ratio": round(ratio, 3)},
        ))
    return found


def flow_logs_silent(vpc: Mapping[str, Any], t: Thresholds) -> list[Anomaly]:
    """The VPC's flow log did not cover the window: its zeros are blindness, not quiet."""
    coverage = vpc.get("coverage")
    if not coverage or coverage["complete"]:
        return []
    return [_anomaly(
        "flow_logs_silent", vpc["vpc"],
        f"{vpc['vpc']} was not monitored for the whole window: {'; '.join(coverage['reasons'])}",
        "coverage",
        {"reasons": coverage["reasons"], "records": coverage["records"], "peer_flows_in": coverage["peer_flows_in"],
         "flow_logs": coverage["flow_logs"]},
    )]


def new_talkers(vpc: Mapping[str, Any], t: Thresholds) -> list[Anomaly]:
    """Hosts of this VPC, or its service ports, talking across the peering for the first time in
    ``talker_days`` (the verdict lambda_pkg/talkers.py attached; none while it is learning)."""
    verdict = vpc.get("new_talkers") or {}
    new = verdict.get("new", [])
    found = []
    for talker in new[:NEW_TALKERS_LISTED]:
        what = (f"{talker['value']} talked across the peering" if talker["kind"] == "host" else
                f"port {talker['value']} of {vpc['vpc']} was opened from the peer")
        found.append(_anomaly(
            "new_talker", vpc["vpc"],
            f"{what} for the first time in {t.talker_days} days ({talker['flows']} flows in the hour)",
            f"{talker['kind']}:{talker['value']}", {**talker, "count": talker["flows"], "days": t.talker_days},
        ))
    rest = new[NEW_TALKERS_LISTED:]
    if rest:
        found.append(_anomaly(
            "new_talker", vpc["vpc"],
            f"{len(rest)} further hosts or ports of {vpc['vpc']} talked across the peering for the first time in "
            f"{t.talker_days} days ({sum(r['flows'] for r in rest)} flows in the hour)",
            "others", {"talkers": len(rest), "count": sum(r["flows"] for r in rest),
                       "sample": [r["value"] for r in rest[:NEW_TALKERS_LISTED]], "days": t.talker_days},
        ))
    return found


RULES = (flow_logs_silent, traffic_spike, traffic_drop, port_scans, external_traffic, unexpected_ports, high_rejections,
         new_talkers)


def _count(anomaly: Anomaly) -> int:
    evidence = anomaly["evidence"]
    return int(evidence.get("count") or evidence.get("records") or evidence.get("total_requests") or 0)


def detect_anomalies(vpcs: Mapping[str, Mapping[str, Any]], thresholds: Thresholds) -> list[Anomaly]:
    """Every rule over every VPC, one anomaly per condition, high severity first.

    The same flows can be logged by both VPCs; when two logs report the same condition
    (same key), the larger observation is kept rather than the two added.
    """
    by_key: dict[str, Anomaly] = {}
    for vpc in vpcs.values():
        for rule in RULES:
            for anomaly in rule(vpc, thresholds):
                kept = by_key.get(anomaly["key"])
                if kept is None or _count(anomaly) > _count(kept):
                    by_key[anomaly["key"]] = anomaly
    return sorted(by_key.values(), key=lambda a: (SEVERITY_ORDER.index(a["severity"]), a["vpc"], a["key"]))
