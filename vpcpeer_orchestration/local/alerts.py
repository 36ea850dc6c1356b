"""Alerts read back on the embedded default: drained from the inbox queue into an archive
kept in the emulator, so every reader sees every alert exactly once in the archive."""

from __future__ import annotations

import json
from typing import Any

from vpcpeer_orchestration.local import layout
from vpcpeer_orchestration.local.stack import EmbeddedStack, inbox_queue_name


def received_alerts(stack: EmbeddedStack) -> list[dict[str, Any]]:
    """Every alert the stack's topic delivered to the inbox, oldest first."""
    sqs = stack.clients("sqs")
    prefix = layout.alert_archive_prefix(stack.name)
    url = sqs.get_queue_url(QueueName=inbox_queue_name(stack.outputs()))["QueueUrl"]
    drained = False
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
            stack.state.put(f"{prefix}{alert['message_id']}.json", alert)
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
            drained = True
    if drained:
        stack.aws.flush()  # archived and deleted from the queue: keep both facts together
    alerts = [stack.state.get(key) for key in stack.state.keys(prefix)]
    return sorted((a for a in alerts if a), key=lambda a: (a.get("timestamp") or "", a["message_id"]))
