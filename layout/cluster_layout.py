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
MLFLOW_FLASK_SECRET_KEY: Final = "mlflow-flask-secret-key"
ROLLOUT_HOOK_SIGNING_KEY: Final = "rollout-hook-signing-key"
"""HMAC key of the rollout event hooks (`X-Mlops-Signature`); hook receivers read it from the vault."""
"""Static key of the basic-auth app's CSRF protection, the same in every MLflow pod."""
MODELS_STACK_PASSPHRASE: Final = "models-stack-passphrase"
"""`PULUMI_CONFIG_PASSPHRASE` of the models stack's secrets provider, for the operator's workspace."""
MLFLOW_WEBHOOK_ENCRYPTION_KEY: Final = "mlflow-webhook-encryption-key"
"""Fernet key (32 url-safe base64 bytes) MLflow encrypts stored webhook secrets with: one key for
every server process, or each process invents its own and stored secrets stop decrypting."""
MODELS_READER_PASSWORD: Final = "mlflow-models-reader-password"
"""Password of the models stack's read-only MLflow user (`MODELS_READER_USER`): the operator's
workspace reads the registry with it, never with the admin's."""
MODELS_READER_USER: Final = "models-reader"
"""The MLflow user `mlopsctl registry ensure-reader` keeps with READ on the managed models only."""
WEBHOOK_SIGNING_SECRET: Final = "mlflow-webhook-signing-secret"
"""HMAC secret of the platform's registry webhook: MLflow signs with it, the receiver verifies."""

# What an MLflow server pod (any role) reads from the vault, as mounted files: the database
# password (the store URIs carry no password; libpq reads the password file the launcher of
# layout/mlflow_server.py writes from it), the bootstrap admin password and the CSRF key of the
# basic-auth app. The roles with the registry store (tracking, registry) also read
# the webhook encryption key.
MLFLOW_SERVER_SECRETS: Final = (POSTGRES_ADMIN_PASSWORD, MLFLOW_ADMIN_PASSWORD, MLFLOW_FLASK_SECRET_KEY)
MLFLOW_REGISTRY_SECRETS: Final = (*MLFLOW_SERVER_SECRETS, MLFLOW_WEBHOOK_ENCRYPTION_KEY)


def database_uri_secret(database: str) -> str:
    """`mlflow_registry` → `mlflow-registry-db-uri`."""
    return f"{database.replace('_', '-')}-db-uri"


AzureAccess = Literal["artifacts-write", "artifacts-read", "secrets", "dns-zone"]
NamespaceSetting = Literal["mlflow", "models", "monitoring", "automation", "ml-jobs", "cert-manager"]


@dataclass(frozen=True)
class WorkloadServiceAccount:
    """A Kubernetes service account federated with its own user-assigned identity."""

    key: str
    namespace: NamespaceSetting
    """Which namespace setting holds it (`mlflow` → `mlflowNamespace`, `ml-jobs` → `mlJobsNamespace`)."""
    service_account: str
    access: AzureAccess
    secrets: tuple[str, ...]
    """Key Vault secrets it may read (one role assignment per secret)."""
    purpose: str


WORKLOAD_SERVICE_ACCOUNTS: tuple[WorkloadServiceAccount, ...] = (
    WorkloadServiceAccount(
        "cert-manager",
        "cert-manager",
        "cert-manager",
        "dns-zone",
        (),
        "cert-manager writes the ACME DNS-01 challenge records of the gateway certificate in the public zone",
    ),
    WorkloadServiceAccount(
        "mlflow-artifacts",
        "mlflow",
        "mlflow-artifacts",
        "artifacts-write",
        MLFLOW_SERVER_SECRETS,
        "MLflow artifacts server reads and writes blobs of the artifact container (and, like every "
        "MLflow role, reads the database password, admin password and CSRF key for basic-auth)",
    ),
    WorkloadServiceAccount(
        "mlflow-server",
        "mlflow",
        "mlflow-server",
        "secrets",
        MLFLOW_REGISTRY_SECRETS,
        "MLflow tracking, registry and migrations read the database password, admin password, CSRF key "
        "and the webhook-secret encryption key",
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
        (MLFLOW_ADMIN_PASSWORD, ROLLOUT_HOOK_SIGNING_KEY),
        "Rollout analysis CronJob reads the MLflow credentials it writes decisions with, and the key it "
        "signs event hooks with",
    ),
    WorkloadServiceAccount(
        "models-deployer",
        "automation",
        "models-deployer",
        "secrets",
        # The read-only models reader's password, never the MLflow admin's.
        (MODELS_READER_PASSWORD, MODELS_STACK_PASSPHRASE),
        "The Pulumi Kubernetes Operator's workspace running the models stack reads the registry "
        "credentials and the stack passphrase (no other Azure role; its Kubernetes rights end at the "
        "models namespace)",
    ),
    WorkloadServiceAccount(
        "models-reader-registrar",
        "automation",
        "models-reader-registrar",
        "secrets",
        (MODELS_READER_PASSWORD, MLFLOW_ADMIN_PASSWORD),
        "Job `mlopsctl registry ensure-reader` keeps the models reader's MLflow user, password and grants "
        "(user and grant APIs are admin-only in MLflow)",
    ),
    WorkloadServiceAccount(
        "webhook-receiver",
        "automation",
        "webhook-receiver",
        "secrets",
        (WEBHOOK_SIGNING_SECRET,),
        "Registry webhook receiver verifies deliveries with the signing secret",
    ),
    WorkloadServiceAccount(
        "webhook-registrar",
        "automation",
        "webhook-registrar",
        "secrets",
        (WEBHOOK_SIGNING_SECRET, MLFLOW_ADMIN_PASSWORD),
        "Job `mlopsctl webhook ensure` registers the webhook (webhook APIs are admin-only in MLflow)",
    ),
    WorkloadServiceAccount(
        "grafana",
        "monitoring",
        "grafana",
        "secrets",
        (GRAFANA_ADMIN_USER, GRAFANA_ADMIN_PASSWORD),
        "Grafana reads its admin login and password",
    ),
    WorkloadServiceAccount(
        "ml-jobs",
        "ml-jobs",
        "mlflow-job-runner",
        "artifacts-read",
        (),
        "MLflow Projects jobs (`mlflow run --backend kubernetes`) read artifacts directly; "
        "they write through the MLflow artifacts proxy",
    ),
)


def workload_service_account(key: str) -> WorkloadServiceAccount:
    """The table's entry for `key` (`model-reader`, `models-deployer`, ...)."""
    for account in WORKLOAD_SERVICE_ACCOUNTS:
        if account.key == key:
            return account
    raise KeyError(f"no workload service account {key!r}")


MONITORING_NAMESPACE: Final = "monitoring"

# Azure Workload Identity: the ServiceAccount annotation naming the identity, and the pod label
# that makes the webhook inject the federated token into every container.
WORKLOAD_IDENTITY_CLIENT_ID: Final = "azure.workload.identity/client-id"
WORKLOAD_IDENTITY_USE: Final = "azure.workload.identity/use"
AUTOMATION_NAMESPACE: Final = "mlops-system"
"""Platform automation: the rollout analysis CronJob and the Pulumi Kubernetes Operator's Stack."""

# The Pulumi Kubernetes Operator's Stack CR that runs the models project (`models/`). Whatever
# asks for an immediate reconcile (annotation `pulumi.com/reconciliation-request`) patches this
# one object; its RBAC names it.
MODELS_STACK_CR_NAME: Final = "mlops-models"
MODELS_STACK_CR_NAMESPACE: Final = AUTOMATION_NAMESPACE

# Istio: the one ingress gateway MLflow, Seldon and Grafana are routed through.
ISTIO_NAMESPACE: Final = "istio-system"
PLATFORM_GATEWAY_NAME: Final = "platform-gateway"
PLATFORM_GATEWAY: Final = f"{ISTIO_NAMESPACE}/{PLATFORM_GATEWAY_NAME}"
SELDON_NAMESPACE: Final = "seldon-system"

# MLflow: one Deployment and Service per role; pods carry these labels and their metrics are
# scraped with the role copied into the `role` label, which every MLflow PromQL expression uses.
MlflowRole = Literal["tracking", "registry", "artifacts"]
MLFLOW_ROLES: Final[tuple[MlflowRole, ...]] = ("tracking", "registry", "artifacts")
APP_NAME_LABEL: Final = "app.kubernetes.io/name"
COMPONENT_LABEL: Final = "app.kubernetes.io/component"
MLFLOW_ROLE_METRIC_LABEL: Final = "role"
MLFLOW_APP_LABEL_VALUE: Final = "mlflow"
MLFLOW_SERVER_PORT: Final = 5000
MLFLOW_METRICS_PORT_NAME: Final = "http"


CERT_MANAGER_NAMESPACE: Final = "cert-manager"
PUBLIC_SERVICES: Final = ("mlflow", "models", "grafana")
"""Host names the platform gateway serves under the domain (`mlflow.<domain>`, ...)."""


def public_host(service: str, domain: str) -> str:
    """`mlflow` + `mlops.example.com` → `mlflow.mlops.example.com`."""
    return f"{service}.{domain}"
