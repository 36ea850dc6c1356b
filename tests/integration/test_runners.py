"""The runner interface: automation (needs the pulumi CLI), emulated slot, error paths."""

from __future__ import annotations

import os
import shutil

import pytest

from infra.config import InvalidStackConfig
from infra.runner import AutomationRunner, ModeNotAvailable, PulumiCliNotFound, StackRunError, get_runner

HAS_PULUMI_CLI = shutil.which("pulumi") is not None


def test_automation_without_the_cli_says_what_to_install(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(PulumiCliNotFound, match="pulumi` CLI"):
        AutomationRunner("dev", backend_url=f"file://{tmp_path}", on_output=None).run()


def test_automation_validates_config_before_touching_the_cli(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(InvalidStackConfig, match="vpcpeer:retention_days"):
        AutomationRunner("dev", {"retention_days": "2"}, backend_url=f"file://{tmp_path}", on_output=None).run()


def test_automation_requires_a_secrets_passphrase(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: f"/usr/local/bin/{name}")
    monkeypatch.delenv("PULUMI_CONFIG_PASSPHRASE", raising=False)
    monkeypatch.delenv("PULUMI_CONFIG_PASSPHRASE_FILE", raising=False)
    with pytest.raises(StackRunError, match="PULUMI_CONFIG_PASSPHRASE"):
        AutomationRunner("dev", backend_url=f"file://{tmp_path}", on_output=None).run()


def test_emulated_mode_needs_the_local_endpoint() -> None:
    with pytest.raises(ModeNotAvailable, match="needs the local AWS endpoint"):
        get_runner("emulated")


def test_unknown_mode_is_rejected() -> None:
    with pytest.raises(StackRunError, match="unknown mode"):
        get_runner("terraform")


@pytest.mark.skipif(not HAS_PULUMI_CLI, reason="the pulumi CLI is not installed (no package registry here ships it)")
def test_automation_preview_runs_the_program_through_the_cli(tmp_path) -> None:
    os.environ.setdefault("PULUMI_CONFIG_PASSPHRASE", "vpcpeer-test")
    runner = AutomationRunner("dev", action="preview", backend_url=f"file://{tmp_path}", on_output=None)
    result = runner.run()
    assert result.changes.get("create", 0) >= 90
