"""Teams in the platform program: what one entry of `teams` declares, that it touches no other team,
that nothing of it exists without teams, the order a first `up` needs, and the team policies.

Evaluated with the mock engine on the committed dev stack with its `teams` replaced (the golden
test, tests/test_preview_golden.py, holds the committed stacks themselves).
"""

from __future__ import annotations

import dataclasses
import http.server
import json
import threading
from collections.abc import Sequence
from functools import cache
from typing import Any

import pytest

from harness.deploy_order import DeployGraph, order_problems
from harness.mock_engine import (
    MODELS_DIR,
    Evaluation,
    RecordedResource,
    evaluate,
    platform_outputs_example,
    stack_config,
)
from harness.policy_check import PackConfig, run_policies
from harness.preview import kubernetes_version
from harness.schema_validation import schema_problems
from layers import models as models_layer
from layers.mlflow_servers import server_settings
from layout import azure_roles, cluster_layout, mlflow_routing, team_layout
from layout.mlflow_server import DatabaseServer, server_command
from layout.platform_outputs import PlatformContract, contract_from_outputs
from policies.pack import BY_NAME
from rollout.registry_reader import WORKSPACE_ENV, WORKSPACE_HEADER, RegistryError
from settings.loader import load_settings
from settings.models import load_models_settings
from settings.problems import SettingsError
from settings.stack_file import project_values

ADMINS = "0b6f7a52-3c1d-4e8f-9a21-5d4c3b2a1f00"
MEMBERS = "7e2d9c41-8b3a-4f6e-a1d2-c3b4a5968778"
ROLE_ASSIGNMENT = "azure-native:authorization:RoleAssignment"
STACK = "kubernetes:pulumi.com/v1:Stack"
JOB = "kubernetes:batch/v1:Job"


def dev_values() -> dict[str, object]:
    """The committed dev stack's platform keys, as the program reads them."""
    config, _ = stack_config("dev")
    return project_values(dict(config))


def team_entries(names: Sequence[str]) -> list[dict[str, Any]]:
    return [{"name": n, "adminGroups": [ADMINS], "memberGroups": [MEMBERS]} for n in names]


@cache
def evaluated(names: tuple[str, ...] | None) -> Evaluation:
    """dev with `teams` set to `names` (None: the key removed, the single-tenant layout)."""
    config, secret_keys = stack_config("dev")
    config = dict(config)
    config.pop("mlops-platform:teams", None)
    if names is not None:
        config["mlops-platform:teams"] = json.dumps(team_entries(names))
    evaluation = evaluate("dev", config, secret_keys)
    assert evaluation.error is None, evaluation.error
    return evaluation


def of_team(evaluation: Evaluation, team: str) -> dict[str, tuple[dict[str, Any], list[str]]]:
    """Engine URN → (inputs, dependencies as engine URNs) of every resource named after `team`."""
    engine = {r.urn: r.engine_urn for r in evaluation.resources}
    prefix = f"team-{team}"
    return {
        r.engine_urn: (r.inputs, sorted(engine.get(d, d) for d in r.dependencies))
        for r in evaluation.resources
        if r.name == prefix or r.name.startswith(prefix + "-")
    }


def test_adding_or_removing_teams_changes_nothing_of_another_team() -> None:
    alone, two, three = (
        of_team(evaluated(names), "alpha") for names in (("alpha",), ("alpha", "beta"), ("alpha", "beta", "gamma"))
    )
    assert len(alone) > 40
    assert alone == two == three
    # ... and the others are really there and declared as much.
    assert len(of_team(evaluated(("alpha", "beta", "gamma")), "gamma")) == len(alone)


def test_without_teams_nothing_of_them_is_declared() -> None:
    single = evaluated(None)
    assert "teams" not in single.outputs
    assert not [r.name for r in single.resources if r.name.startswith("team") or "teams-registrar" in r.name]
    tracking = next(r for r in single.resources if r.name == "mlflow-tracking" and r.type.endswith("Deployment"))
    assert "--enable-workspaces" not in json.dumps(tracking.inputs)
    assert "--no-serve-artifacts" in json.dumps(tracking.inputs)


def test_a_team_gets_its_namespaces_walls_identities_and_stack() -> None:
    evaluation = evaluated(("alpha", "beta"))
    resources = of_team(evaluation, "alpha")
    kinds = sorted({urn.split("::")[-2].rsplit("$", 1)[-1] for urn in resources})
    for kind in (
        "kubernetes:core/v1:Namespace",
        "kubernetes:core/v1:ResourceQuota",
        "kubernetes:core/v1:LimitRange",
        "kubernetes:networking.k8s.io/v1:NetworkPolicy",
        "kubernetes:rbac.authorization.k8s.io/v1:RoleBinding",
        STACK,
        "azure-native:keyvault:Secret",
        "azure-native:managedidentity:FederatedIdentityCredential",
    ):
        assert kind in kinds
    stack = evaluation.one(STACK, "team-alpha-stack").inputs
    assert stack["metadata"] == {"name": "alpha-dev", "namespace": cluster_layout.AUTOMATION_NAMESPACE}
    refs = {k: v["literal"]["value"] for k, v in stack["spec"]["envRefs"].items()}
    assert refs["MLFLOW_TRACKING_USERNAME"] == "alpha-reader"
    assert refs["MLFLOW_WORKSPACE"] == "alpha"
    assert refs["MLFLOW_TRACKING_PASSWORD_FILE"].endswith("/alpha-reader-password")
    assert stack["spec"]["stack"] == "organization/mlops-models/alpha-dev"
    binding = evaluation.one("kubernetes:rbac.authorization.k8s.io/v1:RoleBinding", "team-alpha-model-delivery")
    assert binding.inputs["metadata"]["namespace"] == "alpha"
    quota = evaluation.one("kubernetes:core/v1:ResourceQuota", "team-alpha-serving-quota").inputs
    assert quota["spec"]["hard"] == {"requests.cpu": "8", "requests.memory": "32Gi", "pods": "50"}


def test_group_grants_are_namespace_scoped_and_the_readers_are_conditioned() -> None:
    evaluation = evaluated(("alpha",))
    cluster = next(r for r in evaluation.resources if r.type == "azure-native:containerservice:ManagedCluster")
    grants = [r for r in evaluation.of_type(ROLE_ASSIGNMENT) if r.name.startswith("team-alpha-")]
    groups = {
        (r.inputs["roleDefinitionId"].rsplit("/", 1)[1], r.inputs["scope"])
        for r in grants
        if r.inputs.get("principalType") == "Group" and "namespaces" in str(r.inputs["scope"])
    }
    assert groups == {
        (role, f"{cluster.id}/namespaces/{ns}")
        for role in (azure_roles.AKS_RBAC_WRITER, azure_roles.AKS_RBAC_READER)
        for ns in ("alpha", "alpha-jobs")
    }
    readers = [r for r in grants if r.inputs["roleDefinitionId"].endswith(azure_roles.STORAGE_BLOB_DATA_READER)]
    assert len(readers) == 2
    for reader in readers:
        assert reader.inputs["conditionVersion"] == "2.0"
        assert "'workspaces/alpha/'" in reader.inputs["condition"]


def _waits_for(evaluation: Evaluation, dependent: RecordedResource, target: RecordedResource) -> bool:
    return target.urn in DeployGraph(evaluation.resources).waits_for(dependent.urn)


def test_the_stack_and_the_ensure_job_wait_for_what_they_need() -> None:
    evaluation = evaluated(("alpha", "beta"))
    assert order_problems(evaluation.resources) == []
    assert schema_problems(evaluation, kubernetes_version(evaluation)) == []
    stack = evaluation.one(STACK, "team-alpha-stack")
    for type_token, name in (
        ("kubernetes:helm.sh/v3:Release", "automation-pulumi-operator"),
        ("azure-native:managedidentity:FederatedIdentityCredential", "team-alpha-deployer-federation"),
        (ROLE_ASSIGNMENT, "team-alpha-deployer-secret-alpha-reader-password"),
        ("kubernetes:rbac.authorization.k8s.io/v1:RoleBinding", "team-alpha-model-delivery"),
        ("kubernetes:secrets-store.csi.x-k8s.io/v1:SecretProviderClass", "team-alpha-deployer-credentials"),
    ):
        assert _waits_for(evaluation, stack, evaluation.one(type_token, name)), name
    job = evaluation.one(JOB, "teams-ensure")
    for type_token, name in (
        ("kubernetes:apps/v1:Deployment", "mlflow-registry"),
        ("azure-native:keyvault:Secret", "team-alpha-automation-password"),
        ("azure-native:keyvault:Secret", "team-beta-reader-password"),
        (ROLE_ASSIGNMENT, "identities-teams-registrar-secret-beta-automation-password"),
    ):
        assert _waits_for(evaluation, job, evaluation.one(type_token, name)), name


def test_the_ensure_job_reruns_when_the_teams_change_and_only_then() -> None:
    def annotations(names: tuple[str, ...]) -> dict[str, str]:
        job = evaluated(names).one(JOB, "teams-ensure")
        return dict(job.inputs["spec"]["template"]["metadata"]["annotations"])

    assert annotations(("alpha",)) != annotations(("alpha", "beta"))
    assert annotations(("alpha", "beta")) == annotations(("alpha", "beta"))
    job = evaluated(("alpha",)).one(JOB, "teams-ensure")
    args = job.inputs["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args[:2] == ["teams", "ensure"]


def test_with_teams_the_tracking_role_serves_artifacts() -> None:
    assert mlflow_routing.role_for("/api/2.0/mlflow-artifacts/artifacts/x") == "artifacts"
    workspaced = mlflow_routing.routes(True)
    assert mlflow_routing.role_for("/api/2.0/mlflow-artifacts/artifacts/x", workspaced) == "tracking"
    assert mlflow_routing.role_for("/api/2.0/mlflow/registered-models/get", workspaced) == "registry"
    settings = load_settings(dev_values())
    assert settings.teams
    server = server_settings(settings, DatabaseServer(host="db", user="u"), "wasbs://c@a.blob.core.windows.net/")
    tracking = server_command("tracking", server).program
    assert "--no-serve-artifacts" not in tracking and "--enable-workspaces" in tracking
    assert tracking[tracking.index("--artifacts-destination") + 1] == "wasbs://c@a.blob.core.windows.net/"
    assert "--no-serve-artifacts" in server_command("registry", server).program


@pytest.mark.parametrize(
    ("teams", "key", "reason"),
    [
        (team_entries(["alpha", "alpha"]), "teams[1] (alpha).name", "a name no other team has"),
        (
            [*team_entries(["alpha"]), {"name": "beta", "adminGroups": [ADMINS], "overrides": {"namespace": "alpha"}}],
            "teams[1] (beta).overrides.namespace",
            "a namespace of its own",
        ),
        (
            [{"name": "alpha", "adminGroups": [ADMINS], "overrides": {"namespace": "models"}}],
            "teams[0] (alpha)",
            "modelsNamespace",
        ),
        (team_entries(["alpha", "alpha-jobs"]), "teams[1] (alpha-jobs)", "is alpha's"),
        ([{"name": "alpha"}], "teams[0] (alpha).adminGroups", "Field required"),
    ],
)
def test_bad_teams_fail_naming_the_key(teams: list[dict[str, Any]], key: str, reason: str) -> None:
    raw = {**dev_values(), "teams": teams}
    with pytest.raises(SettingsError) as error:
        load_settings(raw)
    assert any(p.key == key and reason in p.allowed + p.found for p in error.value.problems), error.value


# --- policies ------------------------------------------------------------------------------------

TEAM_POLICIES = ["team-namespace-walls", "team-stack-confined", "team-reader-abac", "team-namespace-shared"]


def _violations(resources: list[RecordedResource]) -> dict[str, list[str]]:
    evaluation = dataclasses.replace(evaluated(("alpha", "beta")), resources=resources)
    config = PackConfig("test")
    found: dict[str, list[str]] = {}
    for violation in run_policies(evaluation, config, [BY_NAME[name] for name in TEAM_POLICIES]):
        found.setdefault(violation.policy, []).append(violation.message)
    return found


def _replace(resource: RecordedResource, **inputs: Any) -> RecordedResource:
    return dataclasses.replace(resource, inputs={**resource.inputs, **inputs})


def test_the_team_policies_pass_the_declared_teams() -> None:
    assert _violations(list(evaluated(("alpha", "beta")).resources)) == {}


def test_a_team_namespace_without_quota_fails() -> None:
    resources = [r for r in evaluated(("alpha", "beta")).resources if r.name != "team-alpha-serving-quota"]
    assert _violations(resources) == {"team-namespace-walls": ["team alpha's namespace alpha has no ResourceQuota"]}


def test_a_team_namespace_without_network_policy_fails() -> None:
    resources = [r for r in evaluated(("alpha", "beta")).resources if not r.name.startswith("team-beta-jobs-netpol")]
    assert _violations(resources) == {"team-namespace-walls": ["team beta's namespace beta-jobs has no NetworkPolicy"]}


def test_a_team_stack_account_bound_outside_its_namespace_fails() -> None:
    resources = list(evaluated(("alpha", "beta")).resources)
    binding = next(r for r in resources if r.name == "team-alpha-model-delivery" and r.type.endswith("RoleBinding"))
    moved = _replace(binding, metadata={**binding.inputs["metadata"], "namespace": "beta"})
    elevated = evaluated(("alpha", "beta")).one(
        "kubernetes:rbac.authorization.k8s.io/v1:ClusterRoleBinding", "team-alpha-deployer-auth-delegator"
    )
    admin = _replace(elevated, roleRef={**elevated.inputs["roleRef"], "name": "cluster-admin"})
    found = _violations(
        [
            *resources,
            dataclasses.replace(moved, urn=moved.urn + "-moved"),
            dataclasses.replace(admin, urn=admin.urn + "-admin"),
        ]
    )
    assert found == {
        "team-stack-confined": [
            "team alpha's Stack account alpha-models-deployer is bound in namespace beta",
            "team alpha's Stack account alpha-models-deployer is bound cluster-wide",
        ]
    }


def test_a_team_reader_without_its_condition_fails() -> None:
    resources = []
    for original in evaluated(("alpha", "beta")).resources:
        r = original
        if r.name == "team-beta-model-reader-container":
            r = dataclasses.replace(
                r, inputs={k: v for k, v in r.inputs.items() if k not in ("condition", "conditionVersion")}
            )
        if r.name == "team-alpha-job-runner-container":
            r = _replace(r, condition=r.inputs["condition"].replace("workspaces/alpha/", "workspaces/beta/"))
        resources.append(r)
    found = _violations(resources)
    assert sorted(found["team-reader-abac"]) == [
        "team alpha's blob reader has no condition on workspaces/alpha/",
        "team beta's blob reader has no condition on workspaces/beta/",
    ]
    assert set(found) == {"team-reader-abac"}


def test_two_teams_sharing_a_namespace_fail() -> None:
    resources = list(evaluated(("alpha", "beta")).resources)
    beta = next(r for r in resources if r.name == "team-beta-namespace")
    shared = _replace(beta, metadata={**beta.inputs["metadata"], "name": "alpha"})
    found = _violations([r if r is not beta else shared for r in resources])
    assert "namespace alpha is declared 2 times (teams ['alpha', 'beta'])" in found["team-namespace-shared"]


def test_team_layout_names() -> None:
    assert team_layout.models_stack_name("org/mlops-models/prod", "fraud", "prod") == "org/mlops-models/fraud-prod"
    assert team_layout.team_secrets("fraud") == (
        "fraud-automation-password",
        "fraud-reader-password",
        "fraud-webhook-secret",
        "fraud-stack-passphrase",
    )


# --- a team's models stack -----------------------------------------------------------------------


def test_a_teams_models_stack_delivers_into_its_namespace_with_its_identity() -> None:
    evaluation = evaluate("fraud-dev", project_dir=MODELS_DIR)
    assert evaluation.error is None, evaluation.error
    teams = json.loads(platform_outputs_example("dev").read_text())["teams"]
    namespaces = {r.inputs["metadata"].get("namespace") for r in evaluation.resources if "metadata" in r.inputs}
    assert namespaces == {"fraud"}
    account = evaluation.one("kubernetes:core/v1:ServiceAccount").inputs
    assert (
        account["metadata"]["annotations"][cluster_layout.WORKLOAD_IDENTITY_CLIENT_ID]
        == teams["fraud"]["readerClientId"]
    )
    assert [r.name for r in evaluation.of_type("kubernetes:machinelearning.seldon.io/v1:SeldonDeployment")] == [
        "models-fraud-detector"
    ]


def test_a_models_stack_for_a_team_the_platform_does_not_declare_fails_naming_it() -> None:
    config, secret_keys = stack_config("fraud-dev", MODELS_DIR)
    config = {**config, "mlops-models:team": "payments"}
    evaluation = evaluate("fraud-dev", config, secret_keys, project_dir=MODELS_DIR)
    assert "declares no team 'payments'" in str(evaluation.error)
    assert not evaluation.of_type("kubernetes:machinelearning.seldon.io/v1:SeldonDeployment")


def test_a_teams_models_stack_reads_the_registry_in_its_workspace() -> None:
    """`layers.models.plan` sends the team's workspace whatever the environment holds (a local HTTP
    endpoint stands in for MLflow and records the header: the real workspace behaviour is
    tests/test_teams_mlflow.py::test_the_models_stack_reader_reads_its_own_workspace_only)."""
    seen: list[str | None] = []

    class Registry(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append(self.headers.get(WORKSPACE_HEADER))
            body = b'{"registered_models": []}'
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_: object) -> None:
            return

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Registry)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        settings = load_models_settings(
            {"platformStack": "o/mlops-platform/dev", "team": "fraud", "rollout": {"models": [{"name": "m"}]}}
        )
        uri = f"http://127.0.0.1:{server.server_address[1]}"
        environ = {"MLFLOW_TRACKING_URI": uri, WORKSPACE_ENV: "churn"}
        with pytest.raises(RegistryError):  # the model does not exist; the request is what matters
            models_layer.plan(settings, dataclasses.replace(_contract(), mlflow_uri=uri), environ)
    finally:
        server.shutdown()
    assert seen and set(seen) == {"fraud"}


def _contract() -> PlatformContract:
    outputs = json.loads(platform_outputs_example("dev").read_text())
    return contract_from_outputs("dev", outputs)
