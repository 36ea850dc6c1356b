"""The ``vpcpeer`` command line.

Heavy modules (pulumi, pulumi_aws, boto3) are imported inside the commands that use them,
so ``vpcpeer --help`` stays instant.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from typing import Any

EXIT_CONFIG = 2
EXIT_FAILED = 1


def _overrides(pairs: Sequence[str] | None) -> dict[str, str]:
    from infra.stack_files import parse_override

    return dict(parse_override(p) for p in pairs or ())


def _progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def cmd_lambda_build(args: argparse.Namespace) -> int:
    """Build the reproducible analyzer zip."""
    from pathlib import Path

    from vpcpeer_orchestration.packaging import DEFAULT_ZIP_PATH, build_lambda_zip

    package = build_lambda_zip(Path(args.out) if args.out else DEFAULT_ZIP_PATH)
    if args.json:
        print(json.dumps({"path": str(package.path), "sha256": package.sha256, "size": package.size,
                          "files": list(package.files)}, indent=2))
    else:
        print(f"{package.path}  {package.size} bytes  sha256 {package.sha256}  ({len(package.files)} files)")
    return 0


def _print_plan(result: Any) -> None:
    counts = result.resource_counts()
    width = max(len(t) for t in counts) if counts else 20
    print(f"vpcpeer stack '{result.stack}': offline plan (Pulumi mocks; nothing is created)\n")
    print(f"{'RESOURCE TYPE'.ljust(width)}  COUNT")
    for token, count in counts.items():
        print(f"{token.ljust(width)}  {count:5d}")
    print(f"{'total'.ljust(width)}  {sum(counts.values()):5d}\n")
    print("Outputs:")
    outputs = result.public_outputs()
    key_width = max(len(k) for k in outputs)
    for key, value in outputs.items():
        text = value if isinstance(value, str) else json.dumps(value)
        print(f"  {key.ljust(key_width)}  {text}")


def cmd_infra_preview(args: argparse.Namespace) -> int:
    """Offline plan of the stack (no cloud, no Pulumi CLI)."""
    from infra.program import resolve_code_path
    from infra.runner import PreviewRunner
    from vpcpeer_orchestration.packaging import build_lambda_zip

    started = time.monotonic()
    runner = PreviewRunner(args.stack, _overrides(args.set))
    cfg = runner.settings.validated()
    package = build_lambda_zip(resolve_code_path(cfg))
    if not args.json:
        _progress(f"built {package.path.name} (sha256 {package.sha256[:12]}); evaluating the program ...")
    result = runner.run()
    if args.json:
        plan = sorted((r.to_json() for r in result.resources if r.custom), key=lambda r: (r["type"], r["name"]))
        print(json.dumps(plan, indent=2, sort_keys=True))
    else:
        _print_plan(result)
        _progress(f"planned in {time.monotonic() - started:.1f} s")
    return 0


def cmd_infra_up(args: argparse.Namespace) -> int:
    """Apply the stack through a runner mode (automation needs the pulumi CLI)."""
    from infra.program import resolve_code_path
    from infra.runner import get_runner
    from vpcpeer_orchestration.packaging import build_lambda_zip

    runner = get_runner(args.mode, args.stack, _overrides(args.set), **({"action": args.action} if args.mode == "automation" else {}))
    cfg = runner.settings.validated()
    build_lambda_zip(resolve_code_path(cfg))
    result = runner.run()
    print(json.dumps({"mode": result.mode, "stack": result.stack, "changes": dict(result.changes),
                      "outputs": result.public_outputs()}, indent=2, default=str))
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for tests and docs)."""
    parser = argparse.ArgumentParser(prog="vpcpeer", description="Monitored AWS VPC peering, orchestrated with Dagster.")
    groups = parser.add_subparsers(dest="group", required=True)

    infra = groups.add_parser("infra", help="the Pulumi stack").add_subparsers(dest="command", required=True)
    stack_args = argparse.ArgumentParser(add_help=False)
    stack_args.add_argument("--stack", default="dev", help="stack name: reads infra/Pulumi.<stack>.yaml (default: dev)")
    stack_args.add_argument("--set", action="append", metavar="KEY=VALUE",
                            help="override a config value, e.g. --set vpc_b_cidr=10.2.0.0/16 (repeatable)")
    preview = infra.add_parser("preview", parents=[stack_args], help="offline plan: resources, inputs and outputs")
    preview.add_argument("--json", action="store_true", help="print the resources as JSON (type, name, inputs)")
    preview.set_defaults(func=cmd_infra_preview)
    up = infra.add_parser("up", parents=[stack_args], help="apply the stack")
    up.add_argument("--mode", choices=("automation", "emulated"), default="automation",
                    help="automation: Pulumi Automation API (needs the pulumi CLI); emulated: local AWS emulator")
    up.add_argument("--action", choices=("up", "preview", "destroy"), default="up", help="automation action (default: up)")
    up.set_defaults(func=cmd_infra_up)

    lam = groups.add_parser("lambda", help="the analyzer package").add_subparsers(dest="command", required=True)
    build = lam.add_parser("build", help="build the reproducible Lambda zip")
    build.add_argument("--out", help="zip path (default: build/lambda_pkg.zip)")
    build.add_argument("--json", action="store_true", help="print path, sha256, size and files as JSON")
    build.set_defaults(func=cmd_lambda_build)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``vpcpeer`` console script."""
    args = build_parser().parse_args(argv)
    from infra.config import InvalidStackConfig
    from infra.runner import StackRunError
    from infra.stack_files import StackFileNotFound

    try:
        return args.func(args)
    except InvalidStackConfig as exc:
        print(f"vpcpeer: invalid configuration: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except StackFileNotFound as exc:
        print(f"vpcpeer: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except StackRunError as exc:
        print(f"vpcpeer: {exc}", file=sys.stderr)
        return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
