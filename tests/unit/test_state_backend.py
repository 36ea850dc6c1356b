"""Stack outputs read from a Pulumi DIY backend's checkpoint, without the Pulumi CLI.

The checkpoint below follows Pulumi's versioned checkpoint format (version 3) as a DIY
backend stores it; no real one can be produced here (no Pulumi CLI), so the layout and the
field names are the contract under test.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from infra.stack_files import StackNotRolledOut
from infra.state_backend import UnreadableStackState, checkpoint_keys, read_stack_outputs
from infra.wire import SECRET_MASK, SECRET_SIG, SIG_KEY

CHECKPOINT = {
    "version": 3,
    "checkpoint": {
        "stack": "organization/vpcpeer/dev",
        "latest": {
            "manifest": {"time": "2026-11-28T10:00:00Z", "magic": "x", "version": "v3.200.0"},
            "resources": [
                {"urn": "urn:pulumi:dev::vpcpeer::pulumi:pulumi:Stack::vpcpeer-dev", "custom": False,
                 "type": "pulumi:pulumi:Stack",
                 "outputs": {"vpc_a_id": "vpc-0abc", "vpc_a_allowed_ports": [443, 8080],
                             "alert_email": {SIG_KEY: SECRET_SIG, "ciphertext": "v1:abc"}}},
                {"urn": "urn:pulumi:dev::vpcpeer::aws:ec2/vpc:Vpc::vpc-a", "custom": True, "type": "aws:ec2/vpc:Vpc",
                 "id": "vpc-0abc", "outputs": {"cidrBlock": "10.0.0.0/16"}},
            ],
        },
    },
}


def write(root: Path, document: dict, compress: bool = False) -> None:
    plain, gz = checkpoint_keys("vpcpeer", "dev")
    path = root / (gz if compress else plain)
    path.parent.mkdir(parents=True)
    body = json.dumps(document).encode()
    path.write_bytes(gzip.compress(body) if compress else body)


@pytest.mark.parametrize("compress", [False, True])
def test_outputs_come_from_the_stack_resource_with_secrets_masked(tmp_path, compress) -> None:
    write(tmp_path, CHECKPOINT, compress)
    outputs = read_stack_outputs(f"file://{tmp_path}", "vpcpeer", "dev")
    assert outputs == {"vpc_a_id": "vpc-0abc", "vpc_a_allowed_ports": [443, 8080], "alert_email": SECRET_MASK}


def test_a_stack_never_rolled_out_says_so(tmp_path) -> None:
    with pytest.raises(StackNotRolledOut, match="no checkpoint of stack 'dev'.*roll the stack out"):
        read_stack_outputs(f"file://{tmp_path}", "vpcpeer", "dev")
    empty = {"version": 3, "checkpoint": {"stack": "dev", "latest": {"resources": []}}}
    write(tmp_path, empty)
    with pytest.raises(StackNotRolledOut, match="never rolled out"):
        read_stack_outputs(f"file://{tmp_path}", "vpcpeer", "dev")


def test_something_else_is_not_taken_for_a_checkpoint(tmp_path) -> None:
    write(tmp_path, {"hello": "world"})
    with pytest.raises(UnreadableStackState, match="not a Pulumi stack checkpoint"):
        read_stack_outputs(f"file://{tmp_path}", "vpcpeer", "dev")
    with pytest.raises(UnreadableStackState, match="only file:// and s3://"):
        read_stack_outputs("azblob://container", "vpcpeer", "dev")


def test_an_s3_backend_is_read_through_the_given_client(monkeypatch) -> None:
    for key, value in {"AWS_ACCESS_KEY_ID": "t", "AWS_SECRET_ACCESS_KEY": "t", "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(key, value)
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="pulumi-state")
        s3.put_object(Bucket="pulumi-state", Key=f"team/{checkpoint_keys('vpcpeer', 'dev')[0]}",
                      Body=json.dumps(CHECKPOINT).encode())
        outputs = read_stack_outputs("s3://pulumi-state/team", "vpcpeer", "dev", s3_client=lambda: s3)
    assert outputs["vpc_a_id"] == "vpc-0abc"
