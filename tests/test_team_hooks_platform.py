"""The platform side of per-team webhooks, as declared: what the receiver is given for each team (secret
file, grant, Stack it may patch, arguments), and the teams' registration Job waiting for the receiver.

Evaluated with the mock engine on the committed dev stack with its `teams` replaced, like
tests/test_teams_platform.py (whose `evaluated` cache this shares).
"""

from __future__ import annotations

import json
from typing import Any

import yaml

from components.azure import azure_roles
from harness.deploy_order import DeployGraph
from harness.mock_engine import Evaluation, RecordedResource, evaluate, stack_config
from layout import cluster_layout
from tests.test_teams_platform import ADMINS, JOB, ROLE_ASSIGNMENT, evaluated

DEPLOYMENT = "kubernetes:apps/v1:Deployment"
SPC = "kubernetes:secrets-store.csi.x-k8s.io/v1:SecretProviderClass"
ROLE = "kubernetes:rbac.authorization.k8s.io/v1:Role"
SECRET = "azure-native:keyvault:Secret"
BASE_URL = f"http://webhook-receiver.{cluster_layout.AUTOMATION_NAMESPACE}.svc.cluster.local"


def _args(evaluation: Evaluation, type_token: str, name: str) -> list[str]:
    return list(evaluation.one(type_token, name).inputs["spec"]["template"]["spec"]["containers"][0]["args"])


def _flags(args: list[str], flag: str) -> list[str]:
    return [args[i + 1] for i, arg in enumerate(args) if arg == flag]


def _objects(evaluation: Evaluation, name: str) -> list[str]:
    parameters = evaluation.one(SPC, name).inputs["spec"]["parameters"]
    return [yaml.safe_load(o)["objectName"] for o in yaml.safe_load(parameters["objects"])["array"]]


def _waits_for(evaluation: Evaluation, dependent: RecordedResource, type_token: str, name: str) -> bool:
    return evaluation.one(type_token, name).urn in DeployGraph(evaluation.resources).waits_for(dependent.urn)


def _receiver_principal(evaluation: Evaluation) -> Any:
    identity = evaluation.one(
        "azure-native:managedidentity:UserAssignedIdentity", "identities-webhook-receiver-identity"
    )
    return identity.outputs["principalId"]


def test_the_receiver_serves_each_teams_hook_with_its_secret_file_and_stack() -> None:
    evaluation = evaluated(("alpha", "beta"))
    args = _args(evaluation, DEPLOYMENT, "webhooks-deployment")
    assert _flags(args, "--team") == ["alpha=alpha-dev", "beta=beta-dev"]
    assert _flags(args, "--team-secrets-dir") == ["/mnt/secrets"]
    assert _flags(args, "--team-stack-namespace") == [cluster_layout.AUTOMATION_NAMESPACE]
    # The single-tenant hook is as before: the single Stack, models from models/Pulumi.dev.yaml.
    assert _flags(args, "--stack-name") == [cluster_layout.MODELS_STACK_CR_NAME] and _flags(args, "--stack") == ["dev"]
    assert _objects(evaluation, "webhooks-webhook-receiver-secrets") == [
        cluster_layout.WEBHOOK_SIGNING_SECRET,
        "alpha-webhook-secret",
        "beta-webhook-secret",
    ]
    stacks = {
        r.inputs["metadata"]["name"]
        for r in evaluation.of_type("kubernetes:pulumi.com/v1:Stack")
        if r.name != "automation-stack"
    }
    assert stacks == {"alpha-dev", "beta-dev"}  # the Stacks the arguments name exist


def test_the_receiver_identity_reads_exactly_the_teams_webhook_secrets() -> None:
    evaluation = evaluated(("alpha", "beta"))
    principal = _receiver_principal(evaluation)
    secrets = {r.id: r.inputs["secretName"] for r in evaluation.of_type(SECRET)}
    granted = [r for r in evaluation.of_type(ROLE_ASSIGNMENT) if r.inputs.get("principalId") == principal]
    assert all(r.inputs["roleDefinitionId"].endswith(azure_roles.KEY_VAULT_SECRETS_USER) for r in granted)
    assert sorted(secrets[r.inputs["scope"]] for r in granted) == sorted(
        [cluster_layout.WEBHOOK_SIGNING_SECRET, "alpha-webhook-secret", "beta-webhook-secret"]
    )
    grant = evaluation.one(ROLE_ASSIGNMENT, "team-alpha-webhook-receiver-webhook-secret")
    assert grant.inputs["principalType"] == "ServicePrincipal"


def test_the_receiver_may_patch_the_teams_stacks_by_name_only() -> None:
    evaluation = evaluated(("alpha", "beta"))
    role = evaluation.one(ROLE, "webhooks-team-reconcile-role").inputs
    assert role["metadata"]["namespace"] == cluster_layout.AUTOMATION_NAMESPACE
    assert role["rules"] == [
        {
            "apiGroups": ["pulumi.com"],
            "resources": ["stacks"],
            "resourceNames": ["alpha-dev", "beta-dev"],
            "verbs": ["patch"],
        }
    ]
    binding = evaluation.one("kubernetes:rbac.authorization.k8s.io/v1:RoleBinding", "webhooks-team-reconcile-binding")
    assert binding.inputs["subjects"] == [
        {"kind": "ServiceAccount", "name": "webhook-receiver", "namespace": cluster_layout.AUTOMATION_NAMESPACE}
    ]
    assert binding.inputs["roleRef"]["name"] == role["metadata"]["name"]
    # The single Stack's Role is unchanged by teams.
    single = evaluation.one(ROLE, "webhooks-reconcile-role").inputs["rules"]
    assert single == evaluated(None).one(ROLE, "webhooks-reconcile-role").inputs["rules"]


def test_the_receiver_waits_for_the_teams_secrets_grants_and_rbac() -> None:
    evaluation = evaluated(("alpha", "beta"))
    deployment = evaluation.one(DEPLOYMENT, "webhooks-deployment")
    for type_token, name in (
        (SECRET, "team-alpha-webhook-secret"),
        (SECRET, "team-beta-webhook-secret"),
        (ROLE_ASSIGNMENT, "team-alpha-webhook-receiver-webhook-secret"),
        (ROLE_ASSIGNMENT, "team-beta-webhook-receiver-webhook-secret"),
        ("kubernetes:rbac.authorization.k8s.io/v1:RoleBinding", "webhooks-team-reconcile-binding"),
    ):
        assert _waits_for(evaluation, deployment, type_token, name), name


def test_the_teams_ensure_job_registers_the_hooks_at_the_receiver_once_it_is_ready() -> None:
    evaluation = evaluated(("alpha", "beta"))
    job = evaluation.one(JOB, "teams-ensure")
    args = _args(evaluation, JOB, "teams-ensure")
    assert _flags(args, "--webhook-base-url") == [BASE_URL]
    assert _flags(args, "--secrets-dir") == ["/mnt/secrets"]
    objects = _objects(evaluation, "teams-secrets")
    assert {"alpha-webhook-secret", "beta-webhook-secret"} <= set(objects)
    # Dependencies declared by the owning component (TeamsRegistration), on the recorded graph:
    # the receiver's Deployment (awaited until ready) and Service, and the registrar's secret grants.
    direct = {r.urn: r.name for r in evaluation.resources}
    assert {"webhooks-deployment", "webhooks-service"} <= {direct[d] for d in job.dependencies if d in direct}
    for type_token, name in (
        (DEPLOYMENT, "webhooks-deployment"),
        ("kubernetes:core/v1:Service", "webhooks-service"),
        (ROLE_ASSIGNMENT, "identities-teams-registrar-secret-alpha-webhook-secret"),
        (ROLE_ASSIGNMENT, "identities-teams-registrar-secret-beta-webhook-secret"),
    ):
        assert _waits_for(evaluation, job, type_token, name), name


def _evaluate(teams: list[dict[str, Any]], operator: bool = True) -> Evaluation:
    config, secret_keys = stack_config("dev")
    config = dict(config)
    config["mlops-platform:teams"] = json.dumps(teams)
    if not operator:
        config["mlops-platform:pulumiOperator"] = "false"
    evaluation = evaluate("dev", config, secret_keys)
    assert evaluation.error is None, evaluation.error
    return evaluation


def test_a_team_with_its_webhook_off_gets_no_hook_secret_mount_or_grant() -> None:
    evaluation = _evaluate(
        [
            {"name": "alpha", "adminGroups": [ADMINS]},
            {"name": "beta", "adminGroups": [ADMINS], "overrides": {"webhook": False}},
        ]
    )
    assert _flags(_args(evaluation, DEPLOYMENT, "webhooks-deployment"), "--team") == ["alpha=alpha-dev"]
    assert "beta-webhook-secret" not in _objects(evaluation, "webhooks-webhook-receiver-secrets")
    assert "beta-webhook-secret" not in _objects(evaluation, "teams-secrets")
    names = {r.name for r in evaluation.of_type(ROLE_ASSIGNMENT)}
    assert "team-alpha-webhook-receiver-webhook-secret" in names
    assert (
        not {"team-beta-webhook-receiver-webhook-secret", "identities-teams-registrar-secret-beta-webhook-secret"}
        & names
    )
    role = evaluation.one(ROLE, "webhooks-team-reconcile-role").inputs
    assert role["rules"][0]["resourceNames"] == ["alpha-dev"]


def test_without_a_receiver_the_job_registers_no_hooks_and_nothing_of_them_is_declared() -> None:
    evaluation = _evaluate([{"name": "alpha", "adminGroups": [ADMINS]}], operator=False)
    assert not [r.name for r in evaluation.resources if r.name.startswith("webhooks-")]
    assert "--webhook-base-url" not in _args(evaluation, JOB, "teams-ensure")
    assert "alpha-webhook-secret" not in _objects(evaluation, "teams-secrets")
    assert not [r.name for r in evaluation.of_type(ROLE_ASSIGNMENT) if "alpha-webhook" in r.name]


def test_without_teams_the_receiver_is_the_single_tenant_one() -> None:
    evaluation = evaluated(None)
    args = _args(evaluation, DEPLOYMENT, "webhooks-deployment")
    assert not [a for a in args if a.startswith("--team")]
    assert _objects(evaluation, "webhooks-webhook-receiver-secrets") == [cluster_layout.WEBHOOK_SIGNING_SECRET]
    assert not [r.name for r in evaluation.resources if "team-reconcile" in r.name]
