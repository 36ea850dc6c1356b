"""A valid analyzer environment and config for tests."""

from __future__ import annotations

from lambda_pkg.settings import AnalyzerConfig, config_from_env

ENV = {
    "VPC_A_LOG_GROUP": "/aws/vpc/flowlogs/test/vpc-a",
    "VPC_B_LOG_GROUP": "/aws/vpc/flowlogs/test/vpc-b",
    "VPC_A_CIDR": "10.0.0.0/16",
    "VPC_B_CIDR": "10.1.0.0/16",
    "SNS_TOPIC_ARN": "arn:aws:sns:us-east-1:123456789012:test-alerts",
    "TRAFFIC_BASELINE": "417",
    "ANOMALY_THRESHOLD": "20",
    "ANALYZER_ENGINE": "raw",
    "VPC_A_ALLOWED_PORTS": "443,8080",
    "VPC_B_ALLOWED_PORTS": "443, 3306",
}


def config(**overrides: str) -> AnalyzerConfig:
    return config_from_env({**ENV, **overrides})
