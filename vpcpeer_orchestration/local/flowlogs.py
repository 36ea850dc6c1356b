"""The flow-log emulator: plays the VPC Flow Logs service on the local AWS.

For every flow log configured in the emulator it writes the records of the traffic model
(``traffic_model``: diurnal volume around the reference's ~10,000 requests a day, hosts
from the real subnets, cross-VPC traffic on the service ports with replies, internet
traffic, NODATA, ACCEPT/REJECT by the security-group rules) into the flow log's log group.
The topology and rules are read (``topology``) when an hour is written, so a rule changed
by hand changes the following hours.

Hours and injected scenarios (``scenarios``) are written atomically and once: under a lock
held across processes (two writers: one waits, then finds the work done), a marker in the
emulator's state bucket (``layout``) is claimed, the records go to log streams of their own
(``<eni>-all-<hour>``), and the marker is set done. A writer killed half-way leaves its
claim: the next writer deletes that write's streams and writes it again, so an hour is
never partly or doubly written. boto3 is only reached through the injected client factory.
"""

from __future__ import annotations

import contextlib
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timedelta, timezone
from functools import partial
from typing import Any

from lambda_pkg.constants import VPC_A, VPC_B
from vpcpeer_orchestration.local import scenarios
from vpcpeer_orchestration.local.layout import StateObjects, flow_log_marker_key
from vpcpeer_orchestration.local.topology import read_topology
from vpcpeer_orchestration.local.traffic_model import Event, FlowLogEmulatorError, TrafficModel

__all__ = [
    "CLOUDWATCH_MAX_EVENT_AGE",
    "HOUR",
    "MAX_BACKFILL_HOURS",
    "RETENTION_LIMIT",
    "FlowLogEmulator",
    "FlowLogEmulatorError",
    "floor_hour",
]

HOUR = timedelta(hours=1)
# CloudWatch Logs' PutLogEvents refuses events older than this.
CLOUDWATCH_MAX_EVENT_AGE = timedelta(days=14)
# The oldest hour start still writable: its whole hour must be younger than the limit.
RETENTION_LIMIT = CLOUDWATCH_MAX_EVENT_AGE - HOUR
# Complete past hours a back-fill can write (the CLI's --hours ceiling).
MAX_BACKFILL_HOURS = int(RETENTION_LIMIT / HOUR)
# The emulator's volume multiplier: 1.0 is about 10,000 records a day per VPC, so the ceiling is
# about a million a day, what the embedded AWS takes in minutes (the CLI's --scale ceiling).
MAX_SCALE = 100.0
# PutLogEvents takes at most this many events per call.
PUT_LOG_EVENTS_MAX_BATCH = 5000
HOURS_MARKER, SCENARIOS_MARKER = "hours", "scenarios"
WRITING, DONE = "writing", "done"

ClientFactory = Callable[[str], Any]


def _refuse_rejections(group: str, sent: int, info: dict) -> None:
    """CloudWatch Logs drops events older than 14 days (or too far ahead) and says so only in
    the response: a write it trimmed is an error, never a count of records that are not there."""
    too_old = info.get("tooOldLogEventEndIndex", 0) or 0
    expired = info.get("expiredLogEventEndIndex", 0) or 0
    too_new = info.get("tooNewLogEventStartIndex")
    dropped = max(too_old, expired) + (sent - too_new if too_new is not None else 0)
    if dropped:
        raise FlowLogEmulatorError(
            f"{group}: CloudWatch Logs rejected {dropped} of {sent} events ({info}); the hour lies outside "
            "what it accepts now (14 days back, 2 hours ahead): write hours inside that range")


def floor_hour(moment: datetime) -> datetime:
    """The start of ``moment``'s hour, in UTC (the unit the emulator writes and marks)."""
    return moment.astimezone(timezone.utc).replace(minute=0, second=0, microsecond=0)


class FlowLogEmulator:
    """Writes emulated flow logs into the local AWS, once per hour and scenario."""

    def __init__(self, client_factory: ClientFactory, *, seed: int = 42, scale: float = 1.0,
                 service_ports: Mapping[str, tuple[int, ...]] | None = None,
                 progress: Callable[[str], None] | None = None,
                 lock: Callable[[], contextlib.AbstractContextManager[Any]] = contextlib.nullcontext,
                 vpc_ids: Iterable[str] | None = None) -> None:
        """``lock()`` excludes other writers to the same emulator (EmbeddedStack passes a file
        lock); ``vpc_ids`` are the stack's VPCs (default: every flow-logged VPC)."""
        self.client_factory = client_factory
        self.lock = lock
        self.vpc_ids = tuple(vpc_ids) if vpc_ids is not None else None
        self.ec2, self.logs = client_factory("ec2"), client_factory("logs")
        self.markers = StateObjects(client_factory("s3"))
        if not (isinstance(scale, (int, float)) and 0 < scale <= MAX_SCALE):  # nan fails both comparisons
            raise FlowLogEmulatorError(f"scale {scale!r} is out of range: use a number above 0 and at most {MAX_SCALE:g}")
        self.seed = seed
        self.scale = scale
        self.service_ports = service_ports
        self.progress = progress

    def model(self) -> TrafficModel:
        """The traffic model of the flow-logged VPC pair as the emulator holds it right now."""
        by_label = {s.label: s for s in read_topology(self.ec2, self.service_ports, self.vpc_ids)}
        if VPC_A not in by_label or VPC_B not in by_label:
            raise FlowLogEmulatorError(
                f"no flow-logged {VPC_A}/{VPC_B} pair in the emulator (found {sorted(by_label) or 'none'}); "
                "roll the stack out first (`vpcpeer local rollout`)"
            )
        account = self.client_factory("sts").get_caller_identity()["Account"]
        return TrafficModel(by_label[VPC_A], by_label[VPC_B], account, self.seed, self.scale)

    # -- writing ----------------------------------------------------------------------

    def _ensure_streams(self, events: Iterable[Event]) -> None:
        from botocore.exceptions import ClientError

        for group, stream in sorted({(e.log_group, e.stream) for e in events}):
            try:
                self.logs.create_log_stream(logGroupName=group, logStreamName=stream)
            except ClientError as exc:
                if exc.response["Error"]["Code"] != "ResourceAlreadyExistsException":
                    raise

    def write(self, events: list[Event]) -> int:
        """Deliver events, one PutLogEvents per stream and batch, in time order; returns the count.

        Events of a VPC without a flow log (no log group) go nowhere, as on AWS.
        """
        events = [e for e in events if e.log_group]
        self._ensure_streams(events)
        by_stream: dict[tuple[str, str], list[Event]] = defaultdict(list)
        for event in events:
            by_stream[(event.log_group, event.stream)].append(event)
        for (group, stream), batch in sorted(by_stream.items()):
            batch.sort(key=lambda e: e.timestamp_ms)
            for i in range(0, len(batch), PUT_LOG_EVENTS_MAX_BATCH):
                chunk = batch[i:i + PUT_LOG_EVENTS_MAX_BATCH]
                response = self.logs.put_log_events(logGroupName=group, logStreamName=stream, logEvents=[
                    {"timestamp": e.timestamp_ms, "message": e.message} for e in chunk])
                _refuse_rejections(group, len(chunk), response.get("rejectedLogEventsInfo") or {})
        return len(events)

    def _write_once(self, key: str, suffix: str, events: Callable[[], list[Event]]) -> int | None:
        """Claim ``key``, write the events to streams suffixed ``suffix``, mark it done.

        None if it was done already. A claim left by a writer that died (seen while holding
        the lock, so nobody else is writing) has its streams deleted and is written again.
        """
        with self.lock():
            marker = self.markers.get(key)
            if marker is not None and marker.get("state", DONE) == DONE:
                return None
            batch = [Event(e.log_group, f"{e.stream}-{suffix}", e.timestamp_ms, e.message) for e in events()
                     if e.log_group]
            if marker is not None:
                self._delete_streams({(e.log_group, e.stream) for e in batch})
            self.markers.put(key, {"state": WRITING})
            count = self.write(batch)
            self.markers.put(key, {"state": DONE, "records": count})
            return count

    def _delete_streams(self, streams: Iterable[tuple[str, str]]) -> None:
        from botocore.exceptions import ClientError

        for group, stream in sorted(streams):
            try:
                self.logs.delete_log_stream(logGroupName=group, logStreamName=stream)
            except ClientError as exc:
                if exc.response["Error"]["Code"] != "ResourceNotFoundException":
                    raise

    def backfill(self, hours: int, now: datetime | None = None) -> dict[str, int]:
        """Write normal traffic for the last ``hours`` complete hours not written yet."""
        now = now or datetime.now(timezone.utc)
        last = floor_hour(now) - HOUR
        count = min(hours, MAX_BACKFILL_HOURS)
        return self.ensure_hours([last - k * HOUR for k in range(count)], now)

    def ensure_hours(self, hours: Iterable[datetime], now: datetime | None = None) -> dict[str, int]:
        """Write normal traffic for the given complete hours not yet written (as AWS would have).

        Hours not complete at ``now``, or too old for CloudWatch to accept, are skipped.
        Returns records written by hour (ISO 8601), only for hours written by this call.
        """
        now = now or datetime.now(timezone.utc)
        oldest = floor_hour(now) - RETENTION_LIMIT
        model: TrafficModel | None = None
        written: dict[str, int] = {}
        for hour in sorted({floor_hour(h) for h in hours}):
            if hour + HOUR > now or hour < oldest:
                continue
            model = model or self.model()
            key = flow_log_marker_key(HOURS_MARKER, model.a.vpc_id, hour)
            count = self._write_once(key, f"{hour:%Y%m%dT%H}", partial(model.normal_hour, hour))
            if count is None:
                continue
            written[hour.isoformat()] = count
            if self.progress:
                self.progress(f"  {hour:%Y-%m-%d %H:00} UTC  {count:5d} records")
        return written

    def inject(self, name: str, hour: datetime) -> int:
        """Write a scenario into ``hour`` (once); returns records written (0 if already there)."""
        scenario = scenarios.get(name)
        hour = floor_hour(hour)
        if hour < floor_hour(datetime.now(timezone.utc)) - RETENTION_LIMIT:
            raise FlowLogEmulatorError(
                f"{hour:%Y-%m-%d %H:00} UTC is older than CloudWatch accepts events "
                f"({CLOUDWATCH_MAX_EVENT_AGE.days} days); pick a later --at hour"
            )
        model = self.model()
        key = flow_log_marker_key(SCENARIOS_MARKER, model.a.vpc_id, hour, name)
        count = self._write_once(key, f"{hour:%Y%m%dT%H}-{name}", partial(scenario.events, model, hour))
        if count is None:
            return 0
        if self.progress:
            self.progress(f"  {hour:%Y-%m-%d %H:00} UTC  {count:5d} records  scenario {name}")
        return count
