"""The offline preview as a person runs it: `python -m mlopsctl preview`."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import yaml

from harness.cli import build_parser
from mlopsctl.cli import OFFLINE_COMMANDS

ROOT = Path(__file__).resolve().parent.parent
SNAPSHOT = str(ROOT / "examples" / "registry-snapshot.json")


def _mlopsctl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mlopsctl", *args], cwd=ROOT, capture_output=True, text=True, timeout=120, check=False
    )


def test_preview_prints_the_tree_and_masks_secrets() -> None:
    result = _mlopsctl("preview", "--stack", "prod", "--registry-snapshot", SNAPSHOT)
    assert result.returncode == 0, result.stderr
    assert "postgres-server (azure-native:dbforpostgresql:Server) [protected]" in result.stdout
    assert "\n  aks-cluster (azure-native:containerservice:ManagedCluster)" in result.stdout
    assert 'kubeconfig: "[secret]"' in result.stdout
    assert "apiVersion" not in result.stdout


def test_preview_json_names_parents() -> None:
    result = _mlopsctl("preview", "--stack", "dev", "--json", "--registry-snapshot", SNAPSHOT)
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    parents = {r["name"]: r["parent"] for r in document["resources"]}
    assert parents["aks-cluster"] == "aks" and parents["resource-group"] is None
    assert document["outputs"]["kubeconfig"] == "[secret]"


def test_preview_of_bad_config_exits_2_naming_the_keys(tmp_path: Path) -> None:
    document = yaml.safe_load((ROOT / "Pulumi.prod.yaml").read_text())
    document["config"]["mlops-platform:postgresSkuTier"] = "Burstable"
    document["config"]["mlops-platform:aksMaintenanceDurationHours"] = 2
    broken = tmp_path / "Pulumi.prod.yaml"
    broken.write_text(yaml.safe_dump(document))
    result = _mlopsctl("preview", "--stack", "prod", "--stack-file", str(broken))
    assert result.returncode == 2
    assert result.stdout == ""
    assert "mlops-platform:aksMaintenanceDurationHours: found '2'; allowed: greater than or equal to 4" in result.stderr
    assert (
        "mlops-platform:postgresHighAvailability: found 'ZoneRedundant' with postgresSkuTier 'Burstable'"
        in result.stderr
    )


def test_unknown_stack_is_a_usage_error() -> None:
    result = _mlopsctl("preview", "--stack", "staging")
    assert result.returncode == 2
    assert result.stderr.strip() == "mlopsctl: no platform stack 'staging'; stack files present: dev, prod"


def test_mlopsctl_and_the_harness_know_the_same_offline_commands() -> None:
    """Every command the CLI hands to the harness is one the harness parses, and no other."""
    subparsers = [a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)]
    assert set(subparsers[0].choices) == set(OFFLINE_COMMANDS)


def test_harness_module_runs_the_same_command_as_mlopsctl() -> None:
    """`python -m harness <command>` and `python -m mlopsctl <command>` are one command."""
    via_harness = subprocess.run(
        [sys.executable, "-m", "harness", "preview", "--stack", "staging"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    via_mlopsctl = _mlopsctl("preview", "--stack", "staging")
    assert via_harness.returncode == via_mlopsctl.returncode == 2
    assert via_harness.stderr == via_mlopsctl.stderr != ""


def test_preview_refuses_a_strict_mode_directory_without_crds_in_one_line(tmp_path: Path) -> None:
    missing = _mlopsctl("preview", "--stack", "dev", "--upstream-schemas", str(tmp_path / "absent"))
    assert missing.returncode == 2 and missing.stdout == ""
    assert missing.stderr.strip() == f"mlopsctl: upstream schemas directory {tmp_path / 'absent'} does not exist"
    empty = _mlopsctl("preview", "--stack", "dev", "--upstream-schemas", str(tmp_path))
    assert empty.returncode == 2 and "has no *crd*.yaml file" in empty.stderr and len(empty.stderr.splitlines()) == 1
