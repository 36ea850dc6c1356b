"""The analyzer's deployable zip as an asset; the rollout consumes its output."""

import hashlib
import warnings
from pathlib import Path
from typing import Any

import dagster as dg

from vpcpeer_orchestration.assets.groups import ANALYZER_GROUP, OWNERS
from vpcpeer_orchestration.packaging import (
    DEFAULT_ZIP_PATH,
    build_lambda_zip,
    source_digest,
)

LAMBDA_PACKAGE = dg.AssetKey("lambda_package")


class PackageChanged(RuntimeError):
    """The zip on disk is missing or not the one lambda_package built."""


def verified_package(package: dict[str, Any]) -> Path:
    """The path of the zip ``lambda_package`` produced, checked against its sha256.

    A run on another machine (or a zip rebuilt since) must not roll out different code
    than the asset recorded.
    """
    path = Path(package["path"])
    if not path.is_file():
        raise PackageChanged(f"{path} is missing on this machine; materialize lambda_package in the same run "
                             "as the rollout (rollout_job does)")
    actual = hashlib.sha256(path.read_bytes()).hexdigest()
    if actual != package["sha256"]:
        raise PackageChanged(f"{path} has sha256 {actual[:12]}, lambda_package built {package['sha256'][:12]}; "
                             "materialize lambda_package again")
    return path


def lambda_package_asset() -> dg.AssetsDefinition:
    """Build the asset; its code version is the digest of the sources, read when loaded."""

    @dg.asset(
        key=LAMBDA_PACKAGE,
        group_name=ANALYZER_GROUP,
        kinds={"python", "aws_lambda"},
        owners=OWNERS,
        code_version=source_digest(),
        io_manager_key="reports_io_manager",
        description=(
            "Reproducible zip of lambda_pkg (the traffic analyzer). Same sources give the same "
            "bytes, so its sha256 is the Lambda's source hash and this asset's code version; "
            "the rollout deploys exactly this file."
        ),
    )
    def lambda_package(context: dg.AssetExecutionContext) -> dg.Output[dict[str, Any]]:
        package = build_lambda_zip(DEFAULT_ZIP_PATH)
        context.log.info(f"built {package.path} ({package.size} bytes, sha256 {package.sha256})")
        value = {"path": str(package.path), "sha256": package.sha256, "size": package.size,
                 "files": list(package.files)}
        metadata = {"path": dg.MetadataValue.path(str(package.path)), "sha256": package.sha256,
                    "size_bytes": package.size, "files": dg.MetadataValue.json(list(package.files))}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", category=dg.BetaWarning)  # data_version is beta in this release
            return dg.Output(value, data_version=dg.DataVersion(package.sha256), metadata=metadata)

    return lambda_package
