"""The typed settings of one stack: every key a stack file may set, its type, default and meaning.

This is the single source of truth for configuration. `Pulumi.yaml`'s `config:` block and the
README's configuration reference are checked against it by the tests, so a key documented there
and not read here (or the reverse) fails CI. Field names are snake_case; the stack-file keys are
their camelCase aliases (`postgresSkuTier` for `postgres_sku_tier`).

Every default is the production posture. Where dev deliberately relaxes it (local accounts,
shared keys, no purge protection, LRS storage, no encryption at host, no Defender, public
endpoints) the relaxation is a named setting the dev stack file sets, and the policy pack reports
it (advisory in dev, mandatory in prod). Deletion protection alone is derived from `environment`.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints
from pydantic.alias_generators import to_camel

from layout.images import is_digest_reference
from layout.kubelogin import KubeloginMode
from settings.labels import Dns1123Label
from settings.teams import Team

Environment = Literal["dev", "prod"]
PostgresTier = Literal["Burstable", "GeneralPurpose", "MemoryOptimized"]
PostgresHighAvailability = Literal["Disabled", "SameZone", "ZoneRedundant"]
StorageReplication = Literal["LRS", "ZRS", "GRS", "GZRS", "RAGRS", "RAGZRS"]
AksTier = Literal["Free", "Standard", "Premium"]
RegistrySku = Literal["Basic", "Standard", "Premium"]
Weekday = Literal["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
AvailabilityZone = Literal["1", "2", "3"]
PostgresCreateMode = Literal["Default", "PointInTimeRestore", "GeoRestore"]


def _all_zones() -> list[AvailabilityZone]:
    return ["1", "2", "3"]


def _cron(value: str) -> str:
    fields = value.split()
    if len(fields) != 5 or not all(re.fullmatch(r"[0-9*/,\-]+", f) for f in fields):
        raise ValueError("a five-field cron schedule such as `*/5 * * * *`")
    return value


def _pinned_image(value: str) -> str:
    name, _, digest = value.partition("@")
    if digest:
        if not re.fullmatch(r"sha256:[0-9a-f]{64}", digest):
            raise ValueError("a digest of the form `sha256:<64 hex>`")
        return value
    tag = name.rsplit("/", 1)[-1].partition(":")[2]
    if not tag or tag == "latest":
        raise ValueError("an image pinned by a tag other than `latest` (`repo/name:1.2.3`) or by digest")
    return value


GUID_OR_EMPTY = r"^([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})?$"
Cidr = Annotated[str, StringConstraints(pattern=r"^\d{1,3}(\.\d{1,3}){3}/\d{1,2}$")]
IpAddress = Annotated[str, StringConstraints(pattern=r"^\d{1,3}(\.\d{1,3}){3}$")]
OptionalGuid = Annotated[
    str,
    StringConstraints(pattern=r"^([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})?$"),
]
Guid = Annotated[
    str,
    StringConstraints(pattern=r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"),
]
VmSize = Annotated[str, StringConstraints(pattern=r"^Standard_[A-Za-z0-9_]+$")]
ChartVersion = Annotated[str, StringConstraints(pattern=r"^\d+\.\d+\.\d+$")]
# `[registry/]repository[:tag][@sha256:digest]`, a tag or a digest required (never an implicit `latest`).
ImageReference = Annotated[
    str,
    StringConstraints(
        pattern=r"^([a-z0-9.-]+(:[0-9]+)?/)?[a-z0-9]+([._/-][a-z0-9]+)*(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?"
        r"(@sha256:[a-f0-9]{64})?$"
    ),
    AfterValidator(_pinned_image),
]


def _digest_pinned(value: object) -> object:
    if not is_digest_reference(value):
        raise ValueError(
            "an image pinned by digest, `<registry>/<repository>@sha256:<64 hex>` "
            "(a tag alone is refused: it can be pushed again with other content)"
        )
    return value


# A prebuilt image: an `ImageReference` that must carry a registry host and a digest (checked
# first, so a tag-only reference is refused with that reason rather than a pattern).
DigestImageReference = Annotated[ImageReference, BeforeValidator(_digest_pinned)]


Quantity = Annotated[str, StringConstraints(pattern=r"^[0-9]+(\.[0-9]+)?(m|Ki|Mi|Gi)?$")]
NonEmpty = Annotated[str, StringConstraints(min_length=1, max_length=256, strip_whitespace=True)]

POSTGRES_STORAGE_SIZES_GB = (32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384, 32768)


class PlatformSettings(BaseModel):
    """Validated settings of one environment. Built only by `settings.load_settings`."""

    model_config = ConfigDict(alias_generator=to_camel, frozen=True, extra="forbid")

    # --- identity of the environment -------------------------------------------------------
    environment: Environment = Field(
        description="Environment kind. `prod` switches on deletion protection of the stateful resources "
        "and the stricter MLflow default permission."
    )
    location: Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9]+$")] = Field(
        description="Azure region for every resource, e.g. `westeurope`."
    )
    owner: NonEmpty = Field(description="Owning team or contact, written to the `owner` tag.")
    cost_center: NonEmpty = Field(description="Cost centre, written to the `cost-center` tag.")
    domain: Annotated[
        str,
        StringConstraints(
            min_length=4, max_length=200, pattern=r"^([a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$"
        ),
    ] = Field(
        description="DNS domain the platform is served under: `mlflow.<domain>`, `models.<domain>`, `grafana.<domain>`."
    )
    name_prefix: Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9]{1,9}$")] = Field(
        default="mlops",
        description="Prefix of every resource name: 2-10 lowercase letters or digits, starting with a letter.",
    )

    # --- network ---------------------------------------------------------------------------
    vnet_address_space: Cidr = Field(default="10.40.0.0/16", description="Address space of the VNet.")
    aks_nodes_subnet: Cidr = Field(default="10.40.0.0/20", description="Subnet of the AKS nodes.")
    postgres_subnet: Cidr = Field(
        default="10.40.16.0/24", description="Subnet delegated to PostgreSQL Flexible Server."
    )
    private_endpoints_subnet: Cidr = Field(
        default="10.40.17.0/24", description="Subnet of the private endpoints (storage, Key Vault)."
    )
    private_endpoints: bool = Field(
        default=True,
        description="Reach storage and Key Vault through private endpoints and private DNS zones, "
        "and deny their public network by default.",
    )
    allowed_ip_ranges: list[Cidr] = Field(
        default_factory=list,
        description="Operator CIDRs allowed through the storage, Key Vault and AKS API server "
        "firewalls (empty: none beyond the VNet).",
    )

    # --- PostgreSQL Flexible Server --------------------------------------------------------
    postgres_version: Literal["16"] = Field(default="16", description="PostgreSQL major version.")
    postgres_sku_tier: PostgresTier = Field(default="GeneralPurpose", description="Compute tier.")
    postgres_sku_name: VmSize = Field(
        default="Standard_D2ds_v5",
        description="Compute SKU; must belong to the tier (B* Burstable, D* GeneralPurpose, E* MemoryOptimized).",
    )
    postgres_storage_gb: int = Field(
        default=128, description="Storage size in GiB, one of " + ", ".join(map(str, POSTGRES_STORAGE_SIZES_GB)) + "."
    )
    postgres_backup_retention_days: int = Field(
        default=7, ge=7, le=35, description="Point-in-time restore window in days (7-35)."
    )
    postgres_geo_redundant_backup: bool = Field(
        default=False, description="Keep backups in the paired region (cannot be changed after creation)."
    )
    postgres_high_availability: PostgresHighAvailability = Field(
        default="Disabled", description="High-availability mode; not available on the Burstable tier."
    )
    postgres_admin_login: Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{2,62}$")] = Field(
        default="mlflowadmin", description="Administrator login (not a reserved name such as `admin`)."
    )
    postgres_pgbouncer: bool = Field(
        default=True,
        description="Enable the server's built-in PgBouncer (port 6432, transaction pooling) and connect the "
        "MLflow servers through it; migrations stay direct on 5432. Not available on the Burstable tier.",
    )
    postgres_pgbouncer_pool_size: int = Field(
        default=50,
        ge=1,
        le=4950,
        description="`pgbouncer.default_pool_size`: server connections PgBouncer opens per database "
        "(MLflow uses three databases with one login).",
    )
    postgres_pgbouncer_max_client_connections: int = Field(
        default=5000,
        ge=1,
        le=50000,
        description="`pgbouncer.max_client_conn`: client connections PgBouncer accepts; MLflow's at maximum "
        "scale must fit (see README, PostgreSQL connections).",
    )

    # --- restore: a stack brought back from another server's backups (docs/recovery.md) ----
    postgres_create_mode: PostgresCreateMode = Field(
        default="Default",
        description="How the PostgreSQL server is created: `Default` (empty), `PointInTimeRestore` (from "
        "postgresRestoreSourceServerId's backups at postgresRestorePointInTime, same region) or `GeoRestore` "
        "(from its geo-redundant backup, into this stack's location). Only read when the server is created; a "
        "restore stack is a new stack with its own server, the source is left alone.",
    )
    postgres_restore_source_server_id: str = Field(
        default="",
        description="With a restore: ARM id of the source Flexible Server, `/subscriptions/<id>/resourceGroups/"
        "<group>/providers/Microsoft.DBforPostgreSQL/flexibleServers/<name>`, in this stack's subscription.",
    )
    postgres_restore_point_in_time: str = Field(
        default="",
        description="With a restore: the UTC time to restore to, ISO-8601 (`2025-06-01T14:05:00Z`), inside the "
        "source's retention window (postgresBackupRetentionDays, the same on both stacks) and not in the future. "
        "GeoRestore restores the latest geo-replicated backup at or before it.",
    )
    mlflow_migrate_restored_database: bool = Field(
        default=False,
        description="With a restore: run the migration Job (`mlflow db upgrade`) against the restored databases. "
        "Off (the default), the servers start on the schema as restored and refuse an out-of-date one, so a "
        "restore never upgrades the restored data by accident. Without a restore the Job always runs.",
    )

    # --- artifact storage -----------------------------------------------------------------
    storage_replication: StorageReplication = Field(default="ZRS", description="Storage account replication.")
    artifact_container: Annotated[
        str, StringConstraints(min_length=3, max_length=63, pattern=r"^[a-z0-9]+(-[a-z0-9]+)*$")
    ] = Field(default="mlflow-artifacts", description="Blob container of the MLflow artifacts.")
    blob_soft_delete_days: int = Field(default=14, ge=1, le=365, description="Blob soft-delete retention in days.")
    container_soft_delete_days: int = Field(
        default=14, ge=1, le=365, description="Container soft-delete retention in days."
    )
    blob_restore_days: int = Field(
        default=0,
        ge=0,
        le=364,
        description="Point-in-time restore of the block blobs for this many days (0: off). Needs versioning and "
        "change feed (turned on with it) and must be shorter than blobSoftDeleteDays.",
    )
    blob_version_retention_days: int = Field(
        default=30,
        ge=1,
        le=3650,
        description="Lifecycle management: previous blob versions and snapshots are deleted this many days "
        "after they were created (a deleted or overwritten artifact lives on as a previous version until then).",
    )
    mlflow_gc_schedule: Annotated[str, AfterValidator(_cron)] = Field(
        default="30 3 * * *",
        description="Cron schedule (UTC) of the CronJob running `mlflow gc`: deleted runs, experiments and logged "
        "models lose their metadata and artifacts.",
    )
    mlflow_gc_older_than: Annotated[str, StringConstraints(pattern=r"^([0-9]+d)?([0-9]+h)?([0-9]+m)?([0-9]+s)?$")] = (
        Field(
            default="30d",
            min_length=2,
            description="`mlflow gc --older-than`: only what was deleted longer ago than this (`#d#h#m#s`, e.g. "
            "`30d`, `12h`) is removed for good.",
        )
    )

    storage_shared_key_access: bool = Field(
        default=False,
        description="Let the storage account accept shared keys and SAS (dev convenience for tools without "
        "Entra ID). Off: Entra ID only (workload identity).",
    )

    # --- Key Vault ------------------------------------------------------------------------
    key_vault_soft_delete_days: int = Field(
        default=90, ge=7, le=90, description="Key Vault soft-delete retention in days (7-90)."
    )
    key_vault_purge_protection: bool = Field(
        default=True,
        description="Key Vault purge protection: deleted secrets cannot be purged before the soft-delete "
        "retention ends. Cannot be switched off once on; dev leaves it off so a vault name can be reused.",
    )

    # --- security baseline: audit trail, credential lifetime, Defender, Entra sign-in --------
    log_analytics_retention_days: int = Field(
        default=90,
        ge=30,
        le=730,
        description="Days the Log Analytics workspace keeps the audit trail (AKS API-server audit, Key Vault, "
        "storage, PostgreSQL and registry logs); 30-730, the first 31 days cost nothing extra.",
    )
    log_analytics_daily_quota_gb: int = Field(
        default=0,
        ge=0,
        le=10000,
        description="Daily ingestion cap of the workspace in GB (0: no cap). A cap drops audit records once "
        "reached, so only dev should set one.",
    )
    credential_lifetime_days: int = Field(
        default=90,
        ge=1,
        le=365,
        description="Days a generated credential lives: the first `pulumi up` after this many days "
        "regenerates the PostgreSQL password and the MLflow CSRF key (pulumiverse-time `Rotating` keeper).",
    )
    credential_expiry_grace_days: int = Field(
        default=14,
        ge=1,
        le=90,
        description="Days after the rotation date at which the Key Vault secrets expire (`expires` = "
        "rotation + grace), so a missed rotation shows as an expired secret.",
    )
    defender_for_containers: bool = Field(
        default=True,
        description="Turn on Microsoft Defender for Containers for the subscription (image scanning of the "
        "registry, runtime threat detection). Off where the subscription is shared and its plans are "
        "owned elsewhere.",
    )
    postgres_entra_admin_group_object_id: OptionalGuid = Field(
        default="",
        description="Object id of the Entra ID group that administers PostgreSQL through Entra sign-in "
        "(empty: Entra authentication off). Password sign-in stays on for MLflow.",
    )
    postgres_entra_admin_group_name: str = Field(
        default="",
        description="Display name of that group (the PostgreSQL role name people sign in as).",
    )

    # --- container registry ---------------------------------------------------------------
    container_registry: bool = Field(
        default=True, description="Create an Azure Container Registry for platform images, with AcrPull for AKS."
    )
    container_registry_sku: RegistrySku = Field(
        default="Premium", description="Registry SKU; private endpoints need `Premium`."
    )
    prebuilt_images: dict[str, DigestImageReference] = Field(
        default_factory=dict,
        description="Platform images (`mlflow`, `mlopsctl`, ... as listed in layout/images.py) to run "
        "prebuilt instead of building them from `images/`: image name → `<registry>/<repository>@sha256:<digest>`. "
        "Tags alone are refused. Empty (the default): the program builds and pushes every image itself.",
    )

    # --- AKS ------------------------------------------------------------------------------
    aks_kubernetes_version: Annotated[str, StringConstraints(pattern=r"^1\.\d{2}\.\d{1,2}$")] = Field(
        default="1.34.2", description="Kubernetes version, pinned to a patch release (`1.34.2`, not `1.34`)."
    )
    aks_tier: AksTier = Field(default="Standard", description="AKS pricing tier (`Standard` has the uptime SLA).")
    aks_admin_group_object_ids: list[Guid] = Field(
        min_length=1, description="Entra ID group object ids granted cluster admin through Azure RBAC."
    )
    aks_local_accounts: bool = Field(
        default=False,
        description="Keep Kubernetes local accounts (admin kubeconfig). Off: Entra-only access through kubelogin.",
    )
    aks_kubelogin_mode: KubeloginMode = Field(
        default="azurecli",
        description="How the Pulumi Kubernetes provider logs in when local accounts are off: `azurecli` "
        "(a person after `az login`), `workloadidentity` (GitHub Actions OIDC with kubelogin >= 0.2.0, or a "
        "pod's federated token: refreshed for the whole `up`), `msi` (a runner VM's managed identity), `spn` "
        "(service principal secret from the environment; needs aksKubeloginClientId).",
    )
    aks_kubelogin_client_id: Annotated[str, StringConstraints(pattern=GUID_OR_EMPTY)] = Field(
        default="",
        description="Client id kubelogin logs in as for `workloadidentity`, `msi` and `spn` (empty: "
        "`AZURE_CLIENT_ID` from the environment, or the machine's only managed identity).",
    )
    aks_deployer_object_ids: list[Guid] = Field(
        default_factory=list,
        description="Object ids of every principal that runs `pulumi up` for this stack (CI's service "
        "principal, the operator's identity): each gets AKS RBAC Cluster Admin on this cluster. Required "
        "when aksLocalAccounts is false; never derived from whoever runs `up`.",
    )
    aks_deployer_ip_ranges: list[Cidr] = Field(
        default_factory=list,
        description="Egress CIDRs of the machines that run `pulumi up` (the CI runner's NAT gateway): added to "
        "the API server's authorized ranges. Required when allowedIpRanges restricts the API server.",
    )
    aks_api_server_vnet_integration: bool = Field(
        default=False,
        description="API Server VNet Integration: project the API server into aksApiServerSubnet (an internal "
        "load balancer in a subnet delegated to AKS), so node-to-API-server traffic stays in the VNet. The public "
        "endpoint stays on, still limited by the authorized ranges (allowedIpRanges, aksDeployerIpRanges). Best "
        "enabled at creation: on an existing cluster it is one-way, needs a manual cluster restart and re-images "
        "every node (see the first-deploy runbook).",
    )
    aks_api_server_subnet: Cidr = Field(
        default="10.40.18.0/28",
        description="Subnet the API server is projected into with aksApiServerVnetIntegration (delegated to "
        "`Microsoft.ContainerService/managedClusters`, nothing else may use it): inside vnetAddressSpace, disjoint "
        "from the other subnets, /28 or larger.",
    )
    aks_rbac_propagation_seconds: int = Field(
        default=300,
        ge=0,
        le=1800,
        description="Bounded wait between the deployer grants and the first in-cluster request (Azure RBAC "
        "for Kubernetes propagates within about five minutes); only on creation or a change of deployers.",
    )
    aks_encryption_at_host: bool = Field(
        default=True,
        description="Encrypt the temp disks, caches and ephemeral OS disks of every node pool at the host "
        "(needs the subscription feature `Microsoft.Compute/EncryptionAtHost`, see the first-deploy runbook).",
    )
    aks_zones: list[AvailabilityZone] = Field(
        default_factory=_all_zones, description="Availability zones of the node pools (empty: none)."
    )
    aks_system_vm_size: VmSize = Field(default="Standard_D4ds_v5", description="VM size of the system pool.")
    aks_system_min_nodes: int = Field(default=2, ge=1, le=100, description="Minimum nodes of the system pool.")
    aks_system_max_nodes: int = Field(default=3, ge=1, le=100, description="Maximum nodes of the system pool.")
    aks_workload_vm_size: VmSize = Field(
        default="Standard_D8ds_v5", description="VM size of the workload pool (MLflow, models)."
    )
    aks_workload_min_nodes: int = Field(default=2, ge=0, le=1000, description="Minimum nodes of the workload pool.")
    aks_workload_max_nodes: int = Field(default=10, ge=1, le=1000, description="Maximum nodes of the workload pool.")
    aks_service_cidr: Cidr = Field(default="10.0.0.0/16", description="Kubernetes service CIDR (outside the VNet).")
    aks_dns_service_ip: IpAddress = Field(
        default="10.0.0.10", description="Cluster DNS address, inside the service CIDR."
    )
    aks_pod_cidr: Cidr = Field(default="10.244.0.0/16", description="Overlay pod CIDR (outside the VNet).")
    aks_maintenance_day: Weekday = Field(default="Sunday", description="Day of the node-image upgrade window.")
    aks_maintenance_start_hour: int = Field(
        default=2, ge=0, le=23, description="UTC start hour of the node-image upgrade window."
    )
    aks_maintenance_duration_hours: int = Field(
        default=4, ge=4, le=24, description="Length of the node-image upgrade window in hours (4-24)."
    )

    # --- Kubernetes layout ----------------------------------------------------------------
    mlflow_namespace: Dns1123Label = Field(default="mlflow", description="Namespace of the MLflow services.")
    models_namespace: Dns1123Label = Field(
        default="models",
        description="Namespace of the served models (SeldonDeployments), which the models stack "
        "(`models/`) manages; exported as `modelsNamespace`.",
    )
    # --- rollout automation ---------------------------------------------------------------
    rollout_analysis_schedule: Annotated[str, AfterValidator(_cron)] = Field(
        default="* * * * *",
        description="Cron schedule of the CronJob that runs `mlopsctl rollout advance` (UTC): how soon an "
        "approval, a failing candidate or a finished A/B is acted on. Every minute, like Flagger's default "
        "analysis interval; canary steps still wait `analysis.stepInterval` per model.",
    )
    pulumi_operator: bool = Field(
        default=False,
        description="Install the Pulumi Kubernetes Operator with a Stack that runs the models project "
        "(`models/`) on a resync interval, so registry decisions reach the cluster without a person.",
    )
    pulumi_operator_chart_version: Annotated[str, StringConstraints(pattern=r"^\d+\.\d+\.\d+$")] = Field(
        default="2.9.0", description="Pinned version of the pulumi-kubernetes-operator Helm chart."
    )
    pulumi_operator_resync_seconds: int = Field(
        default=600, ge=60, le=86400, description="How often the operator re-runs the models stack (the backstop)."
    )
    pulumi_project_repo: str = Field(
        default="", description="Git URL of this repository, for the operator (required with pulumiOperator)."
    )
    pulumi_project_branch: str = Field(default="main", description="Branch the operator deploys.")
    pulumi_backend_url: str = Field(
        default="",
        description="State backend of the models stack, e.g. `azblob://state?storage_account=...` "
        "(required with pulumiOperator).",
    )
    pulumi_stack_name: str = Field(
        default="",
        description="Fully qualified models stack the operator updates, e.g. `organization/mlops-models/prod` "
        "(required with pulumiOperator).",
    )

    registry_webhooks: bool = Field(
        default=True,
        description="With `pulumiOperator`: MLflow delivers registry events (alias and version-tag changes) to "
        "an in-cluster receiver that asks the operator to reconcile the models Stack at once; the resync "
        "interval stays as the backstop. Also lets MLflow deliver to `http` and private addresses.",
    )
    webhook_replay_window_seconds: int = Field(
        default=300,
        ge=30,
        le=3600,
        description="The receiver accepts a delivery whose `X-MLflow-Timestamp` is this close to its clock "
        "(MLflow's retries of a delivery keep its timestamp and arrive within ~10 s).",
    )
    mlflow_webhook_cache_ttl_seconds: int = Field(
        default=10,
        ge=1,
        le=300,
        description="`MLFLOW_WEBHOOK_CACHE_TTL` of the MLflow servers: each worker caches the webhook list per "
        "event this long, and events in that time after a webhook is created or changed can be dropped "
        "(MLflow's default is 60 s).",
    )

    # --- serving: Istio and Seldon Core ---------------------------------------------------
    istio_chart_version: ChartVersion = Field(
        default="1.30.3", description="Version of the Istio Helm charts `base`, `istiod` and `gateway`."
    )
    seldon_core_operator_chart_version: ChartVersion = Field(
        default="1.17.1",
        description="Version of the `seldon-core-operator` chart (1.17.1 is the last Apache-2.0 release).",
    )
    ingress_internal_load_balancer: bool = Field(
        default=True,
        description="Give the Istio ingress gateway an internal Azure load balancer (VNet address) "
        "instead of a public IP.",
    )
    dns_zone_name: Annotated[
        str, StringConstraints(max_length=200, pattern=r"^(([a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?\.)+[a-z]{2,63})?$")
    ] = Field(
        default="",
        description="Public Azure DNS zone that holds `domain` (the zone itself or a parent of it); empty: `domain`. "
        "The gateway's records go there (public load balancer) and cert-manager answers DNS-01 challenges in it.",
    )
    dns_zone_resource_group: Annotated[str, StringConstraints(max_length=90, pattern=r"^[-\w._()]*$")] = Field(
        default="",
        description="Resource group of an existing `dnsZoneName` zone in this subscription; empty: the program "
        "creates the zone in the stack's resource group (delegate it from its parent with `dnsNameServers`).",
    )
    cert_manager_chart_version: Annotated[str, StringConstraints(pattern=r"^v\d+\.\d+\.\d+$")] = Field(
        default="v1.19.1", description="Version of the jetstack `cert-manager` chart (with its `v`)."
    )
    acme_server: Annotated[str, StringConstraints(pattern=r"^https://[^\s]+$")] = Field(
        default="https://acme-v02.api.letsencrypt.org/directory",
        description="ACME directory the ClusterIssuer orders the gateway certificate from (Let's Encrypt "
        "production; its staging directory for rehearsals).",
    )
    acme_email: Annotated[str, StringConstraints(max_length=254, pattern=r"^([^@\s]+@[^@\s]+)?$")] = Field(
        default="", description="Contact e-mail of the ACME account (optional)."
    )
    gateway_tls_secret_name: Dns1123Label = Field(
        default="platform-gateway-tls",
        description="Kubernetes TLS secret in `istio-system` holding the certificate for `*.<domain>` "
        "served by the platform gateway.",
    )

    # --- observability: kube-prometheus-stack ---------------------------------------------
    kube_prometheus_stack_chart_version: ChartVersion = Field(
        default="88.5.3", description="Version of the `kube-prometheus-stack` chart."
    )
    prometheus_retention_days: int = Field(default=15, ge=1, le=365, description="Days of metrics Prometheus keeps.")
    prometheus_storage_gb: int = Field(
        default=50, ge=1, le=4096, description="Size of Prometheus' persistent volume in GiB."
    )
    alertmanager_storage_gb: int = Field(
        default=5, ge=1, le=1024, description="Size of Alertmanager's persistent volume in GiB."
    )
    monitoring_storage_class: Dns1123Label = Field(
        default="managed-csi-premium", description="Storage class of the Prometheus and Alertmanager volumes."
    )
    alert_model_error_percent: int = Field(
        default=5, ge=1, le=100, description="Alert when a predictor answers more than this % of requests with errors."
    )
    alert_model_p95_latency_ms: int = Field(
        default=500, ge=1, le=600000, description="Alert when a predictor's p95 latency exceeds this many ms."
    )
    alert_mlflow_5xx_percent: int = Field(
        default=5, ge=1, le=100, description="Alert when an MLflow role answers more than this % with 5xx."
    )
    ml_jobs_namespace: Dns1123Label = Field(
        default="ml-jobs", description="Namespace of MLflow Projects jobs (`mlflow run --backend kubernetes`)."
    )
    teams: list[Team] = Field(
        default_factory=list,
        description="The ML teams the platform serves, one entry each (`{name, adminGroups, memberGroups?, "
        "quota?, overrides?}`, docs/teams.md): per team an MLflow workspace, namespaces, quota, network "
        "policies, Entra group bindings, a serving identity and a models Stack. Empty: the single-tenant "
        "layout (one models namespace, one models Stack).",
    )

    # --- MLflow servers -------------------------------------------------------------------
    mlflow_admin_username: Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_.-]{2,31}$")] = Field(
        default="mlflow-admin",
        description="Basic-auth administrator created on first start (password generated in Key Vault).",
    )
    mlflow_workers: int = Field(default=4, ge=1, le=32, description="Server worker processes per MLflow pod.")
    mlflow_db_pool_size: int = Field(
        default=5, ge=1, le=100, description="SQLAlchemy connection pool size per worker process."
    )
    mlflow_db_max_overflow: int = Field(
        default=5, ge=0, le=100, description="SQLAlchemy connections a worker may open beyond its pool."
    )
    mlflow_tracking_min_replicas: int = Field(
        default=2, ge=1, le=50, description="Minimum tracking server pods (HorizontalPodAutoscaler)."
    )
    mlflow_tracking_max_replicas: int = Field(
        default=6, ge=1, le=50, description="Maximum tracking server pods (HorizontalPodAutoscaler)."
    )
    mlflow_registry_min_replicas: int = Field(
        default=2, ge=1, le=50, description="Minimum model registry server pods (HorizontalPodAutoscaler)."
    )
    mlflow_registry_max_replicas: int = Field(
        default=4, ge=1, le=50, description="Maximum model registry server pods (HorizontalPodAutoscaler)."
    )
    mlflow_artifacts_replicas: int = Field(default=2, ge=1, le=50, description="Artifacts server pods.")
    mlflow_cpu_request: Quantity = Field(
        default="500m", description="CPU request of each MLflow server pod (Kubernetes quantity: `500m`, `1`)."
    )
    mlflow_cpu_limit: Quantity = Field(
        default="2", description="CPU limit of each MLflow server pod (Kubernetes quantity: `2`, `1500m`)."
    )
    mlflow_memory_request: Quantity = Field(
        default="1Gi", description="Memory request of each MLflow server pod (Kubernetes quantity: `1Gi`, `768Mi`)."
    )
    mlflow_memory_limit: Quantity = Field(
        default="2Gi", description="Memory limit of each MLflow server pod (Kubernetes quantity: `2Gi`, `1536Mi`)."
    )

    # --- derived posture ------------------------------------------------------------------
    @property
    def is_prod(self) -> bool:
        return self.environment == "prod"

    @property
    def postgres_restore(self) -> bool:
        """The server is created from another server's backups (point in time or geo-restore)."""
        return self.postgres_create_mode != "Default"

    @property
    def run_mlflow_migrations(self) -> bool:
        """The migration Job is declared: always on a new server, on a restored one only when asked."""
        return not self.postgres_restore or self.mlflow_migrate_restored_database

    @property
    def webhook_receiver(self) -> bool:
        """The registry webhook receiver is declared: it reconciles the operator's Stack, so both are on."""
        return self.pulumi_operator and self.registry_webhooks

    @property
    def public_dns_zone(self) -> str:
        """The public zone `domain` lives in (`dnsZoneName`, else `domain` itself)."""
        return self.dns_zone_name or self.domain

    @property
    def protect_stateful(self) -> bool:
        """Database, storage and Key Vault refuse `pulumi destroy` in prod."""
        return self.is_prod

    @property
    def mlflow_default_permission(self) -> str:
        """Basic-auth permission of a user on resources nobody granted them: none at all in prod."""
        return "NO_PERMISSIONS" if self.is_prod else "READ"

    @property
    def tags(self) -> dict[str, str]:
        """Tags every taggable Azure resource carries."""
        return {
            "environment": self.environment,
            "owner": self.owner,
            "cost-center": self.cost_center,
            "managed-by": "pulumi",
            "project": "mlops-platform",
        }
