"""Every policy of the pack against a compliant and a violating resource.

Azure resources are taken from the prod evaluation (the program's own registrations) and
mutated; in-cluster resources come from tests/policy_shapes.py, in the shapes pulumi-kubernetes
registers, with numbers as the engine passes them (floats).
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from pulumi_policy import (
    PolicyCustomTimeouts,
    PolicyResourceOptions,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    Severity,
)

from harness.mock_engine import Evaluation, RecordedResource
from layout import resource_types
from policies import framework
from policies.pack import BY_NAME, POLICIES
from tests.policy_shapes import shape

Inputs = dict[str, Any]


def engine_numbers(value: Any) -> Any:
    """Numbers as the engine hands them to analyzers: every int a float (booleans stay)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return float(value)
    if isinstance(value, dict):
        return {k: engine_numbers(v) for k, v in value.items()}
    if isinstance(value, list):
        return [engine_numbers(v) for v in value]
    return value


def run_policy(
    name: str, type_token: str, inputs: Inputs, *, protect: bool = False, config: dict[str, Any] | None = None
) -> list[str]:
    """The messages one policy reports for one resource."""
    messages: list[str] = []
    options = PolicyResourceOptions(protect, [], None, [], PolicyCustomTimeouts(0, 0, 0), [], None)
    args = ResourceValidationArgs(type_token, inputs, "urn:test", "subject", options, None, config or {})

    def report(message: str, _urn: str | None = None) -> None:
        messages.append(message)

    policy = BY_NAME[name]
    assert isinstance(policy, ResourceValidationPolicy)
    policy.validate(args, report)
    return messages


@dataclass(frozen=True)
class Subject:
    type_token: str
    inputs: Inputs
    protect: bool = False


Source = Callable[[Evaluation], Subject]


def recorded(type_token: str, name: str | None = None) -> Source:
    def source(prod: Evaluation) -> Subject:
        resource: RecordedResource = prod.one(type_token, name)
        return Subject(type_token, copy.deepcopy(resource.inputs), resource.protect)

    return source


def in_cluster(kind: str) -> Source:
    def source(_: Evaluation) -> Subject:
        type_token, inputs = shape(kind)
        return Subject(type_token, engine_numbers(inputs))

    return source


def _path(path: str) -> list[str | int]:
    """`a.0.b[mlops.io/run-id]` → ["a", 0, "b", "mlops.io/run-id"] (brackets for keys with dots)."""
    parts: list[str | int] = []
    for bracketed, plain in re.findall(r"\[([^\]]+)\]|([^.\[\]]+)", path):
        parts.append(bracketed or (int(plain) if plain.isdigit() else plain))
    return parts


def setting(path: str, value: Any) -> Callable[[Inputs], None]:
    """A mutation: set (or with value `...`, delete) a dotted path; numbers index lists."""

    def mutate(inputs: Inputs) -> None:
        *parents, last = _path(path)
        target: Any = inputs
        for part in parents:
            target = target[part]
        if value is ...:
            del target[last]
        else:
            target[last] = value

    return mutate


@dataclass(frozen=True)
class Case:
    policy: str
    source: Source
    mutate: Callable[[Inputs], None]
    message: str
    config: dict[str, Any] | None = None
    unprotect: bool = False


SA, BLOB, CONTAINER = (
    "azure-native:storage:StorageAccount",
    "azure-native:storage:BlobServiceProperties",
    "azure-native:storage:BlobContainer",
)
VAULT, PG, PG_CONFIG = (
    "azure-native:keyvault:Vault",
    "azure-native:dbforpostgresql:Server",
    "azure-native:dbforpostgresql:Configuration",
)
AKS, POOL = "azure-native:containerservice:ManagedCluster", "azure-native:containerservice:AgentPool"
SECRET, REGISTRY = "azure-native:keyvault:Secret", "azure-native:containerregistry:Registry"
WORKSPACE = resource_types.LOG_ANALYTICS_WORKSPACE
K8S_JOB = "kubernetes:batch/v1:Job"
POD = "spec.template.spec"
MAIN = f"{POD}.containers.0"
CANARY = "spec.predictors.1"

CASES = [
    Case(
        "storage-https-only",
        recorded(SA),
        setting("enableHttpsTrafficOnly", False),
        "enableHttpsTrafficOnly is False, must be True",
    ),
    Case(
        "storage-min-tls-1-2",
        recorded(SA),
        setting("minimumTlsVersion", "TLS1_0"),
        "minimumTlsVersion is 'TLS1_0', must be TLS1_2 or later",
    ),
    Case(
        "storage-no-public-blob-access",
        recorded(SA),
        setting("allowBlobPublicAccess", True),
        "allowBlobPublicAccess is True, must be False",
    ),
    Case(
        "storage-no-public-blob-access",
        recorded(CONTAINER),
        setting("publicAccess", "Blob"),
        "publicAccess is 'Blob', must be None",
    ),
    Case(
        "storage-shared-key-disabled",
        recorded(SA),
        setting("allowSharedKeyAccess", True),
        "allowSharedKeyAccess is True, must be False",
    ),
    Case(
        "storage-network-deny-by-default",
        recorded(SA),
        setting("networkRuleSet.defaultAction", "Allow"),
        "networkRuleSet.defaultAction is 'Allow', must be Deny",
    ),
    Case(
        "storage-blob-versioning",
        recorded(BLOB),
        setting("isVersioningEnabled", False),
        "isVersioningEnabled is False, must be True",
    ),
    Case(
        "storage-soft-delete",
        recorded(BLOB),
        setting("deleteRetentionPolicy.enabled", False),
        "deleteRetentionPolicy.enabled is False, must be True",
    ),
    Case(
        "storage-soft-delete",
        recorded(BLOB),
        setting("containerDeleteRetentionPolicy.days", 1.0),
        "containerDeleteRetentionPolicy.days is 1, must be at least 7",
    ),
    Case(
        "keyvault-rbac-authorization",
        recorded(VAULT),
        setting("properties.enableRbacAuthorization", False),
        "properties.enableRbacAuthorization is False, must be True",
    ),
    Case(
        "keyvault-soft-delete",
        recorded(VAULT),
        setting("properties.softDeleteRetentionInDays", 3.0),
        "properties.softDeleteRetentionInDays is 3, must be 7-90",
    ),
    Case(
        "keyvault-purge-protection",
        recorded(VAULT),
        setting("properties.enablePurgeProtection", ...),
        "properties.enablePurgeProtection is absent, must be True",
    ),
    Case(
        "keyvault-network-deny-by-default",
        recorded(VAULT),
        setting("properties.networkAcls.defaultAction", "Allow"),
        "properties.networkAcls.defaultAction is 'Allow', must be Deny",
    ),
    Case(
        "postgres-tls-required",
        recorded(PG_CONFIG, "postgres-require-secure-transport"),
        setting("value", "OFF"),
        "server parameter require_secure_transport is 'OFF', must be ON",
    ),
    Case(
        "postgres-tls-required",
        recorded(PG_CONFIG, "postgres-ssl-min-protocol-version"),
        setting("value", "TLSv1.1"),
        "server parameter ssl_min_protocol_version is 'TLSv1.1', must be TLSv1.2 or TLSv1.3",
    ),
    Case(
        "postgres-backup-retention",
        recorded(PG),
        setting("backup.backupRetentionDays", 7.0),
        "backup.backupRetentionDays is 7, must be at least 30",
        config={"minimumDays": 30},
    ),
    Case(
        "postgres-high-availability",
        recorded(PG),
        setting("highAvailability.mode", "Disabled"),
        "highAvailability.mode is 'Disabled', must be ZoneRedundant",
    ),
    Case(
        "postgres-geo-redundant-backup",
        recorded(PG),
        setting("backup.geoRedundantBackup", "Disabled"),
        "backup.geoRedundantBackup is 'Disabled', must be Enabled",
    ),
    Case(
        "postgres-no-public-network",
        recorded(PG),
        setting("network.publicNetworkAccess", "Enabled"),
        "network.publicNetworkAccess is 'Enabled', must be Disabled",
    ),
    Case(
        "aks-entra-rbac",
        recorded(AKS),
        setting("aadProfile.enableAzureRBAC", False),
        "aadProfile.enableAzureRBAC is False, must be True",
    ),
    Case("aks-entra-rbac", recorded(AKS), setting("enableRBAC", ...), "enableRBAC is absent, must be True"),
    Case(
        "aks-local-accounts-disabled",
        recorded(AKS),
        setting("disableLocalAccounts", False),
        "disableLocalAccounts is False, must be True",
    ),
    Case(
        "aks-workload-identity",
        recorded(AKS),
        setting("securityProfile.workloadIdentity.enabled", False),
        "securityProfile.workloadIdentity.enabled is False, must be True",
    ),
    Case(
        "aks-network-policy",
        recorded(AKS),
        setting("networkProfile.networkPolicy", "none"),
        "networkProfile.networkPolicy is 'none', must be cilium, calico or azure",
    ),
    Case(
        "aks-autoscaling-bounds",
        recorded(POOL),
        setting("minCount", 20.0),
        "agent pool workload: minCount 20 is above maxCount 15",
    ),
    Case(
        "aks-autoscaling-bounds",
        recorded(AKS),
        setting("agentPoolProfiles.0.enableAutoScaling", False),
        "agentPoolProfiles[system]: enableAutoScaling is False, must be True",
    ),
    Case(
        "aks-pinned-version",
        recorded(AKS),
        setting("kubernetesVersion", "1.34"),
        "kubernetesVersion is '1.34', must be a patch release such as 1.34.2",
    ),
    Case(
        "aks-pinned-version",
        recorded(AKS),
        setting("autoUpgradeProfile.upgradeChannel", "stable"),
        "autoUpgradeProfile.upgradeChannel is 'stable', must be none",
    ),
    Case(
        "aks-encryption-at-host",
        recorded(AKS),
        setting("agentPoolProfiles.0.enableEncryptionAtHost", False),
        "agentPoolProfiles[system]: enableEncryptionAtHost is False, must be True",
    ),
    Case(
        "aks-encryption-at-host",
        recorded(POOL),
        setting("enableEncryptionAtHost", ...),
        "agent pool workload: enableEncryptionAtHost is absent, must be True",
    ),
    Case(
        "aks-api-server-restricted",
        recorded(AKS),
        setting("apiServerAccessProfile.authorizedIPRanges", []),
        "authorizedIPRanges is empty and the cluster is not private",
    ),
    # Prod is VNet-integrated (compliant with its ranges); integration alone leaves the public endpoint open.
    Case(
        "aks-api-server-restricted",
        recorded(AKS),
        setting("apiServerAccessProfile.authorizedIPRanges", ...),
        "VNet integration keeps the public endpoint while public access is on",
    ),
    Case(
        "aks-api-server-restricted",
        recorded(AKS),
        setting("apiServerAccessProfile.subnetId", ...),
        "enableVnetIntegration is True without subnetId",
    ),
    Case(
        "storage-zone-redundant",
        recorded(SA),
        setting("sku.name", "Standard_LRS"),
        "sku.name is 'Standard_LRS': locally redundant storage",
    ),
    Case(
        "keyvault-secret-lifetime",
        recorded(SECRET, "key-vault-postgres-admin-password"),
        setting("properties.attributes.expires", ...),
        "properties.attributes.expires is absent, must be the expiry in Unix seconds",
    ),
    Case(
        "keyvault-secret-lifetime",
        recorded(SECRET, "key-vault-mlflow-db-uri"),
        setting("properties.contentType", " "),
        "properties.contentType is absent",
    ),
    Case(
        "log-analytics-retention",
        recorded(WORKSPACE),
        setting("retentionInDays", 60.0),
        "retentionInDays is 60, must be at least 90",
        config={"minimumDays": 90},
    ),
    Case(
        "postgres-entra-auth",
        recorded(PG),
        setting("authConfig.activeDirectoryAuth", "Disabled"),
        "authConfig.activeDirectoryAuth is 'Disabled', must be Enabled",
    ),
    Case(
        "registry-no-quarantine",
        recorded(REGISTRY),
        setting("policies", {"quarantinePolicy": {"status": "enabled"}}),
        "policies.quarantinePolicy.status is 'enabled'",
    ),
    Case(
        "aks-availability-zones",
        recorded(POOL),
        setting("availabilityZones", []),
        "agent pool workload: availabilityZones is [], must span at least 2 zones",
    ),
    Case(
        "azure-required-tags",
        recorded("azure-native:resources:ResourceGroup"),
        setting("tags.owner", ...),
        "tags lack owner",
    ),
    Case(
        "azure-required-tags",
        recorded("azure-native:network:VirtualNetwork"),
        setting("tags", ...),
        "tags lack environment, owner, cost-center, managed-by, project",
    ),
    Case("stateful-resources-protected", recorded(VAULT), lambda _: None, "protect is off", unprotect=True),
    Case(
        "k8s-requests-and-limits",
        in_cluster("deployment"),
        setting(f"{MAIN}.resources.limits", ...),
        "container mlflow: resources lack limits.cpu, limits.memory",
    ),
    Case(
        "k8s-requests-and-limits",
        in_cluster("deployment"),
        setting(f"{MAIN}.resources.limits.cpu", ...),
        "container mlflow: resources lack limits.cpu",
    ),
    Case(
        "k8s-requests-and-limits",
        in_cluster("job"),
        setting(f"{POD}.containers.0.resources", ...),
        "container migrate: resources lack requests.cpu, requests.memory, limits.cpu, limits.memory",
    ),
    # The program's own migration Job: its init containers count too (checkov CKV_K8S_11).
    Case(
        "k8s-requests-and-limits",
        recorded(K8S_JOB, "mlflow-migrate"),
        setting(f"{POD}.initContainers.0.resources.limits.cpu", ...),
        "init container migrate-tracking: resources lack limits.cpu",
    ),
    Case(
        "k8s-no-secret-env",
        in_cluster("deployment"),
        setting(f"{MAIN}.env.1", {"name": "PGPASSWORD", "valueFrom": {"secretKeyRef": {"name": "db", "key": "pw"}}}),
        "container mlflow: env PGPASSWORD comes from a Secret",
    ),
    Case(
        "k8s-no-secret-env",
        in_cluster("job"),
        setting(f"{POD}.containers.0.envFrom", [{"secretRef": {"name": "mlflow-server-secrets"}}]),
        "container migrate: envFrom imports Secret mlflow-server-secrets",
    ),
    # The program's own MLflow server and gc CronJob pass as recorded, and fail with the Secret
    # reference they carried before the launcher read mounted files.
    Case(
        "k8s-no-secret-env",
        recorded("kubernetes:apps/v1:Deployment", "mlflow-tracking"),
        setting(
            f"{MAIN}.env.0",
            {"name": "MLFLOW_FLASK_SERVER_SECRET_KEY", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}},
        ),
        "container mlflow: env MLFLOW_FLASK_SERVER_SECRET_KEY comes from a Secret",
    ),
    Case(
        "k8s-no-secret-env",
        recorded("kubernetes:batch/v1:CronJob", "mlflow-gc"),
        setting(
            "spec.jobTemplate.spec.template.spec.containers.0.env.0",
            {"name": "MLFLOW_TRACKING_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}},
        ),
        "container gc: env MLFLOW_TRACKING_PASSWORD comes from a Secret",
    ),
    Case(
        "k8s-pinned-images",
        in_cluster("deployment"),
        setting(f"{MAIN}.image", "mlflow:latest"),
        "container mlflow: image 'mlflow:latest' uses the mutable tag latest",
    ),
    Case(
        "k8s-pinned-images",
        in_cluster("job"),
        setting(f"{POD}.containers.0.image", "registry:5000/mlflow"),
        "container migrate: image 'registry:5000/mlflow' has no tag",
    ),
    Case(
        "k8s-pinned-images",
        in_cluster("deployment"),
        setting(f"{MAIN}.image", "mlflow:"),
        "container mlflow: image 'mlflow:' has an empty tag",
    ),
    Case(
        "k8s-image-digest",
        in_cluster("deployment"),
        setting(f"{MAIN}.image", "mlopsprodacr.azurecr.io/mlops/mlflow-server:3.17.2-1"),
        "container mlflow: image 'mlopsprodacr.azurecr.io/mlops/mlflow-server:3.17.2-1' is not pinned by digest",
    ),
    Case(
        "k8s-image-digest",
        in_cluster("job"),
        setting(f"{POD}.containers.0.image", "mlops/mlflow-server@sha256:" + "ab" * 32),
        "container migrate: image 'mlops/mlflow-server@sha256:",
    ),
    Case(
        "k8s-image-digest",
        in_cluster("deployment"),
        setting(f"{MAIN}.imagePullPolicy", ...),
        "container mlflow: imagePullPolicy is not set",
    ),
    Case(
        "k8s-image-digest",
        in_cluster("job"),
        setting(f"{POD}.containers.0.imagePullPolicy", "Always"),
        "container migrate: imagePullPolicy is 'Always'; a digest never changes, use 'IfNotPresent'",
    ),
    Case(
        "k8s-run-as-non-root",
        in_cluster("deployment"),
        setting(f"{POD}.securityContext.runAsNonRoot", ...),
        "container mlflow: runAsNonRoot is not True on the container or the pod",
    ),
    Case(
        "k8s-run-as-non-root",
        in_cluster("deployment"),
        setting(f"{MAIN}.securityContext.runAsUser", 0.0),
        "container mlflow: runAsUser is 0 (root)",
    ),
    Case(
        "k8s-no-privilege-escalation",
        in_cluster("deployment"),
        setting(f"{MAIN}.securityContext.allowPrivilegeEscalation", True),
        "container mlflow: securityContext.allowPrivilegeEscalation is True, must be False",
    ),
    Case(
        "k8s-no-privileged-or-host-namespaces",
        in_cluster("deployment"),
        setting(f"{POD}.hostNetwork", True),
        "pod hostNetwork is True",
    ),
    Case(
        "k8s-no-privileged-or-host-namespaces",
        in_cluster("job"),
        setting(f"{POD}.containers.0.securityContext.privileged", True),
        "container migrate: securityContext.privileged is True",
    ),
    Case(
        "k8s-probes",
        in_cluster("deployment"),
        setting(f"{MAIN}.livenessProbe", ...),
        "container mlflow: no livenessProbe",
    ),
    Case(
        "k8s-no-default-namespace",
        in_cluster("deployment"),
        setting("metadata.namespace", "default"),
        "namespace is 'default'",
    ),
    Case("k8s-no-default-namespace", in_cluster("release"), setting("namespace", ...), "no namespace set"),
    Case(
        "helm-release-pinned",
        in_cluster("release"),
        setting("version", ""),
        "chart 'seldon-core-operator' has no version",
    ),
    Case(
        "helm-release-pinned",
        in_cluster("release"),
        setting("version", "^1.17"),
        "chart 'seldon-core-operator' version '^1.17' is not an exact version",
    ),
    Case(
        "helm-release-pinned",
        in_cluster("release"),
        setting("repositoryOpts", ...),
        "chart 'seldon-core-operator' has no repositoryOpts.repo",
    ),
    Case(
        "seldon-traffic-weights",
        in_cluster("seldon"),
        setting(f"{CANARY}.traffic", 150.0),
        "predictor canary: traffic 150 is outside 0-100",
    ),
    Case(
        "seldon-traffic-weights",
        in_cluster("seldon"),
        setting(f"{CANARY}.traffic", 12.5),
        "predictor canary: traffic 12.5 is not an integer",
    ),
    Case(
        "seldon-traffic-weights",
        in_cluster("seldon"),
        setting(f"{CANARY}.traffic", 20.0),
        "traffic weights add up to 110, not 100 (stable=90, canary=20)",
    ),
    Case(
        "seldon-lineage-annotations",
        in_cluster("seldon"),
        setting(f"{CANARY}.annotations[mlops.io/run-id]", ...),
        "predictor canary: annotations lack mlops.io/run-id",
    ),
    Case(
        "seldon-physical-model-uri",
        in_cluster("seldon"),
        setting(f"{CANARY}.graph.modelUri", "models:/fraud-detector/7"),
        "predictor canary node model: modelUri 'models:/fraud-detector/7' is a registry or local reference",
    ),
    Case(
        "seldon-physical-model-uri",
        in_cluster("seldon"),
        setting(f"{CANARY}.graph.modelUri", "mlflow-artifacts:/1/m-abc/artifacts"),
        "is a registry or local reference (mlflow-artifacts:)",
    ),
]


def _id(case: Case) -> str:
    return f"{case.policy}:{case.message[:40]}"


@pytest.mark.parametrize("case", CASES, ids=_id)
def test_policy_passes_the_compliant_resource_and_names_the_violation(case: Case, prod: Evaluation) -> None:
    subject = case.source(prod)
    assert (
        run_policy(case.policy, subject.type_token, subject.inputs, protect=subject.protect, config=case.config) == []
    )
    broken = copy.deepcopy(subject.inputs)
    case.mutate(broken)
    protect = subject.protect and not case.unprotect
    messages = run_policy(case.policy, subject.type_token, broken, protect=protect, config=case.config)
    assert messages and any(case.message in message for message in messages), messages


def test_every_policy_is_tested_and_documented() -> None:
    assert len(POLICIES) >= 25
    # Stack policies are tested on whole evaluations: tests/test_policy_preview.py (credential
    # outputs), tests/test_security_baseline.py (audit trail, Defender) and tests/test_teams_platform.py (teams).
    stack_policies = {"stack-credential-outputs-secret", "audit-diagnostic-settings", "defender-for-containers"}
    stack_policies |= {"team-namespace-walls", "team-stack-confined", "team-reader-abac", "team-namespace-shared"}
    assert {case.policy for case in CASES} | stack_policies == set(BY_NAME)
    for policy in POLICIES:
        assert policy.description.endswith("."), policy.name
        assert isinstance(policy.severity, Severity), policy.name
        assert policy.remediation_steps and len(policy.remediation_steps) > 20, policy.name
        assert policy.tags, policy.name


def test_mutation_paths() -> None:
    assert _path("spec.predictors.1.annotations[mlops.io/run-id]") == [
        "spec",
        "predictors",
        1,
        "annotations",
        "mlops.io/run-id",
    ]


def test_cluster_scoped_objects_need_no_namespace() -> None:
    namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "models"}}
    assert run_policy("k8s-no-default-namespace", "kubernetes:core/v1:Namespace", namespace) == []
    service = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "mlflow"}, "spec": {}}
    assert run_policy("k8s-no-default-namespace", "kubernetes:core/v1:Service", service) == [
        "no namespace set: the object would land in the provider's default namespace"
    ]


def test_shadow_predictors_carry_no_weight() -> None:
    type_token, seldon = shape("seldon")
    predictors = seldon["spec"]["predictors"]
    predictors[0]["traffic"] = 100.0
    predictors[1].update(traffic=0.0, shadow=True)
    assert run_policy("seldon-traffic-weights", type_token, seldon) == []


def test_policy_kinds_and_tags() -> None:
    cost = {p.name for p in POLICIES if framework.COST in (p.tags or [])}
    prod_only = {p.name for p in POLICIES if framework.PROD_ONLY in (p.tags or [])}
    assert cost == {"postgres-high-availability", "postgres-geo-redundant-backup", "aks-availability-zones"}
    assert "keyvault-purge-protection" in prod_only and not cost & prod_only


def test_probes_exemption_needs_a_reason() -> None:
    type_token, deployment = shape("deployment")
    for container in deployment["spec"]["template"]["spec"]["containers"]:
        container.pop("livenessProbe", None)
        container.pop("readinessProbe", None)
    assert run_policy("k8s-probes", type_token, deployment)
    deployment["metadata"]["annotations"] = {"policy.mlops.io/no-probes": " "}
    assert run_policy("k8s-probes", type_token, deployment), "a blank reason is no exemption"
    deployment["metadata"]["annotations"] = {"policy.mlops.io/no-probes": "pause container holding a CSI mount"}
    assert run_policy("k8s-probes", type_token, deployment) == []
