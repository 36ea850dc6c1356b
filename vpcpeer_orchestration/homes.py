"""Where a vpcpeer installation keeps its state: the Dagster instance, and the embedded AWS
that belongs to it.

Every default lives here once. Functions read the environment when called, never at
import, so importing the code location reads nothing.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# The checkout's own instance: `make demo`, `make dev` and the `vpcpeer` CLI share it.
DEFAULT_DAGSTER_HOME = REPO / "dagster_home"
DAGSTER_HOME_ENV = "DAGSTER_HOME"
# Overrides the embedded AWS home (default: under the Dagster instance).
EMBEDDED_HOME_ENV = "VPCPEER_HOME"
EMBEDDED_HOME_DIRNAME = "embedded-aws"


def dagster_home() -> Path:
    """DAGSTER_HOME, or the checkout's ``dagster_home/``."""
    return Path(os.environ.get(DAGSTER_HOME_ENV) or DEFAULT_DAGSTER_HOME).resolve()


def prepare_dagster_home(home: Path) -> Path:
    """Create ``home`` with the checked-in dagster.yaml if it has none; returns it."""
    home.mkdir(parents=True, exist_ok=True)
    if not (home / "dagster.yaml").exists():
        shutil.copy(DEFAULT_DAGSTER_HOME / "dagster.yaml", home / "dagster.yaml")
    return home


def embedded_aws_home(instance_root: str | Path | None = None) -> Path:
    """The embedded AWS of a Dagster instance: ``VPCPEER_HOME``, else ``<instance>/embedded-aws``.

    Two checkouts (two instances) therefore never share an emulator, and the emulator's
    state sits next to the run history that refers to it.
    """
    override = os.environ.get(EMBEDDED_HOME_ENV)
    if override:
        return Path(override).resolve()
    root = Path(instance_root) if instance_root else dagster_home()
    return (root / EMBEDDED_HOME_DIRNAME).resolve()


PULUMI_BACKEND_ENV = "VPCPEER_PULUMI_BACKEND_URL"
PULUMI_STATE_DIRNAME = "pulumi-state"


def pulumi_backend_url(instance_root: str | Path | None = None) -> str:
    """Pulumi state backend of the aws target: ``VPCPEER_PULUMI_BACKEND_URL``, else a file
    backend under the Dagster instance (use ``s3://...`` when runs execute elsewhere)."""
    configured = os.environ.get(PULUMI_BACKEND_ENV)
    if configured:
        return configured
    root = Path(instance_root) if instance_root else dagster_home()
    return f"file://{(root / PULUMI_STATE_DIRNAME).resolve()}"
