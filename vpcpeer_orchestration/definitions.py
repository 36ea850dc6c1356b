"""The one Definitions object of the vpcpeer code location, assembled explicitly."""

from __future__ import annotations

import dagster as dg

from vpcpeer_orchestration.assets.package import lambda_package_asset

defs = dg.Definitions(assets=[lambda_package_asset()])
