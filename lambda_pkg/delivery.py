"""Effects of an analysed window, in order and once: alerts, then metrics, through the ledger.

Both the standalone handler and the Dagster assets call these, so an alert decided by one
is never sent again by the other. Order of effects: the report is computed first (nothing
is published for a failed analysis), then each alert is claimed, published and marked one
by one, then the metrics. A failure at any point leaves the window retryable: what was
done is recorded and skipped by the retry, what is missing is completed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from lambda_pkg.errors import PublishError
from lambda_pkg.ledger import KIND_METRICS, AlertLedger, Message, Record, alert_id, metrics_id
from lambda_pkg.publish import MetricsPublisher, alert_message, alert_subject, publish_message
from lambda_pkg.window import Window

ALERT_ID_ATTRIBUTE = "alert_id"


@dataclass(frozen=True)
class Alert:
    """One decided alert: its ledger id and the message that carries it."""

    id: str
    message: Message


def anomaly_alerts(stack: str, report: Mapping[str, Any], anomalies: list[Mapping[str, Any]],
                   origin: Mapping[str, Any]) -> list[Alert]:
    """One alert per anomaly, each message naming its id (also as the ``alert_id`` attribute)."""
    alerts = []
    for anomaly in anomalies:
        ident = alert_id(stack, report["window"]["start"], anomaly["key"])
        attributes = {ALERT_ID_ATTRIBUTE: ident, "stack": stack, "type": anomaly["type"], "vpc": anomaly["vpc"],
                      "severity": anomaly["severity"], "window_start": report["window"]["start"]}
        body = alert_message(report, [anomaly], origin, alert_id=ident)
        alerts.append(Alert(ident, Message(alert_subject(report, anomaly), body, attributes)))
    return alerts


@dataclass
class Delivery:
    """What one delivery pass did: ids sent now, ids already sent or in flight elsewhere, failures."""

    sent: dict[str, str] = field(default_factory=dict)  # id -> SNS message id
    skipped: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)  # id -> error
    permanent: set[str] = field(default_factory=set)  # failed ids whose target refused for good

    def merge(self, other: Delivery) -> Delivery:
        return Delivery({**self.sent, **other.sent}, self.skipped + other.skipped, {**self.failed, **other.failed},
                        self.permanent | other.permanent)

    def raise_for_failures(self) -> None:
        """After everything that could go out went out: fail, so the step or invocation is retried
        (unless every failure was permanent: then a retry would only wait for the same answer)."""
        if self.failed:
            first = next(iter(self.failed.values()))
            raise PublishError(f"{len(self.failed)} alert(s) could not be published and are due for redelivery "
                               f"({', '.join(sorted(self.failed))}): {first}",
                               permanent=set(self.failed) <= self.permanent)


class Deliverer:
    """Claims, publishes and marks alerts for one owner (a Dagster run, a Lambda request)."""

    def __init__(self, ledger: AlertLedger, sns: Any, topic_arn: str, owner: str) -> None:
        self.ledger = ledger
        self.sns = sns
        self.topic_arn = topic_arn
        self.owner = owner

    def _publish(self, entry_id: str, message: Message, delivery: Delivery) -> None:
        try:
            message_id = publish_message(self.sns, self.topic_arn, message.subject, message.body, message.attributes)
        except PublishError as exc:
            self.ledger.release(entry_id, self.owner)
            delivery.failed[entry_id] = str(exc)
            if exc.permanent:
                delivery.permanent.add(entry_id)
            return
        self.ledger.mark_sent(entry_id, message_id)
        delivery.sent[entry_id] = message_id

    def deliver(self, alerts: list[Alert], context: Mapping[str, str] | None = None) -> Delivery:
        """Each alert not sent (nor being sent) yet: claim with its message, publish, mark."""
        delivery = Delivery()
        for alert in alerts:
            if not self.ledger.claim(alert.id, self.owner, message=alert.message, context=context):
                delivery.skipped.append(alert.id)
                continue
            self._publish(alert.id, alert.message, delivery)
        return delivery

    def drain(self, prefix: str = "") -> Delivery:
        """Deliver every due alert (publish failed, or its holder died) with the message decided then."""
        delivery = Delivery()
        for record in self.ledger.due(prefix):
            if record.message is None or not self.ledger.take_over(record, self.owner):
                continue
            self._publish(record.id, record.message, delivery)
        return delivery

    def record(self, entry_id: str) -> Record | None:
        return self.ledger.get(entry_id)


def publish_metrics_once(ledger: AlertLedger, cloudwatch: Any, stack: str, report: Mapping[str, Any],
                         window: Window, owner: str) -> bool:
    """Publish the window's metrics unless done (or being done) already; True if published now.

    The ledger claim keeps two concurrent publishers apart; the datapoint check inside
    MetricsPublisher covers a publisher that died between PutMetricData and the mark.
    """
    entry = metrics_id(stack, report["window"]["start"])
    if not ledger.claim(entry, owner, kind=KIND_METRICS):
        return False
    try:
        published = MetricsPublisher(cloudwatch).publish(report, window)
    except Exception:
        ledger.release(entry, owner)
        raise
    ledger.mark_sent(entry)
    return published
