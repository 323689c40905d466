"""The GitHub Actions workflow: pinned actions, policy-gated previews, prod behind an approval."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
WORKFLOW = ROOT / ".github" / "workflows" / "infrastructure.yml"


def _jobs() -> dict[str, Any]:
    document = yaml.safe_load(WORKFLOW.read_text())
    jobs: dict[str, Any] = document["jobs"]
    return jobs


def _pulumi_step(job: dict[str, Any]) -> dict[str, Any]:
    [step] = [s for s in job["steps"] if str(s.get("uses", "")).startswith("pulumi/actions@")]
    found: dict[str, Any] = step
    return found


def test_every_action_is_pinned_to_an_exact_version() -> None:
    for name, job in _jobs().items():
        for step in job["steps"]:
            if "uses" in step:
                ref = step["uses"].split("@", 1)[1]
                assert re.fullmatch(r"v\d+\.\d+(\.\d+)?|[0-9a-f]{40}", ref), f"{name}: {step['uses']}"


def test_pull_requests_run_the_offline_preview_with_policies_and_no_cloud_credentials() -> None:
    jobs = _jobs()
    offline = jobs["offline"]
    commands = [step.get("run", "") for step in offline["steps"]]
    assert "make preview STACK=dev" in commands and "make preview STACK=prod" in commands
    assert "if" not in offline  # runs on pull requests too
    on_pull_requests = [name for name, job in jobs.items() if "!= 'pull_request'" not in str(job.get("if", ""))]
    assert on_pull_requests == ["offline"]
    for name in on_pull_requests:
        job = jobs[name]
        assert "id-token" not in (job.get("permissions") or {}), name
        assert not any(str(k).startswith(("ARM_", "AZURE_")) for k in (job.get("env") or {})), name


def test_deployments_refresh_their_own_tokens_for_the_whole_up() -> None:
    """azure-native with OIDC itself, kubelogin with GitHub's OIDC (>= 0.2.0), no Azure CLI login."""
    jobs = _jobs()
    for name in ("deploy-dev", "deploy-prod"):
        job = jobs[name]
        env = job["env"]
        assert env["ARM_USE_OIDC"] == "true"
        assert env["AZURE_CLIENT_ID"] == env["ARM_CLIENT_ID"] and env["AZURE_TENANT_ID"] == env["ARM_TENANT_ID"]
        assert not any(str(step.get("uses", "")).startswith("azure/login@") for step in job["steps"]), name
        [kubelogin] = [s for s in job["steps"] if str(s.get("uses", "")).startswith("azure/use-kubelogin@")]
        major, minor = (int(part) for part in kubelogin["with"]["kubelogin-version"].lstrip("v").split(".")[:2])
        assert (major, minor) >= (0, 2), "kubelogin's GitHub Actions credential arrived in 0.2.0"
    # The prod stack logs in the way the job can: a federated token, not an Azure CLI session.
    prod = yaml.safe_load((ROOT / "Pulumi.prod.yaml").read_text())["config"]
    assert prod["mlops-platform:aksKubeloginMode"] == "workloadidentity"
    assert prod["mlops-platform:aksDeployerObjectIds"]
    # Prod's API server admits only listed ranges: the job runs where its egress is listed.
    assert "self-hosted" in jobs["deploy-prod"]["runs-on"]
    assert prod["mlops-platform:aksDeployerIpRanges"]


def test_main_deploys_dev_then_prod_behind_the_prod_environment() -> None:
    jobs = _jobs()
    dev, prod = jobs["deploy-dev"], jobs["deploy-prod"]
    assert dev["environment"] == "dev" and prod["environment"] == "prod"
    assert prod["needs"] == "deploy-dev" and "refs/heads/main" in prod["if"]
    for job, stack in ((dev, "dev"), (prod, "prod")):
        step = _pulumi_step(job)["with"]
        assert (step["command"], step["stack-name"]) == ("up", stack)
        assert step["policyPackConfigs"] == f"policies/config/{stack}.json"
        assert job["concurrency"]["cancel-in-progress"] is False
        assert job["permissions"]["id-token"] == "write"


def test_pulumi_cli_matches_the_sdk_pin() -> None:
    document = yaml.safe_load(WORKFLOW.read_text())
    sdk = re.search(r"^pulumi==(\S+)$", (ROOT / "requirements.txt").read_text(), flags=re.M)
    assert sdk is not None and document["env"]["PULUMI_VERSION"] == sdk.group(1)
    policy_requirements = (ROOT / "policies" / "requirements.txt").read_text()
    assert f"pulumi=={sdk.group(1)}" in policy_requirements


def test_policy_pack_requirements_match_the_repository_pins() -> None:
    def pins(path: Path) -> dict[str, str]:
        found = re.findall(r"^([A-Za-z0-9_.-]+)==(\S+)$", path.read_text(), flags=re.M)
        return {name.lower().replace("_", "-"): version for name, version in found}

    constraints = pins(ROOT / "constraints.txt")
    for name, version in pins(ROOT / "policies" / "requirements.txt").items():
        assert constraints.get(name) == version, f"policies/requirements.txt pins {name}=={version}"
