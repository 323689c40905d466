"""A team's models must fit its quota at their largest, checked before the models program declares anything.

Plain tests of `rollout.quota` on real plans (`rollout.planner.plan_model`), then the models
program under the mock engine with the platform's `teams` output (`examples/platform-outputs.dev.json`).
"""

from __future__ import annotations

import copy
import json
import re
from decimal import Decimal
from typing import Any

import pytest

from harness.mock_engine import MODELS_DIR, Evaluation, evaluate, platform_outputs_example, stack_config
from layout.platform_outputs import PlatformOutputsError, TeamQuotaContract
from rollout import quota
from rollout.planner import DeploymentPlan, plan_model
from rollout.snapshot import ModelState, VersionInfo
from settings.rollout import ModelRolloutSettings

SDEP = "kubernetes:machinelearning.seldon.io/v1:SeldonDeployment"
RELEASE = "kubernetes:helm.sh/v3:Release"


def _version(number: str) -> VersionInfo:
    return VersionInfo(number, "run", f"models:/m-{number}", f"mlflow-artifacts:/1/models/m-{number}/artifacts")


def _plan(name: str, *, candidate: bool = False, **settings: Any) -> DeploymentPlan:
    """A real plan: the stable version 1 served, version 2 aliased `challenger` when `candidate`."""
    aliases = {"champion": "1", **({"challenger": "2"} if candidate else {})}
    state = ModelState(name, aliases, {"1": _version("1"), "2": _version("2")})
    return plan_model(state, ModelRolloutSettings.model_validate({"name": name, **settings}), name)


def _quota(**overrides: Any) -> TeamQuotaContract:
    fields: dict[str, Any] = {"cpu": "8", "memory": "32Gi", "pods": 50, "max_replicas": 10, "models": 20}
    return TeamQuotaContract(**{**fields, **overrides})


@pytest.mark.parametrize(
    ("text", "value"),
    [("500m", "0.5"), ("2", "2"), ("1.5", "1.5"), ("1Gi", str(2**30)), ("512Mi", str(2**29)), ("1G", "1000000000")],
)
def test_quantities_parse_as_kubernetes_reads_them(text: str, value: str) -> None:
    assert quota.quantity(text) == Decimal(value)


def test_a_malformed_quantity_is_refused() -> None:
    with pytest.raises(ValueError, match=re.escape("not a Kubernetes quantity: '1.5 Gi'")):
        quota.quantity("1.5 Gi")


def test_worst_case_counts_the_candidate_slot_at_max_replicas_with_executor_and_sidecar() -> None:
    scaled: dict[str, Any] = {
        "autoscaling": {"maxReplicas": 6, "targetCpuPercent": 70},
        "resources": {"cpu": "1", "memory": "2Gi"},
    }
    # No candidate in the registry yet: its slot still counts (an alias move needs no commit).
    case = quota.worst_case(_plan("fraud", **scaled))
    assert (case.predictors, case.replicas, case.pods) == (2, 6, 12)
    # model 1 + executor 0.5 + sidecar 0.1 CPU; 2Gi + 512Mi + 128Mi
    assert (case.cpu, case.memory) == (Decimal("1.6"), Decimal(2 * 2**30 + 512 * 2**20 + 128 * 2**20))
    assert quota.worst_case(_plan("fraud", candidate=True, **scaled)) == case
    # `single` never runs a candidate; fixed replicas are the maximum.
    single = quota.worst_case(_plan("churn", strategy="single", replicas=3))
    assert (single.predictors, single.replicas) == (1, 3)


def test_plans_within_the_quota_pass() -> None:
    plans = [_plan("fraud", replicas=2), _plan("churn", strategy="single", replicas=1)]
    # 2x2 + 1 = 5 pods of (1.1 CPU, 1664Mi): 5.5 CPU, 8320Mi
    assert quota.quota_problems(plans, _quota(cpu="5500m", memory="8320Mi", pods=5)) == []
    quota.check_team_quota("fraud", plans, _quota(cpu="5500m", memory="8320Mi", pods=5))


def test_plans_over_the_quota_fail_in_one_line_naming_team_models_and_figures() -> None:
    plans = [
        _plan("fraud-detector", autoscaling={"maxReplicas": 10, "targetCpuPercent": 70}),
        _plan("churn", strategy="single", replicas=2, resources={"cpu": "250m", "memory": "512Mi"}),
    ]
    with pytest.raises(quota.QuotaError) as raised:
        quota.check_team_quota("fraud", plans, _quota(cpu="8", memory="32Gi", pods=20))
    message = str(raised.value)
    assert "\n" not in message
    assert message.startswith("team 'fraud': its models at their largest exceed the team's quota: ")
    # 2x10 pods of 1.1 CPU + 2 pods of 0.85 CPU = 23.7 CPU; 20x1664Mi + 2x1152Mi = 35584Mi; 22 pods
    assert "requests.cpu 23700m > 8" in message
    assert "requests.memory 35584Mi > 32Gi" in message
    assert "pods 22 > 20" in message
    assert "[models: fraud-detector 2x10x(1100m, 1664Mi), churn 1x2x(850m, 1152Mi)]" in message


def test_the_replica_ceiling_and_the_model_count_of_the_quota_hold_too() -> None:
    plans = [_plan("a", replicas=4), _plan("b", replicas=1), _plan("c", replicas=1)]
    problems = quota.quota_problems(plans, _quota(cpu="16", max_replicas=3, models=2))
    assert problems == ["models 3 > 2", "replicas per predictor above maxReplicas 3: a (4)"]


def test_what_a_replica_requests_is_what_the_platform_installs(stack: Evaluation) -> None:
    """The per-pod figures hold only while the platform keeps the charts' defaults for the executor
    and the sidecar, and the quota bounds exactly what the check compares."""
    seldon = stack.one(RELEASE, "seldon-operator").inputs["values"]
    assert "resources" not in seldon["executor"] and "cpuRequest" not in seldon["executor"]
    istiod = stack.one(RELEASE, "istio-istiod").inputs["values"]
    assert "resources" not in istiod.get("global", {}).get("proxy", {})
    serving = stack.one("kubernetes:core/v1:ResourceQuota", "team-fraud-serving-quota").inputs["spec"]["hard"]
    exported = json.loads(platform_outputs_example(stack.stack).read_text())["teams"]["fraud"]["quota"]
    assert serving == {
        "requests.cpu": exported["cpu"],
        "requests.memory": exported["memory"],
        "pods": str(exported["pods"]),
    }


# --- the models program ------------------------------------------------------------------------------


def _outputs_with_fraud_quota(**fields: object) -> dict[str, Any]:
    outputs: dict[str, Any] = copy.deepcopy(json.loads(platform_outputs_example("dev").read_text()))
    outputs["teams"]["fraud"]["quota"].update(fields)
    return outputs


def test_the_platform_exports_each_teams_quota_to_its_models_stack() -> None:
    outputs = json.loads(platform_outputs_example("dev").read_text())
    assert outputs["teams"]["churn"]["quota"] == {
        "cpu": "4",
        "memory": "16Gi",
        "pods": 30,
        "maxReplicas": 10,
        "models": 20,
    }


def test_a_teams_models_stack_within_its_quota_declares_its_models() -> None:
    evaluation = evaluate("fraud-dev", project_dir=MODELS_DIR)
    assert evaluation.error is None, evaluation.error
    assert [r.name for r in evaluation.of_type(SDEP)] == ["models-fraud-detector"]


def test_a_teams_models_stack_over_its_quota_fails_before_declaring_anything() -> None:
    # fraud-detector: canary, 1 replica of 250m/512Mi → 2 pods of 850m / 1152Mi = 1.7 CPU.
    outputs = _outputs_with_fraud_quota(cpu="1500m")
    evaluation = evaluate("fraud-dev", project_dir=MODELS_DIR, platform_outputs=outputs)
    assert isinstance(evaluation.error, quota.QuotaError)
    assert evaluation.resources == [] or not evaluation.of_type(SDEP)
    assert not [r for r in evaluation.resources if r.type.startswith("kubernetes:")]
    message = str(evaluation.error)
    assert "team 'fraud'" in message and "requests.cpu 1700m > 1500m" in message
    assert "fraud-detector 2x1x(850m, 1152Mi)" in message


def test_more_replicas_in_the_stack_file_than_the_quota_allows_fail_the_same_way() -> None:
    config, secret_keys = stack_config("fraud-dev", MODELS_DIR)
    models = [{"name": "fraud-detector", "replicas": 30, "resources": {"cpu": "250m", "memory": "512Mi"}}]
    config = {**config, "mlops-models:rollout": json.dumps({"models": models})}
    evaluation = evaluate("fraud-dev", config, secret_keys, project_dir=MODELS_DIR)
    assert isinstance(evaluation.error, quota.QuotaError)
    assert "replicas per predictor above maxReplicas 10: fraud-detector (30)" in str(evaluation.error)
    assert "pods 60 > 50" in str(evaluation.error)
    assert not evaluation.of_type(SDEP)


def test_a_platform_that_does_not_export_the_quota_yet_fails_naming_it() -> None:
    outputs = copy.deepcopy(json.loads(platform_outputs_example("dev").read_text()))
    del outputs["teams"]["fraud"]["quota"]
    evaluation = evaluate("fraud-dev", project_dir=MODELS_DIR, platform_outputs=outputs)
    assert isinstance(evaluation.error, PlatformOutputsError)
    assert "teams.fraud.quota is None" in str(evaluation.error)
    assert not evaluation.of_type(SDEP)


def test_quota_counts_arrive_as_floats_through_the_stack_reference_and_must_be_whole() -> None:
    outputs = _outputs_with_fraud_quota(pods=50.0, maxReplicas=10.5)
    evaluation = evaluate("fraud-dev", project_dir=MODELS_DIR, platform_outputs=outputs)
    assert isinstance(evaluation.error, PlatformOutputsError)
    assert "teams.fraud.quota: maxReplicas missing or malformed" in str(evaluation.error)


def test_the_single_models_stack_has_no_team_quota() -> None:
    """The single models namespace has no ResourceQuota of a team: nothing to hold its plans to."""
    evaluation = evaluate("dev", project_dir=MODELS_DIR)
    assert evaluation.error is None, evaluation.error
    assert evaluation.of_type(SDEP)
