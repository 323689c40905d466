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


def test_pull_requests_preview_each_stack_with_its_policy_config() -> None:
    preview = _jobs()["preview"]
    assert "pull_request" in preview["if"] and preview["permissions"]["pull-requests"] == "write"
    stacks = preview["strategy"]["matrix"]["stack"]
    assert sorted(stacks) == ["dev", "prod"]
    for stack in stacks:
        assert (ROOT / "policies" / "config" / f"{stack}.json").exists()
    step = _pulumi_step(preview)["with"]
    assert step["command"] == "preview" and step["comment-on-pr"] is True
    assert step["policyPacks"] == "policies"
    assert step["policyPackConfigs"] == "policies/config/${{ matrix.stack }}.json"


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
