"""IAM roles and inline policies, KMS keys and aliases."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from infra.emulation._aws import found, ignoring_missing, short_hash, tag_list
from infra.emulation.registry import Created, PreviewIdentity, PreviewNames, ResourceType, register, stable_hex

if TYPE_CHECKING:
    from infra.emulation.engine import Context


@register
class Role(ResourceType):
    token = "aws:iam/role:Role"

    def create(self, ctx: Context, name: str, i: dict[str, Any]) -> Created:
        role_name = i.get("name") or f"{name}-{short_hash(name)}"
        role = ctx.iam.create_role(RoleName=role_name, AssumeRolePolicyDocument=i["assumeRolePolicy"],
                                   Description=i.get("description", ""), Tags=tag_list(ctx.tags(i)))["Role"]
        return role_name, {"arn": role["Arn"], "name": role_name, "uniqueId": role["RoleId"]}

    def exists(self, ctx: Context, resource_id: str) -> bool:
        return found(lambda: ctx.iam.get_role(RoleName=resource_id))

    def preview_identity(self, names: PreviewNames) -> PreviewIdentity:
        return PreviewIdentity(id=names.physical, arn=f"arn:aws:iam::{names.account_id}:role/{names.physical}")


@register
class RolePolicy(ResourceType):
    """An inline policy: PutRolePolicy writes it whole, so a change is an overwrite."""

    token = "aws:iam/rolePolicy:RolePolicy"
    overwrite_in_place = True

    def create(self, ctx: Context, name: str, i: dict[str, Any]) -> Created:
        policy_name = i.get("name") or f"{name}-{short_hash(name)}"
        ctx.iam.put_role_policy(RoleName=i["role"], PolicyName=policy_name, PolicyDocument=i["policy"])
        return f"{i['role']}:{policy_name}", {"name": policy_name}

    def delete(self, ctx: Context, resource_id: str, inputs: dict[str, Any]) -> None:
        ignoring_missing(lambda: ctx.iam.delete_role_policy(RoleName=inputs["role"], PolicyName=resource_id.split(":", 1)[1]))


@register
class Key(ResourceType):
    token = "aws:kms/key:Key"

    def create(self, ctx: Context, name: str, i: dict[str, Any]) -> Created:
        key = ctx.kms.create_key(Description=i.get("description", ""), Policy=i["policy"],
                                 Tags=[{"TagKey": t["Key"], "TagValue": t["Value"]} for t in tag_list(ctx.tags(i))])["KeyMetadata"]
        if i.get("enableKeyRotation"):
            ctx.kms.enable_key_rotation(KeyId=key["KeyId"])
        return key["KeyId"], {"arn": key["Arn"], "keyId": key["KeyId"]}

    def exists(self, ctx: Context, resource_id: str) -> bool:
        return found(lambda: ctx.kms.describe_key(KeyId=resource_id))

    def preview_identity(self, names: PreviewNames) -> PreviewIdentity:
        """A UUID-shaped key ID, as KMS hands out."""
        key_id = f"{stable_hex(names.token, names.name, length=8)}-0000-4000-8000-{stable_hex(names.name, length=12)}"
        return PreviewIdentity(id=key_id, arn=names.arn("kms", f"key/{key_id}"), outputs={"keyId": key_id})


@register
class Alias(ResourceType):
    token = "aws:kms/alias:Alias"

    def create(self, ctx: Context, name: str, i: dict[str, Any]) -> Created:
        ctx.kms.create_alias(AliasName=i["name"], TargetKeyId=i["targetKeyId"])
        return i["name"], {"arn": f"arn:aws:kms:{ctx.region}:{ctx.account_id}:{i['name']}"}
