"""Alerts read back on the embedded default: drained from the inbox queue into an archive
kept in the emulator, so every reader sees every alert exactly once in the archive."""

from __future__ import annotations

import json
from typing import Any

from infra.emulated import STATE_BUCKET
from vpcpeer_orchestration.local import server
from vpcpeer_orchestration.local.stack import inbox_queue_name, stack_outputs


def _archive_prefix(stack: str) -> str:
    return f"alerts/{stack}/"


def received_alerts(stack: str = "dev", endpoint_url: str | None = None) -> list[dict[str, Any]]:
    """Every alert the topic delivered to the inbox, oldest first."""
    endpoint_url = endpoint_url or server.endpoint()
    outputs = stack_outputs(stack, endpoint_url)
    sqs, s3 = server.client("sqs", endpoint_url), server.client("s3", endpoint_url)
    url = sqs.get_queue_url(QueueName=inbox_queue_name(outputs))["QueueUrl"]
    while True:
        batch = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get("Messages", [])
        if not batch:
            break
        for message in batch:
            envelope = json.loads(message["Body"])
            alert = {
                "message_id": envelope.get("MessageId", message["MessageId"]),
                "timestamp": envelope.get("Timestamp"),
                "subject": envelope.get("Subject"),
                "message": envelope.get("Message", message["Body"]),
                "attributes": {k: v.get("Value") for k, v in (envelope.get("MessageAttributes") or {}).items()},
            }
            s3.put_object(Bucket=STATE_BUCKET, Key=f"{_archive_prefix(stack)}{alert['message_id']}.json",
                          Body=json.dumps(alert).encode())
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    alerts = []
    paginator = s3.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=STATE_BUCKET, Prefix=_archive_prefix(stack)):
        for item in page.get("Contents", []):
            alerts.append(json.loads(s3.get_object(Bucket=STATE_BUCKET, Key=item["Key"])["Body"].read()))
    return sorted(alerts, key=lambda a: (a.get("timestamp") or "", a["message_id"]))
