"""New talkers: addresses and service ports never seen across the peering in the previous days.

A host that starts talking across the peering is often the first sign of a compromise or a
misrouted deployment, and a port of a VPC that the peer has never opened is a service nobody
planned for. Each report lists its talkers (``aggregate.talkers``): the sources of accepted flows
between the two VPCs (a host that answered is one too) and the ports of this VPC the peer
opened connections to. This module remembers them per stack and VPC, and marks the ones not
seen in the previous ``talker_days`` (default 7) as new; the rule ``new_talker`` reports them.

What is remembered, per VPC (the VPC an address belongs to, or whose service a port is): for
each host and port the first and last hour it was seen, and the first hour ever learned.

- The first ``talker_days`` after that first hour only learn (every host would be new).
- A talker is new in hour H if it was never seen before H, or not within ``talker_days``
  before it. A new talker's first hour becomes H, so an analysis of H run again (a retry, a
  re-materialization) finds the same talkers new, and the delivery ledger sends their alert
  once.
- State is bounded: at most TALKER_HOSTS_KEPT hosts and TALKER_PORTS_KEPT ports per VPC (the
  ones seen longest ago go first; those not seen within ``talker_days`` go at once: they
  would be new again anyway), and a report lists at most ``aggregate.TALKERS_LISTED`` of each.
  Past the bound, a host forgotten early may be reported again when it returns.

The state is one item of the delivery ledger's DynamoDB table (key ``<stack>/talkers``), which
the standalone Lambda and Dagster already share: no new table, and both see what the other
learned. Writes are conditional on the version read; a concurrent writer makes the change be
replayed on the newer state (learning is a merge, so the order does not matter).
"""

from __future__ import annotations

import ipaddress
import json
import random
import time
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from lambda_pkg.constants import LEDGER_KEY, LEDGER_PURGE
from lambda_pkg.errors import TalkerStateUnavailable

HOUR_SECONDS = 3600
# Per VPC, remembered at most (about 35 bytes each in the item: well under DynamoDB's 400 KB).
TALKER_HOSTS_KEPT = 2048
TALKER_PORTS_KEPT = 512
KINDS = {"hosts": "host", "ports": "port"}
# The state is kept as long as the ledger keeps its records (refreshed by every write).
STATE_RETENTION_SECONDS = 90 * 24 * 3600
# Conditional writes tried before giving up: each round of a race lets one writer through.
SAVE_ATTEMPTS = 10

# VPC label -> {"since": first hour learned, "hosts": {address: [first, last]}, "ports": {port: [first, last]}};
# hours are epoch hours (epoch seconds // 3600).
State = dict[str, dict[str, Any]]
# VPC label -> {"hosts": {address: flows}, "ports": {port: flows}}: what one hour showed.
Seen = dict[str, dict[str, dict[str, int]]]


def epoch_hour(report: Mapping[str, Any]) -> int:
    """The hour a report covers, as an epoch hour."""
    start = datetime.fromisoformat(report["window"]["start"].replace("Z", "+00:00"))
    return int(start.timestamp()) // HOUR_SECONDS


def observed(report: Mapping[str, Any]) -> Seen:
    """The hour's talkers by the VPC they belong to. Both VPCs' logs show the flows between
    them: each talker counts the larger of the two observations, not their sum."""
    vpcs = report["vpcs"]
    networks = {label: ipaddress.ip_network(vpc["cidr"]) for label, vpc in vpcs.items()}
    seen: Seen = {label: {"hosts": {}, "ports": {}} for label in vpcs}
    for label, vpc in vpcs.items():
        listed = vpc.get("talkers") or {}
        for address, flows in listed.get("hosts", {}).items():
            ip = ipaddress.ip_address(address)
            home = next((name for name, net in networks.items() if ip in net), None)
            if home is not None:
                hosts = seen[home]["hosts"]
                hosts[address] = max(hosts.get(address, 0), flows)
        ports = seen[label]["ports"]
        for port, flows in listed.get("ports", {}).items():
            ports[port] = max(ports.get(port, 0), flows)
    return seen


def _is_new(entry: list[int] | None, hour: int, days: int) -> bool:
    return entry is None or entry[0] >= hour or entry[1] < hour - days * 24


def judge(state: State, seen: Seen, hour: int, days: int) -> dict[str, dict[str, Any]]:
    """Per VPC: whether it is still learning, and its talkers new in ``hour``, busiest first."""
    verdicts = {}
    for label, kinds in seen.items():
        known = state.get(label) or {}
        since = min(known.get("since", hour), hour)  # nothing learned yet: this hour starts the learning
        learning = hour < since + days * 24
        new = [] if learning else [
            {"kind": KINDS[kind], "value": value, "flows": flows}
            for kind, values in kinds.items() for value, flows in values.items()
            if _is_new(known.get(kind, {}).get(value), hour, days)
        ]
        new.sort(key=lambda n: (-n["flows"], n["kind"], n["value"]))
        verdicts[label] = {"learning": learning, "learning_until": since + days * 24, "new": new}
    return verdicts


def learn(state: State, seen: Seen, hour: int, days: int) -> None:
    """Remember what ``hour`` showed (in place); a talker new in it starts there."""
    for label, kinds in seen.items():
        known = state.setdefault(label, {"since": hour, "hosts": {}, "ports": {}})
        known["since"] = min(known.get("since", hour), hour)
        for kind, values in kinds.items():
            table = known.setdefault(kind, {})
            for value in values:
                entry = table.get(value)
                if _is_new(entry, hour, days):
                    table[value] = [hour, max(hour, entry[1]) if entry else hour]
                else:
                    entry[1] = max(entry[1], hour)
        _bound(known, hour, days)


def _bound(known: dict[str, Any], hour: int, days: int) -> None:
    """Forget what would be new again anyway, then the oldest beyond the caps."""
    for kind, cap in (("hosts", TALKER_HOSTS_KEPT), ("ports", TALKER_PORTS_KEPT)):
        table = known.get(kind, {})
        stale = [value for value, (_, last) in table.items() if last < hour - days * 24]
        for value in stale:
            del table[value]
        if len(table) > cap:
            for value, _ in sorted(table.items(), key=lambda kv: (kv[1][1], kv[0]))[:len(table) - cap]:
                del table[value]


def attach(report: dict[str, Any], state: State, days: int) -> tuple[int, Seen]:
    """Judge the report's talkers against ``state``, put each VPC's verdict on its report
    (``new_talkers``), then learn the hour into ``state``. Returns the hour and what it showed
    (what ``TalkerStore.save`` replays if another writer got there first)."""
    hour = epoch_hour(report)
    seen = observed(report)
    for label, verdict in judge(state, seen, hour, days).items():
        report["vpcs"][label]["new_talkers"] = verdict
    learn(state, seen, hour, days)
    return hour, seen


class TalkerStore:
    """The talker state of one stack in the delivery ledger's table; a thin DynamoDB adapter."""

    def __init__(self, client: Any, table: str, stack: str) -> None:
        self.client = client
        self.table = table
        self.key = {LEDGER_KEY: {"S": f"{stack}/talkers"}}

    def load(self) -> tuple[State, int]:
        """The state and its version (0: nothing learned yet)."""
        from botocore.exceptions import BotoCoreError, ClientError  # not at import: the code location stays light

        try:
            item = self.client.get_item(TableName=self.table, Key=self.key, ConsistentRead=True).get("Item")
        except (BotoCoreError, ClientError) as exc:
            raise TalkerStateUnavailable(f"reading the talker state from {self.table} failed: {exc}") from exc
        if not item:
            return {}, 0
        return json.loads(item["state"]["S"]), int(item["version"]["N"])

    def save(self, state: State, version: int, hours: Iterable[tuple[int, Seen]], days: int) -> int:
        """Write ``state`` over ``version``; if another writer got there first, learn ``hours``
        into the newer state and try again. Returns the version written."""
        from botocore.exceptions import BotoCoreError, ClientError

        for attempt in range(SAVE_ATTEMPTS):
            if attempt:
                time.sleep(random.uniform(0, 0.02 * attempt))  # apart from the other writers
            try:
                condition = ({"ConditionExpression": "attribute_not_exists(#k)", "ExpressionAttributeNames": {"#k": LEDGER_KEY}}
                             if version == 0 else
                             {"ConditionExpression": "#v = :v", "ExpressionAttributeNames": {"#v": "version"},
                              "ExpressionAttributeValues": {":v": {"N": str(version)}}})
                self.client.put_item(TableName=self.table, Item={
                    **self.key, "state": {"S": json.dumps(state, separators=(",", ":"), sort_keys=True)},
                    "version": {"N": str(version + 1)},
                    LEDGER_PURGE: {"N": str(int(time.time()) + STATE_RETENTION_SECONDS)},
                }, **condition)
                return version + 1
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                    raise TalkerStateUnavailable(f"writing the talker state to {self.table} failed: {exc}") from exc
            except BotoCoreError as exc:
                raise TalkerStateUnavailable(f"writing the talker state to {self.table} failed: {exc}") from exc
            state, version = self.load()
            for hour, seen in hours:
                learn(state, seen, hour, days)
        raise TalkerStateUnavailable(f"the talker state in {self.table} changed {SAVE_ATTEMPTS} times while it was "
                                     "written; run the analysis again")
