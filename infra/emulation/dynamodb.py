"""DynamoDB tables (the alert ledger)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from infra.emulation._aws import found, tag_list
from infra.emulation.errors import ReplacementNotSupported
from infra.emulation.registry import Created, PreviewIdentity, PreviewNames, ResourceType, register

if TYPE_CHECKING:
    from infra.emulation.engine import Context


def _key_schema(i: dict[str, Any]) -> list[dict[str, str]]:
    """A table's or index's key: ``keySchemas`` blocks, or the older hashKey/rangeKey pair."""
    if i.get("keySchemas"):
        return [{"AttributeName": k["attributeName"], "KeyType": k["keyType"]} for k in i["keySchemas"]]
    return [{"AttributeName": i["hashKey"], "KeyType": "HASH"},
            *([{"AttributeName": i["rangeKey"], "KeyType": "RANGE"}] if i.get("rangeKey") else [])]


@register
class Table(ResourceType):
    """A table holds data (the delivery ledger): a change that would replace it is an error
    naming the keys, never a silent delete that forgets what was sent."""

    token = "aws:dynamodb/table:Table"
    updatable_keys = frozenset({"globalSecondaryIndexes"})

    def create(self, ctx: Context, name: str, i: dict[str, Any]) -> Created:
        args: dict[str, Any] = {
            "TableName": i["name"],
            "BillingMode": i.get("billingMode") or "PAY_PER_REQUEST",
            "AttributeDefinitions": [{"AttributeName": a["name"], "AttributeType": a["type"]} for a in i["attributes"]],
            "KeySchema": _key_schema(i),
            "Tags": tag_list(ctx.tags(i)),
        }
        indexes = [
            {"IndexName": g["name"],
             "KeySchema": _key_schema(g),
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

    def update(self, ctx: Context, name: str, resource_id: str, i: dict[str, Any]) -> dict[str, Any]:
        """The indexes may only be re-spelled (hashKey/rangeKey as keySchemas blocks): the
        table holds the delivery ledger, so one that would need new indexes is never dropped
        and recreated here."""
        table = ctx.dynamodb.describe_table(TableName=resource_id)["Table"]
        actual = {g["IndexName"]: g["KeySchema"] for g in table.get("GlobalSecondaryIndexes") or []}
        wanted = {g["name"]: _key_schema(g) for g in i.get("globalSecondaryIndexes") or []}
        if actual != wanted:
            raise ReplacementNotSupported(
                f"{name}: the table {resource_id} has indexes {sorted(actual)} keyed differently from the program's "
                f"{sorted(wanted)}; the emulator does not rebuild a table that holds the alert ledger. "
                "Start a fresh embedded AWS (VPCPEER_HOME) to change its indexes.")
        return {"arn": table["TableArn"], "name": resource_id, "streamArn": table.get("LatestStreamArn")}

    def exists(self, ctx: Context, resource_id: str) -> bool:
        return found(lambda: ctx.dynamodb.describe_table(TableName=resource_id))

    def preview_identity(self, names: PreviewNames) -> PreviewIdentity:
        return PreviewIdentity(id=names.physical, arn=names.arn("dynamodb", f"table/{names.physical}"))
