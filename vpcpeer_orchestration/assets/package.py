"""The analyzer's deployable zip as an asset."""

import dagster as dg

from vpcpeer_orchestration.packaging import DEFAULT_ZIP_PATH, build_lambda_zip, source_digest


def lambda_package_asset() -> dg.AssetsDefinition:
    """Build the asset; its code version is the digest of the sources, read when loaded."""

    @dg.asset(
        name="lambda_package",
        group_name="analyzer",
        kinds={"python", "aws_lambda"},
        owners=["team:network-security"],
        code_version=source_digest(),
        description=(
            "Reproducible zip of lambda_pkg (the traffic analyzer). Same sources give the same "
            "bytes, so its sha256 is the Lambda's source hash and this asset's code version."
        ),
    )
    def lambda_package(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        package = build_lambda_zip(DEFAULT_ZIP_PATH)
        context.log.info(f"built {package.path} ({package.size} bytes, sha256 {package.sha256})")
        return dg.MaterializeResult(
            metadata={
                "path": dg.MetadataValue.path(str(package.path)),
                "sha256": package.sha256,
                "size_bytes": package.size,
                "files": dg.MetadataValue.json(list(package.files)),
            },
            data_version=dg.DataVersion(package.sha256),
        )

    return lambda_package
