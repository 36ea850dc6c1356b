"""Code signing of the analyzer (CKV_AWS_272): the signed artifact Lambda deploys, and the
configuration that makes Lambda refuse anything else.

The reproducible zip from ``lambda_pkg`` is uploaded to a versioned, private bucket; an AWS
Signer job signs that exact object version with the stack's signing profile and writes the
signed copy under ``signed/``; the function deploys from the signed copy, and its code-signing
configuration is set to ``Enforce`` with the profile as the only allowed publisher. A new zip
is a new object version, hence a new signing job (every input of a job forces a replacement),
hence a new signed key: the function's code follows without a hash of its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

# AWS Signer's platform for Lambda deployment packages.
LAMBDA_SIGNING_PLATFORM = "AWSLambda-SHA384-ECDSA"
UNSIGNED_KEY = "unsigned/traffic-analyzer.zip"
SIGNED_PREFIX = "signed/"
# Old object versions (previous zips and their signed copies) are kept this long for rollback.
NONCURRENT_VERSION_DAYS = 90


@dataclass
class CodeSigningArgs:
    """Inputs of the signing pipeline.

    ``code_path`` is the reproducible zip; ``key_arn`` the customer-managed key the artifact
    bucket encrypts with (the stack's alerts key, which the account administers).
    """

    prefix: str
    code_path: str
    key_arn: pulumi.Input[str]
    tags: dict[str, str]


def signing_profile_prefix(prefix: str) -> str:
    """Signer profile names take letters, digits and underscores only (no dashes)."""
    return prefix.replace("-", "_") + "_analyzer_"


def _field(value: Any, name: str) -> Any:
    return value[name] if isinstance(value, dict) else getattr(value, name)


def _signed_location(signed_objects: Any) -> tuple[str, str]:
    """(bucket, key) of the job's signed copy; the job signs one object."""
    s3 = _field(signed_objects[0], "s3s")[0]
    return _field(s3, "bucket"), _field(s3, "key")


class CodeSigning(pulumi.ComponentResource):
    """Bucket, signing profile, signing job and the Lambda code-signing configuration."""

    def __init__(self, name: str, args: CodeSigningArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("vpcpeer:analyzer:CodeSigning", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)

        self.bucket = aws.s3.Bucket(
            "code-artifacts",
            bucket_prefix=f"{args.prefix}-code-",  # bucket names are global: AWS appends a unique suffix
            force_destroy=True,  # holds only build artifacts, rebuilt from the repository
            tags={**args.tags, "Name": f"{args.prefix}-code-artifacts"},
            opts=child,
        )
        bucket_child = pulumi.ResourceOptions(parent=self.bucket)
        # Signer reads a source object by version: the bucket must be versioned.
        versioning = aws.s3.BucketVersioning(
            "code-artifacts-versioning",
            bucket=self.bucket.id,
            versioning_configuration=aws.s3.BucketVersioningVersioningConfigurationArgs(status="Enabled"),
            opts=bucket_child,
        )
        aws.s3.BucketServerSideEncryptionConfiguration(
            "code-artifacts-encryption",
            bucket=self.bucket.id,
            rules=[aws.s3.BucketServerSideEncryptionConfigurationRuleArgs(
                apply_server_side_encryption_by_default=aws.s3.BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultArgs(
                    sse_algorithm="aws:kms", kms_master_key_id=args.key_arn),
                bucket_key_enabled=True,
            )],
            opts=bucket_child,
        )
        aws.s3.BucketPublicAccessBlock(
            "code-artifacts-private",
            bucket=self.bucket.id,
            block_public_acls=True, block_public_policy=True, ignore_public_acls=True, restrict_public_buckets=True,
            opts=bucket_child,
        )
        aws.s3.BucketLifecycleConfiguration(
            "code-artifacts-lifecycle",
            bucket=self.bucket.id,
            rules=[aws.s3.BucketLifecycleConfigurationRuleArgs(
                id="expire-old-artifacts",
                status="Enabled",
                filter=aws.s3.BucketLifecycleConfigurationRuleFilterArgs(prefix=""),
                noncurrent_version_expiration=aws.s3.BucketLifecycleConfigurationRuleNoncurrentVersionExpirationArgs(
                    noncurrent_days=NONCURRENT_VERSION_DAYS),
                abort_incomplete_multipart_upload=aws.s3.BucketLifecycleConfigurationRuleAbortIncompleteMultipartUploadArgs(
                    days_after_initiation=7),
            )],
            opts=pulumi.ResourceOptions(parent=self.bucket, depends_on=[versioning]),
        )
        self.unsigned = aws.s3.BucketObjectv2(
            "analyzer-unsigned-zip",
            bucket=self.bucket.id,
            key=UNSIGNED_KEY,
            source=pulumi.FileAsset(args.code_path),
            tags={**args.tags, "Name": f"{args.prefix}-analyzer-unsigned"},
            opts=pulumi.ResourceOptions(parent=self, depends_on=[versioning]),
        )
        self.profile = aws.signer.SigningProfile(
            "analyzer-signing-profile",
            # Names of cancelled profiles are never reusable: a prefix lets a replacement get a fresh one.
            name_prefix=signing_profile_prefix(args.prefix),
            platform_id=LAMBDA_SIGNING_PLATFORM,
            tags={**args.tags, "Name": f"{args.prefix}-analyzer-signing"},
            opts=child,
        )
        self.job = aws.signer.SigningJob(
            "analyzer-signing-job",
            profile_name=self.profile.name,
            source=aws.signer.SigningJobSourceArgs(s3=aws.signer.SigningJobSourceS3Args(
                bucket=self.bucket.id, key=self.unsigned.key, version=self.unsigned.version_id)),
            destination=aws.signer.SigningJobDestinationArgs(s3=aws.signer.SigningJobDestinationS3Args(
                bucket=self.bucket.id, prefix=SIGNED_PREFIX)),
            ignore_signing_job_failure=False,  # a failed signature fails the rollout, nothing unsigned deploys
            opts=child,
        )
        signed = self.job.signed_objects.apply(_signed_location)
        self.signed_bucket = signed.apply(lambda location: location[0])
        self.signed_key = signed.apply(lambda location: location[1])
        self.config = aws.lambda_.CodeSigningConfig(
            "analyzer-code-signing",
            description=f"Only code signed by the {args.prefix} analyzer profile deploys",
            allowed_publishers=aws.lambda_.CodeSigningConfigAllowedPublishersArgs(
                signing_profile_version_arns=[self.profile.version_arn]),
            policies=aws.lambda_.CodeSigningConfigPoliciesArgs(untrusted_artifact_on_deployment="Enforce"),
            tags={**args.tags, "Name": f"{args.prefix}-analyzer-code-signing"},
            opts=child,
        )
        self.register_outputs({"code_signing_config_arn": self.config.arn, "signing_profile_arn": self.profile.arn})
