"""The delivery ledger: one DynamoDB record per effect, claimed before it happens, marked after.

Shared by the standalone Lambda and the Dagster pipeline (the same table, the same ids), it
makes every alert go out once per pipeline re-execution whatever fails in between:

- ``claim`` is a conditional write: it succeeds only for an id never seen, or for a
  ``pending`` claim whose expiry passed (its holder crashed between publish and mark);
- ``mark_sent`` records the SNS message id; a sent record is never claimed again;
- ``release`` (publish failed) makes a pending alert due at once.

An alert's record carries the rendered message, so any later run, the Lambda's next
invocation or the Dagster sensor can deliver a due alert (``due``) exactly as it was
decided, under the same id. The network can still duplicate (a crash after SNS accepted a
message and before the mark, or SNS's own at-least-once delivery): each message carries its
alert id as a message attribute so a consumer can drop the rare duplicate.

Pure record logic plus a thin adapter over a DynamoDB client; stdlib and botocore only.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from lambda_pkg.constants import (
    DEFAULT_ALERT_CLAIM_SECONDS,
    LEDGER_DUE,
    LEDGER_DUE_INDEX,
    LEDGER_EXPIRES,
    LEDGER_KEY,
    LEDGER_PURGE,
)
from lambda_pkg.errors import LedgerError

PENDING, SENT = "pending", "sent"
KIND_ALERT, KIND_METRICS = "alert", "metrics"
# Only pending alert records carry the LEDGER_DUE attribute (with this value), so the
# sparse LEDGER_DUE_INDEX lists exactly the alerts not delivered yet.
DUE_VALUE = "due"
# Records expire (DynamoDB TTL on ``purge_at``) long after any re-run could need them.
RETENTION_SECONDS = 90 * 24 * 3600


def alert_id(stack: str, window_start: str, anomaly_key: str) -> str:
    """Stack, hour, rule, VPC and subject: what makes two anomalies the same alert."""
    return f"{stack}/{window_start}/{anomaly_key}"


def metrics_id(stack: str, window_start: str) -> str:
    """The custom metrics of one window of one stack."""
    return f"{stack}/{window_start}/metrics"


def failure_id(stack: str, run_id: str) -> str:
    """The alert that a pipeline run failed."""
    return f"{stack}/run-failure/{run_id}"


@dataclass(frozen=True)
class Message:
    """An SNS message as decided: subject, body and string message attributes."""

    subject: str
    body: str
    attributes: Mapping[str, str] = field(default_factory=dict)

    def to_item(self) -> dict[str, Any]:
        return {"subject": {"S": self.subject}, "body": {"S": self.body},
                "attributes": {"M": {k: {"S": v} for k, v in self.attributes.items()}}}

    @classmethod
    def from_item(cls, item: Mapping[str, Any]) -> Message:
        attributes = {k: v["S"] for k, v in item.get("attributes", {}).get("M", {}).items()}
        return cls(item["subject"]["S"], item["body"]["S"], attributes)


@dataclass(frozen=True)
class Record:
    """One ledger record as read back."""

    id: str
    kind: str
    state: str
    owner: str
    expires_at: float
    message: Message | None
    message_id: str | None

    @classmethod
    def from_item(cls, item: Mapping[str, Any]) -> Record:
        message = Message.from_item(item) if "body" in item else None
        return cls(item[LEDGER_KEY]["S"], item["kind"]["S"], item["state"]["S"], item.get("owner", {}).get("S", ""),
                   float(item.get(LEDGER_EXPIRES, {}).get("N", "0")), message,
                   item.get("message_id", {}).get("S"))


class AlertLedger:
    """The ledger table through a DynamoDB client."""

    def __init__(self, dynamodb: Any, table: str, *, claim_seconds: float = DEFAULT_ALERT_CLAIM_SECONDS,
                 clock: Callable[[], float] = time.time) -> None:
        if not table:
            raise LedgerError("no alert ledger table is configured (ALERT_LEDGER_TABLE); roll the stack out again")
        self.dynamodb = dynamodb
        self.table = table
        self.claim_seconds = claim_seconds
        self.clock = clock

    def _call(self, what: str, fn: Callable[..., Any], **kwargs: Any) -> Any:
        try:
            return fn(**kwargs)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                raise
            raise LedgerError(f"{what} on the alert ledger {self.table} failed: {exc}") from exc
        except BotoCoreError as exc:
            raise LedgerError(f"{what} on the alert ledger {self.table} failed: {exc}") from exc

    def claim(self, entry_id: str, owner: str, *, kind: str = KIND_ALERT, message: Message | None = None,
              context: Mapping[str, str] | None = None) -> bool:
        """Take ``entry_id`` for ``owner``; False if it was sent, or another live claim holds it."""
        now = self.clock()
        item: dict[str, Any] = {
            LEDGER_KEY: {"S": entry_id}, "kind": {"S": kind}, "state": {"S": PENDING}, "owner": {"S": owner},
            "claimed_at": {"N": f"{now:.3f}"}, LEDGER_EXPIRES: {"N": f"{now + self.claim_seconds:.3f}"},
            LEDGER_PURGE: {"N": str(int(now + RETENTION_SECONDS))},
            **{k: {"S": v} for k, v in (context or {}).items()},
        }
        if message is not None:
            item.update(message.to_item())
            item[LEDGER_DUE] = {"S": DUE_VALUE}
        try:
            self._call("PutItem", self.dynamodb.put_item, TableName=self.table, Item=item,
                       ConditionExpression="attribute_not_exists(#key) OR (#state = :pending AND #expires < :now)",
                       ExpressionAttributeNames={"#key": LEDGER_KEY, "#state": "state", "#expires": LEDGER_EXPIRES},
                       ExpressionAttributeValues={":pending": {"S": PENDING}, ":now": {"N": f"{now:.3f}"}})
        except ClientError:
            return False
        return True

    def take_over(self, record: Record, owner: str) -> bool:
        """Claim a due record as it is (its stored message kept); False if someone else did."""
        now = self.clock()
        try:
            self._call("UpdateItem", self.dynamodb.update_item, TableName=self.table, Key=self._key(record.id),
                       UpdateExpression="SET #owner = :owner, #expires = :expires, claimed_at = :now",
                       ConditionExpression="#state = :pending AND #expires < :now",
                       ExpressionAttributeNames={"#state": "state", "#owner": "owner", "#expires": LEDGER_EXPIRES},
                       ExpressionAttributeValues={":owner": {"S": owner}, ":pending": {"S": PENDING},
                                                  ":now": {"N": f"{now:.3f}"},
                                                  ":expires": {"N": f"{now + self.claim_seconds:.3f}"}})
        except ClientError:
            return False
        return True

    def mark_sent(self, entry_id: str, message_id: str | None = None) -> None:
        """Record the effect as done: never claimed again, no longer due."""
        values = {":sent": {"S": SENT}, ":now": {"N": f"{self.clock():.3f}"}}
        assignments = "#state = :sent, sent_at = :now"
        if message_id:
            values[":message_id"] = {"S": message_id}
            assignments += ", message_id = :message_id"
        self._call("UpdateItem", self.dynamodb.update_item, TableName=self.table, Key=self._key(entry_id),
                   UpdateExpression=f"SET {assignments} REMOVE #due",
                   ExpressionAttributeNames={"#state": "state", "#due": LEDGER_DUE},
                   ExpressionAttributeValues=values)

    def release(self, entry_id: str, owner: str) -> None:
        """Give a claim back (its effect failed): due at once for whoever delivers next."""
        try:
            self._call("UpdateItem", self.dynamodb.update_item, TableName=self.table, Key=self._key(entry_id),
                       UpdateExpression="SET #expires = :zero", ConditionExpression="#state = :pending AND #owner = :owner",
                       ExpressionAttributeNames={"#state": "state", "#owner": "owner", "#expires": LEDGER_EXPIRES},
                       ExpressionAttributeValues={":zero": {"N": "0"}, ":pending": {"S": PENDING},
                                                  ":owner": {"S": owner}})
        except ClientError:
            pass  # taken over meanwhile: the new holder delivers it

    @staticmethod
    def _key(entry_id: str) -> dict[str, Any]:
        return {LEDGER_KEY: {"S": entry_id}}

    def get(self, entry_id: str) -> Record | None:
        item = self._call("GetItem", self.dynamodb.get_item, TableName=self.table, Key=self._key(entry_id),
                          ConsistentRead=True).get("Item")
        return Record.from_item(item) if item else None

    def due(self, prefix: str = "") -> Iterator[Record]:
        """Pending alerts whose claim expired (never delivered, or their holder died), oldest first."""
        now = f"{self.clock():.3f}"
        kwargs: dict[str, Any] = {
            "TableName": self.table, "IndexName": LEDGER_DUE_INDEX,
            "KeyConditionExpression": "#due = :due AND #expires < :now",
            "ExpressionAttributeNames": {"#due": LEDGER_DUE, "#expires": LEDGER_EXPIRES},
            "ExpressionAttributeValues": {":due": {"S": DUE_VALUE}, ":now": {"N": now}},
        }
        while True:
            page = self._call("Query", self.dynamodb.query, **kwargs)
            for item in page.get("Items", []):
                record = Record.from_item(item)
                if record.id.startswith(prefix) and record.state == PENDING:
                    yield record
            if "LastEvaluatedKey" not in page:
                return
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
