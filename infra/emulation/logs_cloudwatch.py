"""CloudWatch Logs groups and metric filters, CloudWatch alarms and dashboards."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from infra.emulation._aws import as_int, found, ignoring_missing, short_hash, tag_list
from infra.emulation.registry import Created, PreviewIdentity, PreviewNames, ResourceType, register

if TYPE_CHECKING:
    from infra.emulation.engine import Context


@register
class LogGroup(ResourceType):
    token = "aws:cloudwatch/logGroup:LogGroup"

    def create(self, ctx: Context, name: str, i: dict[str, Any]) -> Created:
        group = i["name"]
        extra = {"kmsKeyId": i["kmsKeyId"]} if i.get("kmsKeyId") else {}
        ctx.logs.create_log_group(logGroupName=group, tags=ctx.tags(i), **extra)
        if i.get("retentionInDays"):
            ctx.logs.put_retention_policy(logGroupName=group, retentionInDays=as_int(i["retentionInDays"]))
        return group, {"arn": f"arn:aws:logs:{ctx.region}:{ctx.account_id}:log-group:{group}", "name": group}

    def exists(self, ctx: Context, resource_id: str) -> bool:
        return found(lambda: [g for g in ctx.logs.describe_log_groups(logGroupNamePrefix=resource_id)["logGroups"]
                              if g["logGroupName"] == resource_id])

    def preview_identity(self, names: PreviewNames) -> PreviewIdentity:
        return PreviewIdentity(id=names.physical, arn=names.arn("logs", f"log-group:{names.physical}"))


@register
class LogMetricFilter(ResourceType):
    """PutMetricFilter creates and overwrites; the filter lives and dies with its group."""

    token = "aws:cloudwatch/logMetricFilter:LogMetricFilter"
    overwrite_in_place = True

    def create(self, ctx: Context, name: str, i: dict[str, Any]) -> Created:
        t = i["metricTransformation"]
        transformation = {"metricName": t["name"], "metricNamespace": t["namespace"], "metricValue": t["value"]}
        if t.get("defaultValue") is not None:
            transformation["defaultValue"] = float(t["defaultValue"])
        if t.get("unit"):
            transformation["unit"] = t["unit"]
        ctx.logs.put_metric_filter(logGroupName=i["logGroupName"], filterName=i["name"], filterPattern=i["pattern"],
                                   metricTransformations=[transformation])
        return i["name"], {}

    def delete(self, ctx: Context, resource_id: str, inputs: dict[str, Any]) -> None:
        ignoring_missing(lambda: ctx.logs.delete_metric_filter(logGroupName=inputs["logGroupName"], filterName=resource_id))


@register
class MetricAlarm(ResourceType):
    """PutMetricAlarm creates and overwrites."""

    token = "aws:cloudwatch/metricAlarm:MetricAlarm"
    overwrite_in_place = True

    def create(self, ctx: Context, name: str, i: dict[str, Any]) -> Created:
        alarm = i.get("name") or f"{name}-{short_hash(name)}"
        args: dict[str, Any] = {
            "AlarmName": alarm, "AlarmDescription": i.get("alarmDescription", ""), "Namespace": i["namespace"],
            "MetricName": i["metricName"], "Statistic": i["statistic"], "ComparisonOperator": i["comparisonOperator"],
            "Threshold": float(i["threshold"]), "Period": as_int(i["period"]),
            "EvaluationPeriods": as_int(i["evaluationPeriods"]), "TreatMissingData": i.get("treatMissingData", "missing"),
            "AlarmActions": i.get("alarmActions") or [], "OKActions": i.get("okActions") or [],
            "Tags": tag_list(ctx.tags(i)),
        }
        if i.get("dimensions"):
            args["Dimensions"] = [{"Name": k, "Value": v} for k, v in sorted(i["dimensions"].items())]
        ctx.cloudwatch.put_metric_alarm(**args)
        return alarm, {"arn": f"arn:aws:cloudwatch:{ctx.region}:{ctx.account_id}:alarm:{alarm}", "name": alarm}

    def exists(self, ctx: Context, resource_id: str) -> bool:
        return found(lambda: ctx.cloudwatch.describe_alarms(AlarmNames=[resource_id])["MetricAlarms"])

    def delete(self, ctx: Context, resource_id: str, inputs: dict[str, Any]) -> None:
        ignoring_missing(lambda: ctx.cloudwatch.delete_alarms(AlarmNames=[resource_id]))


@register
class Dashboard(ResourceType):
    """PutDashboard creates and overwrites; the ID is the dashboard's name."""

    token = "aws:cloudwatch/dashboard:Dashboard"
    overwrite_in_place = True

    def create(self, ctx: Context, name: str, i: dict[str, Any]) -> Created:
        ctx.cloudwatch.put_dashboard(DashboardName=i["dashboardName"], DashboardBody=i["dashboardBody"])
        return i["dashboardName"], {"dashboardArn": f"arn:aws:cloudwatch::{ctx.account_id}:dashboard/{i['dashboardName']}"}

    def exists(self, ctx: Context, resource_id: str) -> bool:
        return found(lambda: ctx.cloudwatch.get_dashboard(DashboardName=resource_id))

    def delete(self, ctx: Context, resource_id: str, inputs: dict[str, Any]) -> None:
        ignoring_missing(lambda: ctx.cloudwatch.delete_dashboards(DashboardNames=[resource_id]))

    def preview_identity(self, names: PreviewNames) -> PreviewIdentity:
        return PreviewIdentity(id=names.physical, arn=names.arn(names.service, names.physical))
