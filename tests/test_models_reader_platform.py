"""The platform side of the models stack's read-only MLflow user, as declared: the admin password never
reaches the operator's workspace, and the `ensure-reader` Job runs after MLflow and its secrets."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import yaml

from harness.deploy_order import DeployGraph
from harness.mock_engine import Evaluation
from layout import cluster_layout
from layout.paths import MODELS_DIR
from settings import SettingsError
from settings.stack_file import models_settings_from_stack_file
from tests.conftest import evaluate_with

P = "mlops-platform:"
SPC = "kubernetes:secrets-store.csi.x-k8s.io/v1:SecretProviderClass"


def _objects(provider_class: Any) -> list[str]:
    """The Key Vault object names a SecretProviderClass mounts."""
    array = yaml.safe_load(provider_class.inputs["spec"]["parameters"]["objects"])["array"]
    return [yaml.safe_load(o)["objectName"] for o in array]


def _secret_id(stack: Evaluation, secret: str) -> str:
    return stack.one("azure-native:keyvault:Secret", f"key-vault-{secret}").id


def test_the_admin_password_never_reaches_the_workspace(stack: Evaluation) -> None:
    # No Stack, the single one or a team's, names the admin password.
    for each in stack.of_type("kubernetes:pulumi.com/v1:Stack"):
        assert cluster_layout.MLFLOW_ADMIN_PASSWORD not in json.dumps(each.inputs["spec"]), each.name
    spec = stack.one("kubernetes:pulumi.com/v1:Stack", "automation-stack").inputs["spec"]
    env = {name: ref["literal"]["value"] for name, ref in spec["envRefs"].items()}
    assert env["MLFLOW_TRACKING_USERNAME"] == cluster_layout.MODELS_READER_USER
    assert env["MLFLOW_TRACKING_PASSWORD_FILE"] == f"/mnt/secrets/{cluster_layout.MODELS_READER_PASSWORD}"
    assert not any(cluster_layout.MLFLOW_ADMIN_PASSWORD in str(value) for value in env.values())
    [volume] = spec["workspaceTemplate"]["spec"]["podTemplate"]["spec"]["volumes"]
    mounted = volume["csi"]["volumeAttributes"]["secretProviderClass"]
    [credentials] = [r for r in stack.of_type(SPC) if r.inputs["metadata"]["name"] == mounted]
    assert _objects(credentials) == [cluster_layout.MODELS_READER_PASSWORD, cluster_layout.MODELS_STACK_PASSPHRASE]
    # Azure side: the deployer identity may read exactly those two secrets, not the admin password.
    deployer = stack.one("azure-native:managedidentity:UserAssignedIdentity", "identities-models-deployer-identity")
    principal = deployer.outputs["principalId"]
    scopes = {
        r.inputs["scope"]
        for r in stack.of_type("azure-native:authorization:RoleAssignment")
        if r.inputs.get("principalId") == principal
    }
    assert scopes == {
        _secret_id(stack, cluster_layout.MODELS_READER_PASSWORD),
        _secret_id(stack, cluster_layout.MODELS_STACK_PASSPHRASE),
    }
    assert _secret_id(stack, cluster_layout.MLFLOW_ADMIN_PASSWORD) not in scopes


def test_the_reader_password_is_generated_in_key_vault(stack: Evaluation) -> None:
    secret = stack.one("azure-native:keyvault:Secret", f"key-vault-{cluster_layout.MODELS_READER_PASSWORD}")
    assert secret.inputs["properties"]["contentType"] == "password"
    password = stack.one(
        "random:index/randomPassword:RandomPassword", f"key-vault-{cluster_layout.MODELS_READER_PASSWORD}"
    )
    assert password.inputs["length"] == 32 and password.inputs["special"] is False


def test_the_job_grants_the_models_of_the_models_stack(stack: Evaluation) -> None:
    job = stack.one("kubernetes:batch/v1:Job", "models-reader-ensure").inputs
    pod = job["spec"]["template"]["spec"]
    [container] = pod["containers"]
    args = container["args"]
    assert args[:2] == ["registry", "ensure-reader"]
    assert args[args.index("--username") + 1] == cluster_layout.MODELS_READER_USER
    assert args[args.index("--password-file") + 1] == f"/mnt/secrets/{cluster_layout.MODELS_READER_PASSWORD}"
    wanted = [m.name for m in models_settings_from_stack_file(MODELS_DIR / f"Pulumi.{stack.stack}.yaml").rollout.models]
    assert [args[i + 1] for i, a in enumerate(args) if a == "--model"] == wanted and wanted
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["MLFLOW_TRACKING_PASSWORD_FILE"] == f"/mnt/secrets/{cluster_layout.MLFLOW_ADMIN_PASSWORD}"
    assert pod["automountServiceAccountToken"] is False
    assert pod["securityContext"]["runAsNonRoot"] is True
    [provider] = [r for r in stack.of_type(SPC) if r.name == "models-reader-secrets"]
    assert _objects(provider) == [cluster_layout.MODELS_READER_PASSWORD, cluster_layout.MLFLOW_ADMIN_PASSWORD]


def test_the_job_runs_after_mlflow_and_the_secrets(stack: Evaluation) -> None:
    graph = DeployGraph(stack.resources)
    job = stack.one("kubernetes:batch/v1:Job", "models-reader-ensure")
    waits = {graph.by_urn[u].name for u in graph.waits_for(job.urn) if u in graph.by_urn}
    # MLflow's servers ready, and the Key Vault secrets it reads written (through the identity's grants).
    assert {"mlflow-registry", "mlflow-tracking"} <= waits
    assert {
        f"key-vault-{cluster_layout.MODELS_READER_PASSWORD}",
        f"key-vault-{cluster_layout.MLFLOW_ADMIN_PASSWORD}",
        "identities-models-reader-registrar-federation",
        "models-reader-account",
        "models-reader-secrets",
    } <= waits


def test_another_model_list_is_another_job_spec(monkeypatch: Any, tmp_path: Path) -> None:
    """A model added to or dropped from the models stack changes the Job's spec, which is immutable:
    Pulumi replaces the Job (`replaceOnChanges: spec`), so the grants follow the list."""
    import layers.config  # noqa: PLC0415

    document = yaml.safe_load((MODELS_DIR / "Pulumi.dev.yaml").read_text())
    models = document["config"]["mlops-models:rollout"]["models"]
    document["config"]["mlops-models:rollout"]["models"] = models[:1]
    shutil.copy(MODELS_DIR / "Pulumi.yaml", tmp_path / "Pulumi.yaml")
    (tmp_path / "Pulumi.dev.yaml").write_text(yaml.safe_dump(document))
    monkeypatch.setattr(layers.config, "MODELS_DIR", tmp_path)
    evaluation = evaluate_with("dev", lambda config: None)
    assert evaluation.error is None, evaluation.error
    args = evaluation.one("kubernetes:batch/v1:Job", "models-reader-ensure").inputs["spec"]["template"]["spec"]
    assert [a for a in args["containers"][0]["args"] if a != "--model"][-1] == models[0]["name"]
    assert args["containers"][0]["args"].count("--model") == 1


def test_without_the_operator_there_is_no_reader_job() -> None:
    evaluation = evaluate_with("dev", lambda config: config.__setitem__(P + "pulumiOperator", "false"))
    assert evaluation.error is None, evaluation.error
    assert not [r for r in evaluation.resources if r.name.startswith("models-reader")]


def test_a_platform_stack_without_a_models_stack_file_is_refused(monkeypatch: Any, tmp_path: Path) -> None:
    import layers.config  # noqa: PLC0415

    monkeypatch.setattr(layers.config, "MODELS_DIR", tmp_path)
    evaluation = evaluate_with("dev", lambda config: None)
    assert isinstance(evaluation.error, SettingsError)
    assert "no models stack file models/Pulumi.dev.yaml" in str(evaluation.error)
    assert evaluation.resources == []
