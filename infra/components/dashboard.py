"""The optional CloudWatch dashboard."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from infra.dashboard import dashboard_body


@dataclass
class MonitoringDashboardArgs:
    """Inputs of the dashboard: the names its widgets point at."""

    prefix: str
    region: str
    function_name: pulumi.Input[str]
    log_group_names: dict[str, pulumi.Input[str]]


class MonitoringDashboard(pulumi.ComponentResource):
    """Traffic, rejects, analyzer metrics and analyzer health on one page."""

    def __init__(self, name: str, args: MonitoringDashboardArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("vpcpeer:monitoring:MonitoringDashboard", name, None, opts)
        labels = list(args.log_group_names)
        body = pulumi.Output.all(args.function_name, *args.log_group_names.values()).apply(
            lambda v: json.dumps(
                dashboard_body(region=args.region, function_name=v[0], log_group_names=dict(zip(labels, v[1:])))
            )
        )
        self.dashboard = aws.cloudwatch.Dashboard(
            "dashboard",
            dashboard_name=f"{args.prefix}-monitoring",
            dashboard_body=body,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.url = self.dashboard.dashboard_name.apply(
            lambda n: f"https://{args.region}.console.aws.amazon.com/cloudwatch/home?region={args.region}#dashboards:name={n}"
        )
        self.register_outputs({"url": self.url})
