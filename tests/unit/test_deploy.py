"""deploy/: the team instance's configuration with each run launcher validates against Dagster's
own schemas, the compose file describes the four services from the image the lock builds, and
`docker compose config` accepts it where Docker exists."""

from __future__ import annotations

import importlib
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"


def merged(launcher: str | None) -> dict:
    config = yaml.safe_load((DEPLOY / "dagster.postgres.yaml").read_text())
    if launcher:
        config.update(yaml.safe_load((DEPLOY / f"run_launcher.{launcher}.yaml").read_text()))
    return config


@pytest.mark.parametrize("launcher", [None, "ecs", "k8s"])
def test_the_instance_configuration_validates_with_each_run_launcher(launcher: str | None, tmp_path) -> None:
    from dagster._config import validate_config
    from dagster._core.instance.config import dagster_instance_config

    (tmp_path / "dagster.yaml").write_text(yaml.safe_dump(merged(launcher)))
    config, _ = dagster_instance_config(str(tmp_path))  # the instance loader's own validation
    assert config["run_coordinator"]["class"] == "QueuedRunCoordinator"
    if launcher:
        section = config["run_launcher"]
        launcher_class = getattr(importlib.import_module(section["module"]), section["class"])
        result = validate_config(launcher_class.config_type(), section["config"])
        assert result.success, [e.message for e in result.errors]


def test_a_misspelt_launcher_setting_is_refused_by_the_schema() -> None:
    from dagster._config import validate_config
    from dagster_aws.ecs import EcsRunLauncher

    config = dict(merged("ecs")["run_launcher"]["config"], run_resource={"cpu": "1024"})
    result = validate_config(EcsRunLauncher.config_type(), config)
    assert not result.success and "run_resource" in result.errors[0].message


def test_the_compose_file_runs_the_four_services_from_the_locked_image() -> None:
    compose = yaml.safe_load((DEPLOY / "docker-compose.yaml").read_text())
    assert set(compose["services"]) == {"postgres", "code-server", "webserver", "daemon"}
    for name in ("code-server", "webserver", "daemon"):
        service = compose["services"][name]
        assert service["build"]["dockerfile"] == "deploy/Dockerfile" and service["image"] == "vpcpeer:latest"
        assert service["environment"]["VPCPEER_TARGET"] == "aws"
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    assert "--no-deps -r requirements.lock" in dockerfile and "deploy/dagster.postgres.yaml" in dockerfile
    workspace = yaml.safe_load((DEPLOY / "workspace.grpc.yaml").read_text())
    assert workspace["load_from"][0]["grpc_server"] == {"host": "code-server", "port": 4000, "location_name": "vpcpeer"}
    assert "4000" in compose["services"]["code-server"]["command"]


def _compose() -> str | None:
    docker = shutil.which("docker")
    if docker and subprocess.run([docker, "compose", "version"], capture_output=True).returncode == 0:
        return docker
    return None


@pytest.mark.skipif(_compose() is None, reason="Docker with the compose plugin is not installed on this machine")
def test_docker_compose_accepts_the_file() -> None:
    done = subprocess.run([str(_compose()), "compose", "-f", str(DEPLOY / "docker-compose.yaml"), "config", "--quiet"],
                          env={"DAGSTER_PG_PASSWORD": "x", "VPCPEER_PULUMI_BACKEND_URL": "s3://state",
                               "VPCPEER_IO_BUCKET": "reports", "HOME": "/root", "PATH": "/usr/bin:/bin"},
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
