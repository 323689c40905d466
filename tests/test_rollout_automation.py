"""The rollout loops in the cluster: the analysis CronJob and the optional Pulumi operator Stack."""

from __future__ import annotations

import yaml

from mlopsctl.mock_engine import Evaluation
from mlopsctl.schema_validation import schema_problems
from settings import SettingsError
from tests.conftest import evaluate_with

P = "mlops-platform:"


def test_analysis_cronjob(stack: Evaluation) -> None:
    cronjob = stack.one("kubernetes:batch/v1:CronJob").inputs
    spec = cronjob["spec"]
    assert spec["schedule"] == "*/5 * * * *"
    assert spec["concurrencyPolicy"] == "Forbid"
    pod = spec["jobTemplate"]["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["args"] == ["rollout", "advance", "--stack", stack.stack, "--json"]
    registry = stack.outputs["containerRegistryLoginServer"].value
    assert container["image"].startswith(f"{registry}/mlops/mlopsctl@sha256:")
    assert container["imagePullPolicy"] == "IfNotPresent"
    assert pod["serviceAccountName"] == "rollout-analyzer" and pod["automountServiceAccountToken"] is False
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["MLFLOW_TRACKING_PASSWORD_FILE"] == "/mnt/secrets/mlflow-admin-password"
    assert env["MLFLOW_TRACKING_USERNAME"] == "mlflow-admin"  # the basic-auth admin the MLflow pods create
    assert "MLFLOW_TRACKING_PASSWORD" not in env
    provider = stack.one(
        "kubernetes:secrets-store.csi.x-k8s.io/v1:SecretProviderClass", "automation-mlflow-credentials"
    )
    parameters = provider.inputs["spec"]["parameters"]
    objects = [yaml.safe_load(o) for o in yaml.safe_load(parameters["objects"])["array"]]
    assert objects == [{"objectName": "mlflow-admin-password", "objectType": "secret"}]
    assert parameters["clientID"] == stack.outputs["workloadIdentityClientIds"].value["rollout-analyzer"]
    assert schema_problems(stack, "1.34.2") == []


def test_the_analyzer_has_no_kubernetes_permissions(stack: Evaluation) -> None:
    bindings = [r for r in stack.resources if r.type.startswith("kubernetes:rbac.authorization.k8s.io/v1:")]
    for binding in bindings:
        subjects = binding.inputs.get("subjects") or []
        assert all(s.get("name") != "rollout-analyzer" for s in subjects), binding.name


def test_pulumi_operator_stack_resyncs_without_git_changes() -> None:
    def enable(config: dict[str, str]) -> None:
        config[P + "pulumiOperator"] = "true"
        config[P + "pulumiProjectRepo"] = "https://github.com/example/mlops-platform.git"
        config[P + "pulumiBackendUrl"] = "azblob://state?storage_account=examplestate"
        config[P + "pulumiStackName"] = "example/mlops-platform/prod"
        config[P + "pulumiDeployerClientId"] = "5f1c9a4e-2b7d-4c8e-9f3a-6d0e1b2c3a41"

    evaluation = evaluate_with("prod", enable)
    assert evaluation.error is None, evaluation.error
    stack = evaluation.one("kubernetes:pulumi.com/v1:Stack").inputs["spec"]
    assert stack["continueResyncOnCommitMatch"] is True
    assert stack["resyncFrequencySeconds"] == 600
    assert stack["stack"] == "example/mlops-platform/prod"
    release = evaluation.one("kubernetes:helm.sh/v3:Release", "automation-pulumi-operator").inputs
    assert release["chart"].startswith("oci://") and release["version"] == "2.9.0"
    assert schema_problems(evaluation, "1.34.2") == []


def test_operator_without_its_settings_is_a_settings_error() -> None:
    evaluation = evaluate_with("prod", lambda config: config.__setitem__(P + "pulumiOperator", "true"))
    assert isinstance(evaluation.error, SettingsError)
    assert evaluation.resources == []
    assert evaluation.error.keys == [
        "pulumiBackendUrl",
        "pulumiDeployerClientId",
        "pulumiProjectRepo",
        "pulumiStackName",
    ]


def test_analysis_image_pinned_by_tag_is_a_settings_error() -> None:
    image = "mlopsdevacr.azurecr.io/mlops/mlopsctl:0.1.0"
    evaluation = evaluate_with(
        "dev", lambda config: config.__setitem__(P + "prebuiltImages", f'{{"mlopsctl": "{image}"}}')
    )
    assert isinstance(evaluation.error, SettingsError)
    assert evaluation.error.keys == ["prebuiltImages.mlopsctl"]
