"""Issue 14, the prod security baseline, on the program's own registrations (mock engine).

Audit trail, encryption at host, credential lifetime and rotation, Defender for Containers and
PostgreSQL Entra sign-in: what prod declares, what dev relaxes, and the stack policies that
catch a stack without them (compliant and violating runs of each).
"""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
import yaml

from components.azure.credential_rotation import SECONDS_PER_DAY, expiry_epoch
from harness.mock_engine import MOCK_NOW, Evaluation, evaluate
from harness.policy_check import load_pack_config, run_policies
from layout import cluster_layout, resource_types
from layout.audit import AUDIT_SOURCES
from layout.mlflow_server import PASSFILE_REFRESH_SECONDS
from policies.azure import AUDITED_TYPES, DIAGNOSTIC_SETTING, SECURITY_PRICING
from policies.kubernetes import containers, is_kubernetes_object
from policies.pack import BY_NAME
from settings import SettingsError, load_settings
from tests.conftest import evaluate_with
from tests.services.stack import committed_settings
from tests.test_settings_errors import MINIMAL

WORKSPACE = resource_types.LOG_ANALYTICS_WORKSPACE
POSTGRES = resource_types.POSTGRES_SERVER
SECRET = resource_types.KEY_VAULT_SECRET
PASSWORD = "random:index/randomPassword:RandomPassword"
ROTATING = resource_types.ROTATING


def _without(evaluation: Evaluation, type_token: str, name: str | None = None) -> Evaluation:
    kept = [r for r in evaluation.resources if not (r.type == type_token and (name is None or r.name == name))]
    assert len(kept) < len(evaluation.resources)
    return dataclasses.replace(evaluation, resources=kept)


def _violations(evaluation: Evaluation, policy: str, stack: str = "prod") -> list[str]:
    return [v.message for v in run_policies(evaluation, load_pack_config(stack), [BY_NAME[policy]])]


# --- audit trail -------------------------------------------------------------------------------


def test_every_audited_resource_sends_its_categories_to_the_workspace(stack: Evaluation) -> None:
    workspace = stack.one(WORKSPACE)
    settings = stack.of_type(DIAGNOSTIC_SETTING)
    audited = [r for r in stack.resources if r.type in AUDITED_TYPES]
    assert {AUDITED_TYPES[r.type] for r in audited} == set(AUDIT_SOURCES)
    for resource in audited:
        mine = [s for s in settings if resource.urn in s.dependencies]
        assert len(mine) == 1, resource.name
        setting = mine[0]
        # The engine creates it after its source and the workspace (ids flow through inputs).
        assert workspace.urn in setting.dependencies
        sent = {log["category"] for log in setting.inputs["logs"] if log["enabled"]}
        assert sent == set(AUDIT_SOURCES[AUDITED_TYPES[resource.type]].categories)
    assert len(settings) == len(audited)


def test_aks_audit_is_the_admin_audit_not_every_read(prod: Evaluation) -> None:
    aks = next(s for s in prod.of_type(DIAGNOSTIC_SETTING) if s.name == "audit-aks")
    categories = {log["category"] for log in aks.inputs["logs"]}
    assert {"kube-audit-admin", "guard", "cluster-autoscaler"} <= categories
    assert "kube-audit" not in categories  # every get/list/watch: an order of magnitude more volume
    assert aks.inputs["logAnalyticsDestinationType"] == "Dedicated"


def test_retention_and_cap_follow_the_stack(dev: Evaluation, prod: Evaluation) -> None:
    assert prod.one(WORKSPACE).inputs["retentionInDays"] == 90
    assert "workspaceCapping" not in prod.one(WORKSPACE).inputs  # prod never drops audit records
    assert dev.one(WORKSPACE).inputs["retentionInDays"] == 30
    assert dev.one(WORKSPACE).inputs["workspaceCapping"] == {"dailyQuotaGb": 1}


def test_audit_policy_names_the_resource_without_its_setting(prod: Evaluation) -> None:
    assert _violations(prod, "audit-diagnostic-settings") == []
    missing_vault = _without(prod, DIAGNOSTIC_SETTING, "audit-key-vault")
    assert _violations(missing_vault, "audit-diagnostic-settings") == [
        "Vault key-vault-vault sends no AuditEvent to a Log Analytics workspace"
    ]
    missing_blob = _without(prod, DIAGNOSTIC_SETTING, "audit-blob")
    assert _violations(missing_blob, "audit-diagnostic-settings") == [
        "BlobServiceProperties artifacts-blob-service sends no StorageRead, StorageWrite, StorageDelete "
        "to a Log Analytics workspace"
    ]


# --- dev's conveniences in a prod stack file ----------------------------------------------------


def test_a_prod_stack_file_with_a_dev_convenience_fails_the_preview_naming_it(tmp_path: Path) -> None:
    root = Path(__file__).resolve().parent.parent
    document = yaml.safe_load((root / "Pulumi.prod.yaml").read_text())
    document["config"]["mlops-platform:aksEncryptionAtHost"] = False
    document["config"]["mlops-platform:defenderForContainers"] = False
    modified = tmp_path / "Pulumi.prod.yaml"
    modified.write_text(yaml.safe_dump(document))
    snapshot = ("--registry-snapshot", str(root / "examples" / "registry-snapshot.json"))
    result = subprocess.run(
        [sys.executable, "-m", "mlopsctl", "preview", "--stack", "prod", "--stack-file", str(modified), *snapshot],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert result.returncode == 1, result.stderr
    assert "policy violations (3 mandatory, 0 advisory; levels from policies/config/prod.json):" in result.stdout
    lines = [" ".join(line.split()) for line in result.stdout.splitlines()]
    assert (
        "aks-encryption-at-host aks-cluster mandatory agentPoolProfiles[system]: enableEncryptionAtHost is "
        "False, must be True" in lines
    )
    assert (
        "aks-encryption-at-host aks-workload mandatory agent pool workload: enableEncryptionAtHost is False, "
        "must be True" in lines
    )
    assert any(line.startswith("defender-for-containers mlops-platform-prod mandatory no Defender") for line in lines)
    assert result.stdout.rstrip().endswith("result: FAILED")


# --- encryption at host, Defender, Entra --------------------------------------------------------


def test_prod_encrypts_every_pool_at_host_and_dev_does_not(dev: Evaluation, prod: Evaluation) -> None:
    for evaluation, expected in ((prod, True), (dev, False)):
        cluster = evaluation.one("azure-native:containerservice:ManagedCluster")
        pools = [
            *cluster.inputs["agentPoolProfiles"],
            *(p.inputs for p in evaluation.of_type("azure-native:containerservice:AgentPool")),
        ]
        assert pools and all(pool["enableEncryptionAtHost"] is expected for pool in pools)


def test_defender_for_containers_on_in_prod_only(dev: Evaluation, prod: Evaluation) -> None:
    plan = prod.one(SECURITY_PRICING)
    assert plan.inputs["pricingName"] == "Containers" and plan.inputs["pricingTier"] == "Standard"
    assert plan.inputs["scopeId"] == "/subscriptions/22222222-2222-4222-8222-222222222222"
    assert dev.of_type(SECURITY_PRICING) == []
    assert _violations(prod, "defender-for-containers") == []
    message = "no Defender for Containers plan (security Pricing `Containers`, tier Standard) on the subscription"
    assert _violations(_without(prod, SECURITY_PRICING), "defender-for-containers") == [message]
    registry = prod.one("azure-native:containerregistry:Registry")
    assert "policies" not in registry.inputs  # no quarantine: nothing would release the images


def test_postgres_entra_admin_group_keeps_password_sign_in(prod: Evaluation) -> None:
    server = prod.one(POSTGRES)
    assert server.inputs["authConfig"] == {
        "activeDirectoryAuth": "Enabled",
        "passwordAuth": "Enabled",
        "tenantId": "11111111-1111-4111-8111-111111111111",
    }
    admin = prod.one("azure-native:dbforpostgresql:Administrator")
    assert admin.inputs["objectId"] == "5f1c9a4e-2b7d-4c8e-9f3a-6d0e1b2c3a41"
    assert admin.inputs["principalType"] == "Group" and admin.inputs["principalName"] == "mlops-platform-admins"
    assert server.urn in admin.dependencies


def test_entra_admin_group_needs_both_keys() -> None:
    with pytest.raises(SettingsError, match="postgresEntraAdminGroupName"):
        load_settings({**MINIMAL, "postgresEntraAdminGroupObjectId": "5f1c9a4e-2b7d-4c8e-9f3a-6d0e1b2c3a41"})
    with pytest.raises(SettingsError, match="postgresEntraAdminGroupObjectId"):
        load_settings({**MINIMAL, "postgresEntraAdminGroupObjectId": "not-a-guid", "postgresEntraAdminGroupName": "x"})


def test_without_an_entra_group_the_server_keeps_password_only_and_policy_fails() -> None:
    def no_group(config: dict[str, str]) -> None:
        config["mlops-platform:postgresEntraAdminGroupObjectId"] = ""
        config["mlops-platform:postgresEntraAdminGroupName"] = ""

    evaluation = evaluate_with("prod", no_group)
    assert evaluation.error is None, evaluation.error
    assert evaluation.one(POSTGRES).inputs["authConfig"]["activeDirectoryAuth"] == "Disabled"
    assert evaluation.of_type("azure-native:dbforpostgresql:Administrator") == []
    assert _violations(evaluation, "postgres-entra-auth") == [
        "authConfig.activeDirectoryAuth is 'Disabled', must be Enabled (set postgresEntraAdminGroupObjectId)"
    ]


# --- credential lifetime and rotation -----------------------------------------------------------


def test_every_secret_has_a_content_type_and_expires_after_rotation_plus_grace(stack: Evaluation) -> None:
    rotation = MOCK_NOW + timedelta(days=90)
    expected = int(rotation.timestamp()) + 14 * SECONDS_PER_DAY
    secrets = stack.of_type(SECRET)
    # 8 platform credentials, the rollout hook signing key, the models stack passphrase, the webhook
    # signing secret and encryption key, the models reader's password; four per team (docs/teams.md)
    assert len(secrets) == 13 + 4 * len(committed_settings(stack.stack).teams)
    for secret in secrets:
        properties = secret.inputs["properties"]
        assert properties["contentType"] in {"password", "username", "key", "connection-string"}, secret.name
        assert properties["attributes"] == {"enabled": True, "expires": expected}, secret.name


def test_csi_rotation_is_on_so_mounted_files_follow_the_vault(stack: Evaluation) -> None:
    cluster = stack.one("azure-native:containerservice:ManagedCluster")
    addon = cluster.inputs["addonProfiles"]["azureKeyvaultSecretsProvider"]
    assert addon == {"enabled": True, "config": {"enableSecretRotation": "true", "rotationPollInterval": "2m"}}


def test_expiry_epoch() -> None:
    assert expiry_epoch("2026-04-05T09:00:00Z", 14) == 1775379600 + 14 * SECONDS_PER_DAY


def test_advancing_the_keeper_rotates_the_credentials_and_nothing_else() -> None:
    """Two runs a lifetime apart: the keeper is recreated at the new time; the diff of every
    recorded input is exactly the rotated passwords and what carries them."""
    before = evaluate("prod")
    after = evaluate("prod", now=MOCK_NOW + timedelta(days=91))
    assert before.error is None and after.error is None
    old, new = before.by_urn(), after.by_urn()
    assert set(old) == set(new)
    assert before.one(ROTATING).inputs == after.one(ROTATING).inputs == {"rotationDays": 90}

    changed = {old[urn].name for urn in old if old[urn].inputs != new[urn].inputs}
    teams = committed_settings("prod").teams
    rotated_passwords = {
        "postgres-admin-password",
        "key-vault-mlflow-flask-secret-key",
        "key-vault-rollout-hook-signing-key",
        # the teams' MLflow user passwords (docs/teams.md)
        *(
            f"team-{t.name}-{user}-password"
            for t in committed_settings("prod").teams
            for user in ("automation", "reader")
        ),
    }
    server_pods = {"mlflow-tracking", "mlflow-registry", "mlflow-artifacts"}
    assert changed == {
        *rotated_passwords,
        "postgres-server",  # administratorLoginPassword: the new value reaches PostgreSQL
        *(secret.name for secret in before.of_type(SECRET)),  # new value and/or new expiry
        # The server Deployments roll (their generation annotation), and each new pod's CSI mount
        # fetches the new values. Nothing else in the cluster changes: no Secret in the namespace
        # carries a rotated value (pods read mounted files, the launcher keeps the database
        # password file current), so SecretProviderClasses, the migration Job and the PodMonitors
        # stay as they are.
        *server_pods,
        # With teams, the ensure Job reruns (its credentials-generation annotation) to reset the
        # teams' rotated MLflow passwords.
        *({"teams-ensure"} if teams else set()),
    }
    for evaluation in (before, after):
        # No workload of the program takes a Secret through its environment.
        for workload in evaluation.resources:
            for label, container in containers(workload.inputs) if is_kubernetes_object(workload.type) else ():
                assert not [e for e in container.get("env") or [] if "secretKeyRef" in e.get("valueFrom", {})], label
                assert not [e for e in container.get("envFrom") or [] if "secretRef" in e], label
        # What is synced into a Kubernetes Secret at all: the metrics password, which is not rotated.
        synced = [
            data["objectName"]
            for provider in evaluation.of_type("kubernetes:secrets-store.csi.x-k8s.io/v1:SecretProviderClass")
            if provider.name.startswith("mlflow-secret-provider")
            for objects in provider.inputs["spec"].get("secretObjects", [])
            for data in objects["data"]
        ]
        assert synced == [cluster_layout.MLFLOW_ADMIN_PASSWORD]
        tracking = {r.name: r for r in evaluation.resources}["mlflow-tracking"]
        script = tracking.inputs["spec"]["template"]["spec"]["containers"][0]["command"][2]
        assert f"/mnt/secrets-store/{cluster_layout.POSTGRES_ADMIN_PASSWORD}" in script
        assert f"while sleep {PASSFILE_REFRESH_SECONDS}" in script  # running pods follow the mounted file
    assert (
        after.one(POSTGRES).inputs["administratorLoginPassword"]
        != before.one(POSTGRES).inputs["administratorLoginPassword"]
    )
    for name in server_pods:
        generations = [
            {r.name: r for r in evaluation.resources}[name].inputs["spec"]["template"]["metadata"]["annotations"]
            for evaluation in (before, after)
        ]
        assert generations == [
            {"mlops.io/credentials-generation": "2026-01-05T09:00:00Z"},
            {"mlops.io/credentials-generation": "2026-04-06T09:00:00Z"},
        ]

    def value(evaluation: Evaluation, name: str) -> str:
        return str(evaluation.one(SECRET, name).inputs["properties"]["value"])

    new_value = {s.name for s in before.of_type(SECRET) if value(before, s.name) != value(after, s.name)}
    assert new_value == {
        "key-vault-postgres-admin-password",
        "key-vault-mlflow-flask-secret-key",
        "key-vault-rollout-hook-signing-key",
        "key-vault-mlflow-db-uri",
        "key-vault-mlflow-registry-db-uri",
        "key-vault-mlflow-auth-db-uri",
        *(f"team-{t.name}-{user}-password" for t in teams for user in ("automation", "reader")),
    }
    # Bootstrap passwords (stored by MLflow and Grafana at first start) keep their value.
    for password in before.of_type(PASSWORD):
        assert ("keepers" in password.inputs) == (password.name in rotated_passwords), password.name
