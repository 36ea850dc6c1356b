"""DynamoDB tables (the alert ledger)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from infra.emulation._aws import found, tag_list
from infra.emulation.registry import Created, PreviewIdentity, PreviewNames, ResourceType, register

if TYPE_CHECKING:
    from infra.emulation.engine import Context


@register
class Table(ResourceType):
    """A table holds data (the delivery ledger): a change that would replace it is an error
    naming the keys, never a silent delete that forgets what was sent."""

    token = "aws:dynamodb/table:Table"

    def create(self, ctx: Context, name: str, i: dict[str, Any]) -> Created:
        args: dict[str, Any] = {
            "TableName": i["name"],
            "BillingMode": i.get("billingMode") or "PAY_PER_REQUEST",
            "AttributeDefinitions": [{"AttributeName": a["name"], "AttributeType": a["type"]} for a in i["attributes"]],
            "KeySchema": [{"AttributeName": i["hashKey"], "KeyType": "HASH"},
                          *([{"AttributeName": i["rangeKey"], "KeyType": "RANGE"}] if i.get("rangeKey") else [])],
            "Tags": tag_list(ctx.tags(i)),
        }
        indexes = [
            {"IndexName": g["name"],
             "KeySchema": [{"AttributeName": g["hashKey"], "KeyType": "HASH"},
                           *([{"AttributeName": g["rangeKey"], "KeyType": "RANGE"}] if g.get("rangeKey") else [])],
             "Projection": {"ProjectionType": g.get("projectionType") or "ALL"}}
            for g in i.get("globalSecondaryIndexes") or []
        ]
        if indexes:
            args["GlobalSecondaryIndexes"] = indexes
        encryption = i.get("serverSideEncryption") or {}
        if encryption.get("enabled"):
            args["SSESpecification"] = {"Enabled": True, "SSEType": "KMS",
                                        **({"KMSMasterKeyId": encryption["kmsKeyArn"]} if encryption.get("kmsKeyArn") else {})}
        table = ctx.dynamodb.create_table(**args)["TableDescription"]
        ttl = i.get("ttl") or {}
        if ttl.get("enabled"):
            ctx.dynamodb.update_time_to_live(TableName=i["name"], TimeToLiveSpecification={
                "Enabled": True, "AttributeName": ttl["attributeName"]})
        if (i.get("pointInTimeRecovery") or {}).get("enabled"):
            ctx.dynamodb.update_continuous_backups(TableName=i["name"], PointInTimeRecoverySpecification={
                "PointInTimeRecoveryEnabled": True})
        return i["name"], {"arn": table["TableArn"], "name": i["name"], "streamArn": table.get("LatestStreamArn")}

    def exists(self, ctx: Context, resource_id: str) -> bool:
        return found(lambda: ctx.dynamodb.describe_table(TableName=resource_id))

    def preview_identity(self, names: PreviewNames) -> PreviewIdentity:
        return PreviewIdentity(id=names.physical, arn=names.arn("dynamodb", f"table/{names.physical}"))
