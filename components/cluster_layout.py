"""What in-cluster workloads need from Azure: their service accounts, identities and secrets.

One table, read by the Azure side (federated credentials, role assignments) and later by the
in-cluster components (which create the ServiceAccounts with the matching client-id annotation
and the SecretProviderClasses), so the two can never disagree about a namespace or a name.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

# Key Vault secret names (the vault is the only place their values live).
POSTGRES_ADMIN_PASSWORD: Final = "postgres-admin-password"
MLFLOW_ADMIN_PASSWORD: Final = "mlflow-admin-password"
GRAFANA_ADMIN_PASSWORD: Final = "grafana-admin-password"
GRAFANA_ADMIN_USER: Final = "grafana-admin-user"
"""Grafana's admin login; in the vault too because the chart reads user and password from one Secret."""
GRAFANA_ADMIN_LOGIN: Final = "admin"


def database_uri_secret(database: str) -> str:
    """`mlflow_registry` → `mlflow-registry-db-uri`."""
    return f"{database.replace('_', '-')}-db-uri"


AzureAccess = Literal["artifacts-write", "artifacts-read", "secrets"]
NamespaceSetting = Literal["mlflow", "models", "monitoring", "automation"]


@dataclass(frozen=True)
class WorkloadServiceAccount:
    """A Kubernetes service account federated with its own user-assigned identity."""

    key: str
    namespace: NamespaceSetting
    """Which namespace setting holds it (`mlflow` → `mlflowNamespace`)."""
    service_account: str
    access: AzureAccess
    secrets: tuple[str, ...]
    """Key Vault secrets it may read (one role assignment per secret)."""
    purpose: str


WORKLOAD_SERVICE_ACCOUNTS: tuple[WorkloadServiceAccount, ...] = (
    WorkloadServiceAccount(
        "mlflow-artifacts",
        "mlflow",
        "mlflow-artifacts",
        "artifacts-write",
        (),
        "MLflow artifacts server reads and writes blobs of the artifact container",
    ),
    WorkloadServiceAccount(
        "mlflow-server",
        "mlflow",
        "mlflow-server",
        "secrets",
        (
            database_uri_secret("mlflow"),
            database_uri_secret("mlflow_registry"),
            database_uri_secret("mlflow_auth"),
            MLFLOW_ADMIN_PASSWORD,
        ),
        "MLflow tracking, registry and migrations read database URIs and the admin password",
    ),
    WorkloadServiceAccount(
        "model-reader",
        "models",
        "model-storage-reader",
        "artifacts-read",
        (),
        "Seldon storage initializer reads model artifacts",
    ),
    WorkloadServiceAccount(
        "rollout-analyzer",
        "automation",
        "rollout-analyzer",
        "secrets",
        (MLFLOW_ADMIN_PASSWORD,),
        "Rollout analysis CronJob reads the MLflow credentials it writes decisions with",
    ),
    WorkloadServiceAccount(
        "grafana",
        "monitoring",
        "grafana",
        "secrets",
        (GRAFANA_ADMIN_USER, GRAFANA_ADMIN_PASSWORD),
        "Grafana reads its admin login and password",
    ),
)

MONITORING_NAMESPACE: Final = "monitoring"
AUTOMATION_NAMESPACE: Final = "mlops-system"
"""Platform automation: the rollout analysis CronJob and the Pulumi Kubernetes Operator's Stack."""

# Istio: the one ingress gateway MLflow, Seldon and Grafana are routed through.
ISTIO_NAMESPACE: Final = "istio-system"
PLATFORM_GATEWAY_NAME: Final = "platform-gateway"
PLATFORM_GATEWAY: Final = f"{ISTIO_NAMESPACE}/{PLATFORM_GATEWAY_NAME}"
SELDON_NAMESPACE: Final = "seldon-system"

# MLflow: one Deployment and Service per role; pods carry these labels and their metrics are
# scraped with the role copied into the `role` label, which every MLflow PromQL expression uses.
MLFLOW_ROLES: Final = ("tracking", "registry", "artifacts")
APP_NAME_LABEL: Final = "app.kubernetes.io/name"
COMPONENT_LABEL: Final = "app.kubernetes.io/component"
MLFLOW_ROLE_METRIC_LABEL: Final = "role"


def public_host(service: str, domain: str) -> str:
    """`mlflow` + `mlops.example.com` → `mlflow.mlops.example.com`."""
    return f"{service}.{domain}"
