"""What the MLflow component is given: settings, upstream objects to wait for, and sizes."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi

from components.cluster.workload_identity import PodIdentity
from layout.mlflow_server import ServerSettings


@dataclass(frozen=True)
class RoleScaling:
    min_replicas: int
    max_replicas: int
    """Equal to `min_replicas`: fixed size, no HorizontalPodAutoscaler."""


@dataclass(frozen=True)
class PodResources:
    cpu_request: str
    cpu_limit: str
    memory_request: str
    memory_limit: str


@dataclass(frozen=True)
class MlflowStackArgs:
    namespace: str
    models_namespace: str
    monitoring_namespace: str
    image: pulumi.Output[str]
    """`<registry>/<repository>@sha256:<digest>` from `PlatformImages.refs` (the pods wait for the build)."""
    server: ServerSettings
    """The servers' settings; the database host and the artifacts destination are replaced below."""
    database_host: pulumi.Input[str]
    artifacts_destination: pulumi.Input[str]
    public_host: str
    gateway: str
    """`<namespace>/<name>` of the Istio Gateway the VirtualService binds to."""
    tenant_id: pulumi.Input[str]
    key_vault_name: pulumi.Input[str]
    identities: Mapping[str, PodIdentity]
    """Per `cluster_layout.WORKLOAD_SERVICE_ACCOUNTS` key (`mlflow-server`, `mlflow-artifacts`): client
    id, and the federated credential and role grants its pods wait for."""
    scaling: Mapping[str, RoleScaling]
    resources: PodResources
    zone_spread: bool
    postgres_subnet: str
    """CIDR the database is reached in (egress rule on 5432 and PgBouncer's 6432)."""
    node_pools: Sequence[pulumi.Resource]
    """User node pools: the migration Job and the Deployments are scheduled there."""
    databases: Sequence[pulumi.Resource]
    """The databases the migration Job migrates and the network path to them (server, DNS link)."""
    istio_crds: pulumi.Resource
    """The Istio release installing `VirtualService`."""
    monitoring_crds: pulumi.Resource
    """The kube-prometheus-stack release installing `PodMonitor`."""
    image_pull_ready: Sequence[pulumi.Resource] = ()
    """The nodes' pull grant on the registry `image` lives in (empty: a public image)."""
    run_migrations: bool = True
    """Declare the migration Job. Off on a restored database unless asked: the servers then start on
    the restored schema (and refuse an out-of-date one) instead of upgrading restored data."""
    gc_schedule: str = "30 3 * * *"
    gc_older_than: str = "30d"
    deleted_with: pulumi.Resource | None = None
    """The cluster: its deletion takes these objects along, so they are not deleted one by one."""
    credentials_generation: pulumi.Input[str] | None = None
    """Generation of the rotated credentials (CredentialRotation.generation, carrying the Key Vault
    secrets as dependencies). A rotation changes it, and with it the server pods' annotation: the
    Deployments roll after the vault write, and each new pod's CSI mount fetches the new values
    (the secrets the launcher exports, such as the CSRF key, are read only at start). Running pods
    do not wait for that for the database: the driver rewrites their mounted files on its rotation
    poll and the launcher copies the password into the password file within a minute."""
