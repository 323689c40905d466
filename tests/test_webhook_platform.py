"""The platform side of registry webhooks, as declared: receiver, RBAC, network, registration Job, MLflow env."""

from __future__ import annotations

import base64
from typing import Any

import pytest
import yaml
from cryptography.fernet import Fernet

from components.azure.passwords import urlsafe_base64
from harness.deploy_order import DeployGraph, requirements
from harness.mock_engine import Evaluation
from harness.schema_validation import schema_problems
from layout import cluster_layout
from settings import SettingsError
from tests.conftest import evaluate_with
from tests.services.stack import committed_settings
from tests.test_deploy_order import deployers

P = "mlops-platform:"


def _operator(config: dict[str, str]) -> None:
    config[P + "pulumiOperator"] = "true"
    config[P + "pulumiProjectRepo"] = "https://github.com/example/mlops-platform.git"
    config[P + "pulumiBackendUrl"] = "azblob://state?storage_account=examplestate"
    config[P + "pulumiStackName"] = "organization/mlops-models/prod"


@pytest.fixture(scope="module")
def with_operator() -> Evaluation:
    evaluation = evaluate_with("prod", _operator)
    assert evaluation.error is None, evaluation.error
    return evaluation


def _env(container: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container.get("env", [])}


def _mlflow_container(evaluation: Evaluation, role: str) -> dict[str, Any]:
    deployment = evaluation.one("kubernetes:apps/v1:Deployment", f"mlflow-{role}").inputs
    return dict(deployment["spec"]["template"]["spec"]["containers"][0])


def test_receiver_deployment_is_redundant_restricted_and_watches_the_managed_models(with_operator: Evaluation) -> None:
    deployment = with_operator.one("kubernetes:apps/v1:Deployment", "webhooks-deployment").inputs
    assert deployment["metadata"]["namespace"] == cluster_layout.AUTOMATION_NAMESPACE
    spec = deployment["spec"]
    assert spec["replicas"] == 2
    pod = spec["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    container = pod["containers"][0]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    args = container["args"]
    assert args[:2] == ["webhook", "serve"]
    # The served models come from the models stack of the same name, as for the analysis CronJob.
    assert args[args.index("--stack") + 1] == "prod" and "--model" not in args
    assert args[args.index("--stack-name") + 1] == cluster_layout.MODELS_STACK_CR_NAME
    assert args[args.index("--tolerance-seconds") + 1] == "300"
    hosts = {c["topologyKey"]: c["whenUnsatisfiable"] for c in pod["topologySpreadConstraints"]}
    assert hosts["kubernetes.io/hostname"] == "DoNotSchedule"
    pdb = with_operator.one("kubernetes:policy/v1:PodDisruptionBudget", "webhooks-pdb").inputs
    assert pdb["spec"]["minAvailable"] == 1
    assert schema_problems(with_operator, "1.34.2") == []


def test_receiver_may_patch_the_one_stack_and_nothing_else(with_operator: Evaluation) -> None:
    roles = [r for r in with_operator.resources if r.type.startswith("kubernetes:rbac.authorization.k8s.io/v1:")]
    bound = [
        r
        for r in roles
        if any(s.get("name") == "webhook-receiver" for s in (r.inputs.get("subjects") or []))
        or r.name == "webhooks-reconcile-role"
    ]
    assert {r.type.rsplit(":", 1)[1] for r in bound} == {"Role", "RoleBinding"}
    role = with_operator.one("kubernetes:rbac.authorization.k8s.io/v1:Role", "webhooks-reconcile-role").inputs
    assert role["metadata"]["namespace"] == cluster_layout.MODELS_STACK_CR_NAMESPACE
    assert role["rules"] == [
        {
            "apiGroups": ["pulumi.com"],
            "resources": ["stacks"],
            "resourceNames": [cluster_layout.MODELS_STACK_CR_NAME],
            "verbs": ["patch"],
        }
    ]
    stack = with_operator.one("kubernetes:pulumi.com/v1:Stack", "automation-stack").inputs["metadata"]
    assert (stack["namespace"], stack["name"]) == (
        cluster_layout.MODELS_STACK_CR_NAMESPACE,
        cluster_layout.MODELS_STACK_CR_NAME,
    )
    registrar = with_operator.one("kubernetes:core/v1:ServiceAccount", "webhooks-webhook-registrar").inputs
    assert registrar["automountServiceAccountToken"] is False


def test_only_mlflow_servers_reach_the_receiver(with_operator: Evaluation) -> None:
    policies = {
        r.inputs["metadata"]["name"]: r.inputs for r in with_operator.resources if r.type.endswith(":NetworkPolicy")
    }
    ingress = policies["webhook-receiver-ingress"]["spec"]
    assert ingress["podSelector"]["matchLabels"][cluster_layout.APP_NAME_LABEL] == "webhook-receiver"
    [rule] = ingress["ingress"]
    [peer] = rule["from"]
    assert peer["namespaceSelector"]["matchLabels"] == {"kubernetes.io/metadata.name": "mlflow"}
    assert peer["podSelector"]["matchLabels"] == {cluster_layout.APP_NAME_LABEL: "mlflow"}
    assert peer["podSelector"]["matchExpressions"][0]["values"] == ["tracking", "registry"]
    assert rule["ports"] == [{"port": 8080, "protocol": "TCP"}]
    delivery = policies["allow-webhook-delivery"]
    assert delivery["metadata"]["namespace"] == "mlflow"
    assert delivery["spec"]["egress"][0]["ports"] == [{"port": 8080, "protocol": "TCP"}]


def test_registration_job_runs_after_mlflow_and_the_receiver(with_operator: Evaluation) -> None:
    job = with_operator.one("kubernetes:batch/v1:Job", "webhooks-ensure")
    container = job.inputs["spec"]["template"]["spec"]["containers"][0]
    assert container["args"][:2] == ["webhook", "ensure"]
    url = container["args"][container["args"].index("--url") + 1]
    assert url == "http://webhook-receiver.mlops-system.svc.cluster.local/webhook"
    assert _env(container)["MLFLOW_TRACKING_PASSWORD_FILE"] == "/mnt/secrets/mlflow-admin-password"
    urns = {r.urn: r for r in with_operator.resources}
    waited = {urns[d].name for d in job.dependencies if d in urns}
    # Depending on the MLflow component means waiting for its custom children: the ready Deployments.
    assert {"mlflow-tracking", "mlflow-registry", "webhooks-deployment", "webhooks-service"} <= waited
    provider = with_operator.one(
        "kubernetes:secrets-store.csi.x-k8s.io/v1:SecretProviderClass", "webhooks-webhook-registrar-secrets"
    )
    objects = [
        yaml.safe_load(o)["objectName"]
        for o in yaml.safe_load(provider.inputs["spec"]["parameters"]["objects"])["array"]
    ]
    assert objects == [cluster_layout.WEBHOOK_SIGNING_SECRET, cluster_layout.MLFLOW_ADMIN_PASSWORD]


@pytest.fixture(scope="module")
def without_receiver() -> Evaluation:
    evaluation = evaluate_with("dev", lambda config: config.__setitem__(P + "pulumiOperator", "false"))
    assert evaluation.error is None, evaluation.error
    return evaluation


def test_mlflow_servers_get_one_encryption_key_and_deliberate_targets(
    with_operator: Evaluation, without_receiver: Evaluation
) -> None:
    for role in ("tracking", "registry"):
        container = _mlflow_container(with_operator, role)
        env = _env(container)
        # One key for every server process: the launcher exports it from the one mounted vault secret.
        assert "MLFLOW_WEBHOOK_SECRET_ENCRYPTION_KEY" not in env
        assert (
            'MLFLOW_WEBHOOK_SECRET_ENCRYPTION_KEY="$(cat /mnt/secrets-store/mlflow-webhook-encryption-key)"'
            in container["command"][2]
        )
        assert (env["MLFLOW_WEBHOOK_ALLOWED_SCHEMES"], env["MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS"]) == (
            "https,http",
            "true",
        )
        # The prod setting is 10 s; with teams (MLflow workspaces) the cache is off (docs/teams.md).
        assert env["MLFLOW_WEBHOOK_CACHE_TTL"] == ("0" if committed_settings("prod").teams else "10")
        # Without the receiver (no operator), MLflow keeps its SSRF protection, explicitly.
        container = _mlflow_container(without_receiver, role)
        env = _env(container)
        assert (env["MLFLOW_WEBHOOK_ALLOWED_SCHEMES"], env["MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS"]) == ("https", "false")
        assert "export MLFLOW_WEBHOOK_SECRET_ENCRYPTION_KEY" in container["command"][2]
    artifacts = _mlflow_container(with_operator, "artifacts")
    assert "MLFLOW_WEBHOOK_SECRET_ENCRYPTION_KEY" not in artifacts["command"][2]
    assert "MLFLOW_WEBHOOK_SECRET_ENCRYPTION_KEY" not in _env(artifacts)
    assert not [r for r in without_receiver.resources if r.type.startswith("mlops:serving:WebhookReceiver")]


def test_encryption_key_is_a_fernet_key_generated_in_key_vault(dev: Evaluation) -> None:
    secret = dev.one("azure-native:keyvault:Secret", "key-vault-mlflow-webhook-encryption-key").inputs
    key = secret["properties"]["value"]
    Fernet(key)  # raises unless 32 url-safe base64 bytes
    assert len(base64.urlsafe_b64decode(key)) == 32
    dev.one("azure-native:keyvault:Secret", "key-vault-mlflow-webhook-signing-secret")
    # `+` and `/` (standard alphabet) become `-` and `_`: Fernet keys are url-safe.
    assert urlsafe_base64("ab+/cd==") == "ab-_cd=="


def test_replay_window_out_of_range_is_a_settings_error() -> None:
    evaluation = evaluate_with("prod", lambda c: c.__setitem__(P + "webhookReplayWindowSeconds", "5"))
    assert isinstance(evaluation.error, SettingsError)
    assert evaluation.error.keys == ["webhookReplayWindowSeconds"]
    assert evaluation.resources == []


def test_registry_webhooks_off_declares_no_receiver() -> None:
    def change(config: dict[str, str]) -> None:
        _operator(config)
        config[P + "registryWebhooks"] = "false"

    evaluation = evaluate_with("prod", change)
    assert evaluation.error is None
    assert not [r for r in evaluation.resources if "webhook" in r.name and r.type.startswith("kubernetes:")]
    env = _env(_mlflow_container(evaluation, "registry"))
    assert env["MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS"] == "false"


def test_receiver_and_job_satisfy_every_deploy_order_rule(with_operator: Evaluation) -> None:
    """The dependency-graph rules (harness/deploy_order.py) on a stack that declares the receiver."""
    graph = DeployGraph(with_operator.resources)
    found = requirements(graph, deployers("prod"))
    # Only this component's objects: other operator-on findings belong to their components.
    broken = [r for r in graph.violations(found) if graph.by_urn[r.dependent].name.startswith("webhooks-")]
    assert not broken, "\n".join(r.describe() for r in broken)
    ours = {"webhooks-deployment", "webhooks-ensure"}
    checked = {(graph.by_urn[r.dependent].name, r.rule) for r in found if graph.by_urn[r.dependent].name in ours}
    for workload in ours:
        assert {(workload, rule) for rule in ("node-pool", "workload-identity", "image-pull")} <= checked
