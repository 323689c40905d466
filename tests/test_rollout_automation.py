"""The rollout loops in the cluster: the analysis CronJob and the optional Pulumi operator Stack."""

from __future__ import annotations

import yaml

from components.cluster.rollout_automation import OPERATOR_POD_LABELS
from harness.deploy_order import order_problems
from harness.mock_engine import MODELS_DIR, Evaluation, evaluate
from harness.schema_validation import release_problems, schema_problems
from layout import cluster_layout
from layout.images import is_digest_reference
from settings import SettingsError
from tests.conftest import evaluate_with

P = "mlops-platform:"


def test_analysis_cronjob(stack: Evaluation) -> None:
    cronjob = stack.one("kubernetes:batch/v1:CronJob", "automation-analysis").inputs
    spec = cronjob["spec"]
    assert spec["schedule"] == "* * * * *"  # every minute: gates, rollbacks and A/B ends are seen within one
    # Safe to run that often: never two at once, a late tick starts within the deadline or not at all (no
    # pile-up), and a run is bounded.
    assert spec["concurrencyPolicy"] == "Forbid"
    assert 0 < spec["startingDeadlineSeconds"] <= 120
    assert spec["jobTemplate"]["spec"]["backoffLimit"] == 0
    assert spec["jobTemplate"]["spec"]["activeDeadlineSeconds"] <= 600
    pod = spec["jobTemplate"]["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["args"] == ["rollout", "advance", "--stack", stack.stack, "--json"]
    registry = stack.outputs["containerRegistryLoginServer"].value
    assert container["image"].startswith(f"{registry}/mlops/mlopsctl@sha256:")
    assert container["imagePullPolicy"] == "IfNotPresent"
    assert pod["serviceAccountName"] == "rollout-analyzer" and pod["automountServiceAccountToken"] is False
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["MLFLOW_TRACKING_PASSWORD_FILE"] == "/mnt/secrets/mlflow-admin-password"
    assert env["MLOPS_HOOK_SECRET_FILE"] == "/mnt/secrets/rollout-hook-signing-key"  # event hooks are signed
    assert env["MLFLOW_TRACKING_USERNAME"] == "mlflow-admin"  # the basic-auth admin the MLflow pods create
    assert "MLFLOW_TRACKING_PASSWORD" not in env
    provider = stack.one(
        "kubernetes:secrets-store.csi.x-k8s.io/v1:SecretProviderClass", "automation-mlflow-credentials"
    )
    parameters = provider.inputs["spec"]["parameters"]
    objects = [yaml.safe_load(o) for o in yaml.safe_load(parameters["objects"])["array"]]
    assert objects == [
        {"objectName": "mlflow-admin-password", "objectType": "secret"},
        {"objectName": "rollout-hook-signing-key", "objectType": "secret"},
    ]
    assert parameters["clientID"] == stack.outputs["workloadIdentityClientIds"].value["rollout-analyzer"]
    assert schema_problems(stack, "1.34.2") == []


def test_the_analyzer_has_no_kubernetes_permissions(stack: Evaluation) -> None:
    bindings = [r for r in stack.resources if r.type.startswith("kubernetes:rbac.authorization.k8s.io/v1:")]
    for binding in bindings:
        subjects = binding.inputs.get("subjects") or []
        assert all(s.get("name") != "rollout-analyzer" for s in subjects), binding.name


def _enable_operator(config: dict[str, str]) -> None:
    config[P + "pulumiOperator"] = "true"
    config[P + "pulumiProjectRepo"] = "https://github.com/example/mlops-platform.git"
    config[P + "pulumiBackendUrl"] = "azblob://state?storage_account=examplestate"
    config[P + "pulumiStackName"] = "organization/mlops-models/prod"


def test_committed_stacks_run_the_operator_and_the_receiver(stack: Evaluation) -> None:
    """Registry events reach a committed stack's cluster: the operator's Stack and the webhook
    receiver are declared in dev and prod, for that environment's models stack."""
    spec = stack.one("kubernetes:pulumi.com/v1:Stack", "automation-stack").inputs["spec"]
    assert spec["stack"] == f"organization/mlops-models/{stack.stack}"
    assert spec["backend"].startswith("azblob://") and spec["projectRepo"].startswith("https://")
    receiver = stack.one("kubernetes:apps/v1:Deployment", "webhooks-deployment").inputs
    assert receiver["spec"]["replicas"] == 2
    args = receiver["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args[args.index("--stack") + 1] == stack.stack
    assert stack.one("kubernetes:batch/v1:Job", "webhooks-ensure") is not None


def test_pulumi_operator_runs_the_models_project_and_resyncs_without_git_changes() -> None:
    evaluation = evaluate_with("prod", _enable_operator)
    assert evaluation.error is None, evaluation.error
    stack_cr = evaluation.one("kubernetes:pulumi.com/v1:Stack", "automation-stack")
    assert stack_cr.inputs["metadata"] == {
        "name": cluster_layout.MODELS_STACK_CR_NAME,
        "namespace": cluster_layout.MODELS_STACK_CR_NAMESPACE,
    }
    stack = stack_cr.inputs["spec"]
    assert stack["repoDir"] == "models"
    assert stack["stack"] == "organization/mlops-models/prod"
    assert stack["continueResyncOnCommitMatch"] is True
    assert stack["resyncFrequencySeconds"] == 600
    assert stack["serviceAccountName"] == "models-deployer"
    release = evaluation.one("kubernetes:helm.sh/v3:Release", "automation-pulumi-operator").inputs
    assert release["chart"].startswith("oci://") and release["version"] == "2.9.0"
    assert schema_problems(evaluation, "1.34.2") == []


def test_operator_workspace_is_restricted_and_reads_its_credentials_from_key_vault() -> None:
    evaluation = evaluate_with("prod", _enable_operator)
    assert evaluation.error is None, evaluation.error
    spec = evaluation.one("kubernetes:pulumi.com/v1:Stack", "automation-stack").inputs["spec"]
    workspace = spec["workspaceTemplate"]["spec"]
    assert workspace["securityProfile"] == "restricted"  # PKO 2.9: non-root, seccomp, no capabilities
    # The workspace image the program builds (images/operator-workspace), by the digest it pushed.
    [build] = [b for b in evaluation.of_type("docker-build:index:Image") if b.name == "images-operator-workspace"]
    assert workspace["image"] == f"{build.inputs['tags'][0].rpartition(':')[0]}@{build.outputs['digest']}"
    assert is_digest_reference(workspace["image"])
    # PKO 2.9 refuses FS and Env references and turns a Secret reference into a secretKeyRef on the
    # workspace pod: the references are literal paths of the mounted files, no secret value in them.
    refs = spec["envRefs"]
    assert {ref["type"] for ref in refs.values()} == {"Literal"}
    assert refs["MLFLOW_TRACKING_PASSWORD_FILE"] == {
        "type": "Literal",
        "literal": {"value": "/mnt/secrets/mlflow-models-reader-password"},
    }
    assert refs["PULUMI_CONFIG_PASSPHRASE_FILE"]["literal"]["value"] == "/mnt/secrets/models-stack-passphrase"
    assert not {"MLFLOW_TRACKING_PASSWORD", "PULUMI_CONFIG_PASSPHRASE"} & set(refs)
    # The files are the CSI driver's mount of the Key Vault secrets in the workspace's container;
    # nothing is synced into a Kubernetes Secret.
    provider = evaluation.one(
        "kubernetes:secrets-store.csi.x-k8s.io/v1:SecretProviderClass", "automation-deployer-credentials"
    )
    assert "secretObjects" not in provider.inputs["spec"]
    objects = yaml.safe_load(provider.inputs["spec"]["parameters"]["objects"])["array"]
    # The read-only models reader's password, never the MLflow admin's (tests/test_models_reader_platform.py).
    assert {yaml.safe_load(o)["objectName"] for o in objects} == {
        "mlflow-models-reader-password",
        "models-stack-passphrase",
    }
    parameters = provider.inputs["spec"]["parameters"]
    assert parameters["clientID"] == evaluation.outputs["workloadIdentityClientIds"].value["models-deployer"]
    volumes = workspace["podTemplate"]["spec"]["volumes"]
    assert volumes[0]["csi"]["volumeAttributes"] == {"secretProviderClass": "models-deployer-credentials"}
    [container] = workspace["podTemplate"]["spec"]["containers"]
    assert container["name"] == "pulumi"  # the container that runs the program
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    for ref in refs.values():
        if ref["literal"]["value"].startswith("/mnt/"):
            assert ref["literal"]["value"].rsplit("/", 1)[0] == mounts[volumes[0]["name"]]
    # The identity may read exactly those two secrets and has no other Azure role.
    assignments = [
        r
        for r in evaluation.of_type("azure-native:authorization:RoleAssignment")
        if r.name.startswith("identities-models-deployer")
    ]
    assert assignments and all("/secrets/" in r.inputs["scope"] for r in assignments)
    assert {r.inputs["scope"].rsplit("/", 1)[-1] for r in assignments} == {
        "mlflow-models-reader-password",
        "models-stack-passphrase",
    }


def test_operator_rights_end_at_the_models_namespace() -> None:
    evaluation = evaluate_with("prod", _enable_operator)
    assert evaluation.error is None, evaluation.error
    rbac = [r for r in evaluation.resources if r.type.startswith("kubernetes:rbac.authorization.k8s.io/v1:")]
    cluster_wide = [r for r in rbac if r.type.endswith((":ClusterRole", ":ClusterRoleBinding"))]
    for binding in cluster_wide:
        subjects = binding.inputs.get("subjects") or []
        if any(s.get("name") == "models-deployer" for s in subjects):
            assert binding.inputs["roleRef"]["name"] == "system:auth-delegator", binding.name  # token review only
    role = evaluation.one("kubernetes:rbac.authorization.k8s.io/v1:Role", "automation-model-delivery").inputs
    assert role["metadata"]["namespace"] == "models"
    kinds = {(rule["apiGroups"][0], kind) for rule in role["rules"] for kind in rule["resources"]}
    assert ("machinelearning.seldon.io", "seldondeployments") in kinds
    assert ("networking.istio.io", "virtualservices") in kinds
    assert all("*" not in rule["resources"] and "*" not in rule["verbs"] for rule in role["rules"])
    binding = evaluation.one("kubernetes:rbac.authorization.k8s.io/v1:RoleBinding", "automation-model-delivery")
    assert binding.inputs["metadata"]["namespace"] == "models"
    assert binding.inputs["subjects"] == [
        {"kind": "ServiceAccount", "name": "models-deployer", "namespace": "mlops-system"}
    ]
    # Everything the models program declares is a kind this Role grants.
    models = evaluate("prod", project_dir=MODELS_DIR)
    assert models.error is None, models.error
    for resource in models.resources:
        if not resource.custom or resource.type.startswith("pulumi:providers:"):
            continue
        group_version, kind = resource.type.removeprefix("kubernetes:").split(":")
        group = group_version.rsplit("/", 1)[0] if "/" in group_version else ""
        group = "" if group == "core" else group
        assert (group, kind.lower() + "s") in kinds, resource.type
        assert resource.inputs["metadata"]["namespace"] == "models", resource.name


def _operator_without_its_settings(config: dict[str, str]) -> None:
    config[P + "pulumiOperator"] = "true"
    for key in ("pulumiProjectRepo", "pulumiBackendUrl", "pulumiStackName"):
        config.pop(P + key, None)


def test_operator_without_its_settings_is_a_settings_error() -> None:
    evaluation = evaluate_with("prod", _operator_without_its_settings)
    assert isinstance(evaluation.error, SettingsError)
    assert evaluation.resources == []
    assert evaluation.error.keys == ["pulumiBackendUrl", "pulumiProjectRepo", "pulumiStackName"]


def test_analysis_image_pinned_by_tag_is_a_settings_error() -> None:
    image = "mlopsdevacr.azurecr.io/mlops/mlopsctl:0.1.0"
    evaluation = evaluate_with(
        "dev", lambda config: config.__setitem__(P + "prebuiltImages", f'{{"mlopsctl": "{image}"}}')
    )
    assert isinstance(evaluation.error, SettingsError)
    assert evaluation.error.keys == ["prebuiltImages.mlopsctl"]


WORKSPACE_PREBUILT = "mlopsci.azurecr.io/mlops/operator-workspace@sha256:" + "ab" * 32


def test_a_prebuilt_workspace_image_replaces_its_build_and_a_tag_or_the_old_key_is_refused() -> None:
    """`prebuiltImages.operator-workspace` is validated like every prebuilt image; the removed
    `pulumiWorkspaceImage` key is refused by name, before anything is declared."""
    prebuilt = evaluate_with(
        "dev", lambda c: c.__setitem__(P + "prebuiltImages", f'{{"operator-workspace": "{WORKSPACE_PREBUILT}"}}')
    )
    assert prebuilt.error is None, prebuilt.error
    spec = prebuilt.one("kubernetes:pulumi.com/v1:Stack", "automation-stack").inputs["spec"]
    assert spec["workspaceTemplate"]["spec"]["image"] == WORKSPACE_PREBUILT
    assert "images-operator-workspace" not in {b.name for b in prebuilt.of_type("docker-build:index:Image")}
    tagged = evaluate_with(
        "dev", lambda c: c.__setitem__(P + "prebuiltImages", '{"operator-workspace": "pulumi/pulumi:3.272.0-nonroot"}')
    )
    assert isinstance(tagged.error, SettingsError) and tagged.resources == []
    assert tagged.error.keys == ["prebuiltImages.operator-workspace"]
    old = evaluate_with("dev", lambda c: c.__setitem__(P + "pulumiWorkspaceImage", "pulumi/pulumi:3.272.0-nonroot"))
    assert isinstance(old.error, SettingsError) and old.resources == []
    assert "pulumiWorkspaceImage" in str(old.error)


def test_operator_stack_waits_for_its_workspace_identity() -> None:
    """The workspace pod runs as the deployer account; the Stack waits for that account's federation
    and Key Vault grants (without them the first token exchange fails and the update errors)."""
    evaluation = evaluate_with("prod", _enable_operator)
    assert evaluation.error is None, evaluation.error
    stack_cr = evaluation.one("kubernetes:pulumi.com/v1:Stack", "automation-stack")
    pod_spec = stack_cr.inputs["spec"]["workspaceTemplate"]["spec"]["podTemplate"]["spec"]
    assert pod_spec["serviceAccountName"] == stack_cr.inputs["spec"]["serviceAccountName"]
    assert order_problems(evaluation.resources) == []


def test_the_operator_is_scraped_where_its_chart_serves_metrics(stack: Evaluation) -> None:
    """The models-Stack alerts read `stacks_failing` from the operator:
    a PodMonitor next to the operator selects the chart's pods on `http-metrics`, in plain HTTP (chart
    2.9.0's secure default needs review rights the chart does not grant), keeping the Stack's labels."""
    release = stack.one("kubernetes:helm.sh/v3:Release", "automation-pulumi-operator")
    assert release.inputs["values"]["controller"]["metricsSecure"] is False
    monitor = stack.one("kubernetes:monitoring.coreos.com/v1:PodMonitor", "automation-pulumi-operator-metrics")
    spec = monitor.inputs["spec"]
    # The chart's selector labels: chart name and release name.
    assert spec["selector"]["matchLabels"] == OPERATOR_POD_LABELS
    assert OPERATOR_POD_LABELS["app.kubernetes.io/instance"] == release.inputs["name"]
    assert spec["namespaceSelector"]["matchNames"] == [release.inputs["namespace"]]
    [endpoint] = spec["podMetricsEndpoints"]
    assert (endpoint["port"], endpoint["scheme"], endpoint["honorLabels"]) == ("http-metrics", "http", True)
    # It waits for the operator and for the PodMonitor kind (kube-prometheus-stack).
    prometheus_stack = stack.one("kubernetes:helm.sh/v3:Release", "monitoring-kube-prometheus-stack")
    assert {release.urn, prometheus_stack.urn} <= set(monitor.dependencies)
    # `controller.metricsSecure` is a value of the pinned chart.
    assert release_problems(release) == []
    # Its alerts watch every Stack the operator runs (the single one and the teams'), in their namespace.
    stack_crs = [r for r in stack.resources if r.type == "kubernetes:pulumi.com/v1:Stack"]
    assert len(stack_crs) > 1
    rules = stack.one("kubernetes:monitoring.coreos.com/v1:PrometheusRule").inputs["spec"]["groups"]
    delivery = next(group for group in rules if group["name"] == "mlops-model-delivery")
    failing = next(rule for rule in delivery["rules"] if rule["alert"] == "ModelsStackUpdateFailing")
    for namespace in {r.inputs["metadata"]["namespace"] for r in stack_crs}:
        assert f'stacks_failing{{namespace="{namespace}"}}' in failing["expr"]
