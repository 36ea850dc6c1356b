"""The built zip runs the handler on its own, with no repository on the path."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

from tests.analyzer_env import ENV
from vpcpeer_orchestration.packaging import build_lambda_zip

PROBE = r"""
import json, sys
sys.path.insert(0, sys.argv[1])
from datetime import datetime, timedelta, timezone
import boto3
from moto import mock_aws
import lambda_pkg
assert lambda_pkg.__file__.startswith(sys.argv[1]), lambda_pkg.__file__
from lambda_pkg.handler import lambda_handler
from lambda_pkg.window import last_complete_hour
window = last_complete_hour(datetime.now(timezone.utc), timedelta(minutes=10))
with mock_aws():
    logs = boto3.client("logs")
    topic = boto3.client("sns").create_topic(Name="t")["TopicArn"]
    import os; os.environ["SNS_TOPIC_ARN"] = topic
    from lambda_pkg import constants as c
    boto3.client("dynamodb").create_table(
        TableName="ledger", BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": c.LEDGER_KEY, "AttributeType": "S"},
                              {"AttributeName": c.LEDGER_DUE, "AttributeType": "S"},
                              {"AttributeName": c.LEDGER_EXPIRES, "AttributeType": "N"}],
        KeySchema=[{"AttributeName": c.LEDGER_KEY, "KeyType": "HASH"}],
        GlobalSecondaryIndexes=[{"IndexName": c.LEDGER_DUE_INDEX, "Projection": {"ProjectionType": "ALL"},
                                 "KeySchema": [{"AttributeName": c.LEDGER_DUE, "KeyType": "HASH"},
                                               {"AttributeName": c.LEDGER_EXPIRES, "KeyType": "RANGE"}]}])
    os.environ["ALERT_LEDGER_TABLE"] = "ledger"
    for group in (os.environ["VPC_A_LOG_GROUP"], os.environ["VPC_B_LOG_GROUP"]):
        logs.create_log_group(logGroupName=group)
        logs.create_log_stream(logGroupName=group, logStreamName="s")
        logs.put_log_events(logGroupName=group, logStreamName="s", logEvents=[
            {"timestamp": window.start_ms + 1000, "message": "2 1 eni-1 10.1.1.5 10.0.1.5 40000 443 6 5 500 1 2 ACCEPT OK"}])
    report = lambda_handler({"window": window.to_json()}, None)
print(json.dumps({"file": lambda_pkg.__file__, "requests": {k: v["total_requests"] for k, v in report["vpcs"].items()},
                  "alerts_sent": len(report["published"]["alerts_sent"])}))
"""


def test_unpacked_zip_runs_the_handler_without_the_repository(tmp_path: Path) -> None:
    package = build_lambda_zip(tmp_path / "lambda.zip")
    unpacked = tmp_path / "task"
    with zipfile.ZipFile(package.path) as archive:
        archive.extractall(unpacked)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHONPATH", "AWS_"))}
    env.update(ENV, AWS_ACCESS_KEY_ID="x", AWS_SECRET_ACCESS_KEY="x", AWS_DEFAULT_REGION="us-east-1")
    done = subprocess.run([sys.executable, "-I", "-c", PROBE, str(unpacked)], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["file"].startswith(str(unpacked))
    assert result["requests"] == {"VPC-A": 1, "VPC-B": 1}
    assert result["alerts_sent"] == 2  # no flow log in this account: each VPC's hour is flagged, not quiet
