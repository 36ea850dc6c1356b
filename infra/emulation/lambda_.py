"""Lambda functions (updated in place, as Pulumi does) and their resource-based permissions."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from infra.emulation._aws import as_int, found, ignoring_missing
from infra.emulation.errors import EmulatedRolloutError
from infra.emulation.registry import Created, PreviewIdentity, PreviewNames, ResourceType, register

if TYPE_CHECKING:
    from infra.emulation.engine import Context


def _code_bytes(name: str, code: Any) -> bytes:
    """The zip behind a FileArchive input."""
    path = getattr(code, "path", None) or (code.get("archive") if isinstance(code, dict) else None)
    if not path:
        raise EmulatedRolloutError(f"{name}: the function code must be a FileArchive")
    with open(path, "rb") as handle:
        return handle.read()


def _configuration(i: dict[str, Any]) -> dict[str, Any]:
    """The settings CreateFunction and UpdateFunctionConfiguration share."""
    args: dict[str, Any] = {
        "Runtime": i["runtime"], "Role": i["role"], "Handler": i["handler"], "Description": i.get("description", ""),
        "Timeout": as_int(i.get("timeout")) or 3, "MemorySize": as_int(i.get("memorySize")) or 128,
        "Environment": {"Variables": (i.get("environment") or {}).get("variables") or {}},
    }
    if i.get("deadLetterConfig"):
        args["DeadLetterConfig"] = {"TargetArn": i["deadLetterConfig"]["targetArn"]}
    if i.get("tracingConfig"):
        args["TracingConfig"] = {"Mode": i["tracingConfig"]["mode"]}
    if i.get("kmsKeyArn"):
        args["KMSKeyArn"] = i["kmsKeyArn"]
    return args


@register
class Function(ResourceType):
    """Everything but the name changes in place (code, configuration, concurrency, tags)."""

    token = "aws:lambda/function:Function"
    updatable_keys = frozenset({
        "code", "sourceCodeHash", "description", "runtime", "handler", "role", "timeout", "memorySize",
        "environment", "deadLetterConfig", "tracingConfig", "reservedConcurrentExecutions", "tags", "kmsKeyArn",
    })

    def create(self, ctx: Context, name: str, i: dict[str, Any]) -> Created:
        function = ctx.lambda_.create_function(
            FunctionName=i["name"], Code={"ZipFile": _code_bytes(name, i["code"])}, Tags=ctx.tags(i), Publish=False,
            **_configuration(i),
        )
        if i.get("reservedConcurrentExecutions") is not None:
            ctx.lambda_.put_function_concurrency(FunctionName=i["name"],
                                                 ReservedConcurrentExecutions=as_int(i["reservedConcurrentExecutions"]))
        return i["name"], {"arn": function["FunctionArn"], "name": i["name"], "invokeArn": function["FunctionArn"]}

    def update(self, ctx: Context, name: str, resource_id: str, i: dict[str, Any]) -> dict[str, Any]:
        ctx.lambda_.update_function_code(FunctionName=resource_id, ZipFile=_code_bytes(name, i["code"]))
        arn = ctx.lambda_.update_function_configuration(FunctionName=resource_id, **_configuration(i))["FunctionArn"]
        if i.get("reservedConcurrentExecutions") is not None:
            ctx.lambda_.put_function_concurrency(FunctionName=resource_id,
                                                 ReservedConcurrentExecutions=as_int(i["reservedConcurrentExecutions"]))
        else:
            ignoring_missing(lambda: ctx.lambda_.delete_function_concurrency(FunctionName=resource_id))
        tags = ctx.tags(i)
        stale = sorted(set(ctx.lambda_.list_tags(Resource=arn).get("Tags") or {}) - set(tags))
        if stale:
            ctx.lambda_.untag_resource(Resource=arn, TagKeys=stale)
        if tags:
            ctx.lambda_.tag_resource(Resource=arn, Tags=tags)
        return {"arn": arn, "name": resource_id, "invokeArn": arn}

    def exists(self, ctx: Context, resource_id: str) -> bool:
        return found(lambda: ctx.lambda_.get_function(FunctionName=resource_id))

    def preview_identity(self, names: PreviewNames) -> PreviewIdentity:
        return PreviewIdentity(id=names.physical, arn=names.arn("lambda", f"function:{names.physical}"))


@register
class Permission(ResourceType):
    """A statement of the function's policy; it lives and dies with the function."""

    token = "aws:lambda/permission:Permission"

    def create(self, ctx: Context, name: str, i: dict[str, Any]) -> Created:
        args = {"FunctionName": i["function"], "StatementId": i["statementId"], "Action": i["action"],
                "Principal": i["principal"]}
        if i.get("sourceArn"):
            args["SourceArn"] = i["sourceArn"]
        if i.get("sourceAccount"):
            args["SourceAccount"] = i["sourceAccount"]
        ctx.lambda_.add_permission(**args)
        return i["statementId"], {}
