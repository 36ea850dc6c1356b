"""Code signing (infra/components/signing.py): S3 artifacts, the Signer profile and job, and
Lambda's code-signing configuration, as the offline preview names them.

Preview only. The embedded AWS (moto) has no signing jobs and no code-signing configurations,
so the emulated rollout runs with ``code_signing: off`` (infra.runner.EmulatedRunner) and never
declares these types; were one declared, ``create`` raises UnsupportedResourceType rather than
pretend to sign anything.
"""

from __future__ import annotations

from infra.emulation.registry import PreviewIdentity, PreviewNames, ResourceType, register, stable_hex

CANNOT_SIGN = ("the embedded AWS (moto) has no signing jobs or code-signing configurations; "
               "its rollout runs with code_signing: off")


class _SigningPart(ResourceType):
    preview_only = CANNOT_SIGN


@register
class Bucket(_SigningPart):
    """The ID is the bucket's name; S3 ARNs carry neither region nor account."""

    token = "aws:s3/bucket:Bucket"

    def preview_identity(self, names: PreviewNames) -> PreviewIdentity:
        return PreviewIdentity(id=names.physical, arn=f"arn:aws:s3:::{names.physical}",
                               outputs={"bucket": names.physical})


@register
class BucketObject(_SigningPart):
    """Every upload to a versioned bucket is a new version: the signing job names it."""

    token = "aws:s3/bucketObjectv2:BucketObjectv2"

    def preview_identity(self, names: PreviewNames) -> PreviewIdentity:
        key = str(names.inputs.get("key") or names.physical)
        return PreviewIdentity(id=key, arn=f"arn:aws:s3:::{names.inputs.get('bucket')}/{key}",
                               outputs={"versionId": stable_hex(names.token, names.name, length=32)})


@register
class SigningProfile(_SigningPart):
    """A profile's signatures are checked against its versioned ARN."""

    token = "aws:signer/signingProfile:SigningProfile"

    def preview_identity(self, names: PreviewNames) -> PreviewIdentity:
        arn = names.arn("signer", f"/signing-profiles/{names.physical}")
        version = stable_hex(names.token, names.name, length=10)
        return PreviewIdentity(id=names.physical, arn=arn,
                               outputs={"version": version, "versionArn": f"{arn}/{version}"})


@register
class SigningJob(_SigningPart):
    """The signed copy lands under the destination prefix, named by the job's ID."""

    token = "aws:signer/signingJob:SigningJob"

    def preview_identity(self, names: PreviewNames) -> PreviewIdentity:
        job = stable_hex(names.token, names.name, length=32)
        job_id = f"{job[:8]}-{job[8:12]}-{job[12:16]}-{job[16:20]}-{job[20:]}"
        destination = (names.inputs.get("destination") or {}).get("s3") or {}
        signed = {"bucket": destination.get("bucket"), "key": f"{destination.get('prefix', '')}{job_id}.zip"}
        return PreviewIdentity(id=job_id, arn=names.arn("signer", f"/signing-jobs/{job_id}"),
                               outputs={"jobId": job_id, "status": "Succeeded", "signedObjects": [{"s3s": [signed]}]})


@register
class CodeSigningConfig(_SigningPart):
    """Lambda names the configuration by its ARN, ``csc-`` plus 17 hex digits."""

    token = "aws:lambda/codeSigningConfig:CodeSigningConfig"

    def preview_identity(self, names: PreviewNames) -> PreviewIdentity:
        config_id = "csc-" + stable_hex(names.token, names.name)
        arn = names.arn("lambda", f"code-signing-config:{config_id}")
        return PreviewIdentity(id=arn, arn=arn, outputs={"configId": config_id})
