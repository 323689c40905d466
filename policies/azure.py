"""Azure resources: storage, Key Vault, PostgreSQL Flexible Server, AKS, tags and protection, and the
security baseline (audit trail, encryption at host, credential lifetime, Defender, Entra sign-in)."""

from __future__ import annotations

import importlib
import inspect
import re
from collections.abc import Iterator, Mapping
from functools import cache
from typing import Any

from pulumi_policy import PolicyConfigSchema, ResourceValidationArgs, Severity, StackValidationArgs

from layout import resource_types
from layout.audit import AUDIT_SOURCES, AuditSourceKind
from policies.framework import COST, PROD_ONLY, Policy, get, resource_policy, stack_policy

STORAGE_ACCOUNT = resource_types.STORAGE_ACCOUNT
BLOB_SERVICE = resource_types.BLOB_SERVICE
BLOB_CONTAINER = resource_types.BLOB_CONTAINER
KEY_VAULT = resource_types.KEY_VAULT
POSTGRES_SERVER = resource_types.POSTGRES_SERVER
POSTGRES_CONFIGURATION = resource_types.POSTGRES_CONFIGURATION
POSTGRES_DATABASE = resource_types.POSTGRES_DATABASE
AKS_CLUSTER = resource_types.AKS_CLUSTER
AKS_AGENT_POOL = resource_types.AKS_AGENT_POOL
KEY_VAULT_SECRET = resource_types.KEY_VAULT_SECRET
CONTAINER_REGISTRY = resource_types.CONTAINER_REGISTRY
LOG_ANALYTICS_WORKSPACE = resource_types.LOG_ANALYTICS_WORKSPACE
DIAGNOSTIC_SETTING = resource_types.DIAGNOSTIC_SETTING
SECURITY_PRICING = resource_types.SECURITY_PRICING
# The resources whose logs the audit trail must hold, by type (categories: layout.audit).
AUDITED_TYPES: dict[str, AuditSourceKind] = {
    AKS_CLUSTER: "aks",
    KEY_VAULT: "key-vault",
    BLOB_SERVICE: "blob",
    POSTGRES_SERVER: "postgres",
    CONTAINER_REGISTRY: "registry",
}

REQUIRED_TAGS = ("environment", "owner", "cost-center", "managed-by", "project")
STATEFUL_TYPES = (STORAGE_ACCOUNT, BLOB_CONTAINER, KEY_VAULT, POSTGRES_SERVER, POSTGRES_DATABASE)
TLS_ORDER = ("TLS1_0", "TLS1_1", "TLS1_2", "TLS1_3")
PINNED_KUBERNETES_VERSION = re.compile(r"^1\.\d{2}\.\d{1,2}$")


def _show(value: Any) -> str:
    return "absent" if value is None else repr(value)


# --- storage -----------------------------------------------------------------------------------


def _https_only(props: Mapping[str, Any], _: ResourceValidationArgs) -> Iterator[str]:
    if props.get("enableHttpsTrafficOnly") is not True:
        yield f"enableHttpsTrafficOnly is {_show(props.get('enableHttpsTrafficOnly'))}, must be True"


def _storage_tls(props: Mapping[str, Any], _: ResourceValidationArgs) -> Iterator[str]:
    version = props.get("minimumTlsVersion")
    if version not in TLS_ORDER or TLS_ORDER.index(version) < TLS_ORDER.index("TLS1_2"):
        yield f"minimumTlsVersion is {_show(version)}, must be TLS1_2 or later"


def _no_public_blob(props: Mapping[str, Any], args: ResourceValidationArgs) -> Iterator[str]:
    if args.resource_type == STORAGE_ACCOUNT and props.get("allowBlobPublicAccess") is not False:
        yield f"allowBlobPublicAccess is {_show(props.get('allowBlobPublicAccess'))}, must be False"
    if args.resource_type == BLOB_CONTAINER and props.get("publicAccess") not in (None, "None"):
        yield f"publicAccess is {props.get('publicAccess')!r}, must be None"


def _shared_key_off(props: Mapping[str, Any], _: ResourceValidationArgs) -> Iterator[str]:
    if props.get("allowSharedKeyAccess") is not False:
        yield f"allowSharedKeyAccess is {_show(props.get('allowSharedKeyAccess'))}, must be False"


def _storage_network_deny(props: Mapping[str, Any], _: ResourceValidationArgs) -> Iterator[str]:
    action = get(props, "networkRuleSet.defaultAction")
    if action != "Deny":
        yield f"networkRuleSet.defaultAction is {_show(action)}, must be Deny"


def _versioning(props: Mapping[str, Any], _: ResourceValidationArgs) -> Iterator[str]:
    if props.get("isVersioningEnabled") is not True:
        yield f"isVersioningEnabled is {_show(props.get('isVersioningEnabled'))}, must be True"


def _soft_delete(props: Mapping[str, Any], _: ResourceValidationArgs) -> Iterator[str]:
    for policy in ("deleteRetentionPolicy", "containerDeleteRetentionPolicy"):
        if get(props, f"{policy}.enabled") is not True:
            yield f"{policy}.enabled is {_show(get(props, f'{policy}.enabled'))}, must be True"
        elif int(get(props, f"{policy}.days", 0)) < 7:
            yield f"{policy}.days is {int(get(props, f'{policy}.days', 0))}, must be at least 7"


# --- Key Vault ---------------------------------------------------------------------------------


def _vault_rbac(props: Mapping[str, Any], _: ResourceValidationArgs) -> Iterator[str]:
    value = get(props, "properties.enableRbacAuthorization")
    if value is not True:
        yield f"properties.enableRbacAuthorization is {_show(value)}, must be True (access policies are not audited)"


def _vault_soft_delete(props: Mapping[str, Any], _: ResourceValidationArgs) -> Iterator[str]:
    if get(props, "properties.enableSoftDelete") is False:
        yield "properties.enableSoftDelete is False, must be True"
    days = int(get(props, "properties.softDeleteRetentionInDays", 90))
    if not 7 <= days <= 90:
        yield f"properties.softDeleteRetentionInDays is {days}, must be 7-90"


def _vault_purge_protection(props: Mapping[str, Any], _: ResourceValidationArgs) -> Iterator[str]:
    value = get(props, "properties.enablePurgeProtection")
    if value is not True:
        yield f"properties.enablePurgeProtection is {_show(value)}, must be True"


def _vault_network_deny(props: Mapping[str, Any], _: ResourceValidationArgs) -> Iterator[str]:
    action = get(props, "properties.networkAcls.defaultAction")
    if action != "Deny":
        yield f"properties.networkAcls.defaultAction is {_show(action)}, must be Deny"


# --- PostgreSQL --------------------------------------------------------------------------------

_TLS_PARAMETERS = {"require_secure_transport": ("ON",), "ssl_min_protocol_version": ("TLSv1.2", "TLSv1.3")}


def _postgres_tls(props: Mapping[str, Any], _: ResourceValidationArgs) -> Iterator[str]:
    parameter = props.get("configurationName")
    allowed = _TLS_PARAMETERS.get(str(parameter))
    if allowed is not None and str(props.get("value", "")).upper() not in {a.upper() for a in allowed}:
        yield f"server parameter {parameter} is {_show(props.get('value'))}, must be {' or '.join(allowed)}"


def _backup_retention(props: Mapping[str, Any], args: ResourceValidationArgs) -> Iterator[str]:
    minimum = int(args.get_config().get("minimumDays", 7))
    days = int(get(props, "backup.backupRetentionDays", 7))
    if days < minimum:
        yield f"backup.backupRetentionDays is {days}, must be at least {minimum}"


def _postgres_ha(props: Mapping[str, Any], _: ResourceValidationArgs) -> Iterator[str]:
    mode = get(props, "highAvailability.mode", "Disabled")
    if mode not in ("ZoneRedundant", "SameZone"):
        yield f"highAvailability.mode is {mode!r}, must be ZoneRedundant (or SameZone where zones are unavailable)"


def _geo_backup(props: Mapping[str, Any], _: ResourceValidationArgs) -> Iterator[str]:
    value = get(props, "backup.geoRedundantBackup", "Disabled")
    if value != "Enabled":
        yield f"backup.geoRedundantBackup is {value!r}, must be Enabled"


def _postgres_private(props: Mapping[str, Any], _: ResourceValidationArgs) -> Iterator[str]:
    value = get(props, "network.publicNetworkAccess")
    if value != "Disabled":
        yield f"network.publicNetworkAccess is {_show(value)}, must be Disabled"


# --- AKS ---------------------------------------------------------------------------------------


def _aks_entra_rbac(props: Mapping[str, Any], _: ResourceValidationArgs) -> Iterator[str]:
    if props.get("enableRBAC") is not True:
        yield f"enableRBAC is {_show(props.get('enableRBAC'))}, must be True"
    for key in ("managed", "enableAzureRBAC"):
        if get(props, f"aadProfile.{key}") is not True:
            yield f"aadProfile.{key} is {_show(get(props, f'aadProfile.{key}'))}, must be True"
    if not get(props, "aadProfile.adminGroupObjectIDs"):
        yield "aadProfile.adminGroupObjectIDs is empty, must name the Entra admin groups"


def _aks_local_accounts(props: Mapping[str, Any], _: ResourceValidationArgs) -> Iterator[str]:
    if props.get("disableLocalAccounts") is not True:
        yield f"disableLocalAccounts is {_show(props.get('disableLocalAccounts'))}, must be True"


def _aks_workload_identity(props: Mapping[str, Any], _: ResourceValidationArgs) -> Iterator[str]:
    for path in ("oidcIssuerProfile.enabled", "securityProfile.workloadIdentity.enabled"):
        if get(props, path) is not True:
            yield f"{path} is {_show(get(props, path))}, must be True"


def _aks_network_policy(props: Mapping[str, Any], _: ResourceValidationArgs) -> Iterator[str]:
    value = get(props, "networkProfile.networkPolicy")
    if value not in ("azure", "calico", "cilium"):
        yield f"networkProfile.networkPolicy is {_show(value)}, must be cilium, calico or azure"


def _pools(props: Mapping[str, Any], args: ResourceValidationArgs) -> list[tuple[str, Mapping[str, Any]]]:
    if args.resource_type == AKS_AGENT_POOL:
        return [(f"agent pool {props.get('agentPoolName', args.name)}", props)]
    return [(f"agentPoolProfiles[{p.get('name')}]", p) for p in props.get("agentPoolProfiles") or []]


def _count(value: Any) -> int | None:
    """A node count; the engine passes every number as a float."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not float(value).is_integer():
        return None
    return int(value)


def _aks_autoscaling(props: Mapping[str, Any], args: ResourceValidationArgs) -> Iterator[str]:
    for label, pool in _pools(props, args):
        if pool.get("enableAutoScaling") is not True:
            yield f"{label}: enableAutoScaling is {_show(pool.get('enableAutoScaling'))}, must be True"
            continue
        low, high = _count(pool.get("minCount")), _count(pool.get("maxCount"))
        if low is None or high is None:
            yield f"{label}: minCount {_show(low)} and maxCount {_show(high)} must both be set"
        elif low > high:
            yield f"{label}: minCount {low} is above maxCount {high}"
        elif pool.get("mode") == "System" and low < 1:
            yield f"{label}: a System pool needs minCount of at least 1, found {low}"


def _aks_pinned_version(props: Mapping[str, Any], args: ResourceValidationArgs) -> Iterator[str]:
    if args.resource_type == AKS_CLUSTER:
        version = props.get("kubernetesVersion")
        if not isinstance(version, str) or not PINNED_KUBERNETES_VERSION.match(version):
            yield f"kubernetesVersion is {_show(version)}, must be a patch release such as 1.34.2"
        channel = get(props, "autoUpgradeProfile.upgradeChannel", "none")
        if str(channel).lower() != "none":
            yield f"autoUpgradeProfile.upgradeChannel is {channel!r}, must be none (upgrades go through code review)"
    for label, pool in _pools(props, args):
        version = pool.get("orchestratorVersion")
        if version is not None and not PINNED_KUBERNETES_VERSION.match(str(version)):
            yield f"{label}: orchestratorVersion is {version!r}, must be a patch release"


def _aks_zones(props: Mapping[str, Any], args: ResourceValidationArgs) -> Iterator[str]:
    for label, pool in _pools(props, args):
        zones = pool.get("availabilityZones") or []
        if len(zones) < 2:
            yield f"{label}: availabilityZones is {list(zones)!r}, must span at least 2 zones"


def _aks_encryption_at_host(props: Mapping[str, Any], args: ResourceValidationArgs) -> Iterator[str]:
    for label, pool in _pools(props, args):
        if pool.get("enableEncryptionAtHost") is not True:
            yield f"{label}: enableEncryptionAtHost is {_show(pool.get('enableEncryptionAtHost'))}, must be True"


def _aks_api_server_restricted(props: Mapping[str, Any], _: ResourceValidationArgs) -> Iterator[str]:
    """Authorized ranges on the public endpoint, or no public endpoint (private cluster). API Server
    VNet Integration is accepted with either; on its own it keeps the public endpoint open."""
    ranges = get(props, "apiServerAccessProfile.authorizedIPRanges") or []
    private = get(props, "apiServerAccessProfile.enablePrivateCluster") is True
    integrated = get(props, "apiServerAccessProfile.enableVnetIntegration") is True
    own_vnet = any(pool.get("vnetSubnetID") for pool in props.get("agentPoolProfiles") or [])
    if integrated and own_vnet and not get(props, "apiServerAccessProfile.subnetId"):
        yield (
            "apiServerAccessProfile.enableVnetIntegration is True without subnetId: a cluster in its own VNet "
            "needs the delegated API server subnet"
        )
    if not ranges and not private:
        yield (
            "apiServerAccessProfile.authorizedIPRanges is empty and the cluster is not private: "
            "the API server answers the whole Internet"
            + (" (VNet integration keeps the public endpoint while public access is on)" if integrated else "")
        )


# --- security baseline -------------------------------------------------------------------------


def _storage_redundancy(props: Mapping[str, Any], _: ResourceValidationArgs) -> Iterator[str]:
    sku = str(get(props, "sku.name", ""))
    if not sku or sku.endswith("_LRS"):
        yield f"sku.name is {sku!r}: locally redundant storage loses the artifacts with one datacentre"


def _secret_lifetime(props: Mapping[str, Any], _: ResourceValidationArgs) -> Iterator[str]:
    if not str(get(props, "properties.contentType") or "").strip():
        yield "properties.contentType is absent, must say what the secret is (password, connection-string, ...)"
    expires = get(props, "properties.attributes.expires")
    if isinstance(expires, bool) or not isinstance(expires, (int, float)) or expires <= 0:
        yield f"properties.attributes.expires is {_show(expires)}, must be the expiry in Unix seconds"


def _workspace_retention(props: Mapping[str, Any], args: ResourceValidationArgs) -> Iterator[str]:
    minimum = int(args.get_config().get("minimumDays", 30))
    days = int(props.get("retentionInDays") or 30)
    if days < minimum:
        yield f"retentionInDays is {days}, must be at least {minimum}"


def _postgres_entra(props: Mapping[str, Any], _: ResourceValidationArgs) -> Iterator[str]:
    value = get(props, "authConfig.activeDirectoryAuth", "Disabled")
    if value != "Enabled":
        yield f"authConfig.activeDirectoryAuth is {value!r}, must be Enabled (set postgresEntraAdminGroupObjectId)"


def _registry_quarantine(props: Mapping[str, Any], _: ResourceValidationArgs) -> Iterator[str]:
    status = str(get(props, "policies.quarantinePolicy.status", "disabled")).lower()
    if status == "enabled":
        yield (
            "policies.quarantinePolicy.status is 'enabled': without a scanner that releases images, pulls block forever"
        )


def _audit_trail(args: StackValidationArgs) -> Iterator[tuple[str, str | None]]:
    settings = [r for r in args.resources if r.resource_type == DIAGNOSTIC_SETTING]
    for resource in args.resources:
        kind = AUDITED_TYPES.get(resource.resource_type)
        if kind is None:
            continue
        required = AUDIT_SOURCES[kind].categories
        sent: set[str] = set()
        for setting in settings:
            if resource.urn in {d.urn for d in setting.dependencies} and setting.props.get("workspaceId"):
                sent |= {
                    str(log.get("category"))
                    for log in setting.props.get("logs") or []
                    if isinstance(log, Mapping) and log.get("enabled") is True
                }
        missing = [category for category in required if category not in sent]
        if missing:
            yield (
                f"{resource.resource_type.split(':')[-1]} {resource.name} sends no {', '.join(missing)} "
                "to a Log Analytics workspace",
                resource.urn,
            )


def _defender_for_containers(args: StackValidationArgs) -> Iterator[tuple[str, str | None]]:
    if not any(r.resource_type.startswith("azure-native:") for r in args.resources):
        return  # not an Azure stack (the models stack): the subscription's plans are the platform's
    plans = [
        r for r in args.resources if r.resource_type == SECURITY_PRICING and r.props.get("pricingName") == "Containers"
    ]
    if not any(str(p.props.get("pricingTier")) == "Standard" for p in plans):
        yield "no Defender for Containers plan (security Pricing `Containers`, tier Standard) on the subscription", None


# --- stack-wide, per resource ------------------------------------------------------------------


@cache
def accepts_tags(type_token: str) -> bool:
    """Whether the typed pulumi-azure-native class of `type_token` has a `tags` argument."""
    try:
        _, module, kind = type_token.split(":")
        sdk_class = getattr(importlib.import_module(f"pulumi_azure_native.{module.replace('/', '.')}"), kind)
        return "tags" in inspect.signature(sdk_class._internal_init).parameters
    except (ValueError, ImportError, AttributeError):
        return False


def _is_taggable(type_token: str) -> bool:
    return type_token.startswith("azure-native:") and accepts_tags(type_token)


def _required_tags(props: Mapping[str, Any], _: ResourceValidationArgs) -> Iterator[str]:
    tags = props.get("tags") or {}
    missing = [tag for tag in REQUIRED_TAGS if not str(tags.get(tag) or "").strip()]
    if missing:
        yield f"tags lack {', '.join(missing)}"


def _protected(_: Mapping[str, Any], args: ResourceValidationArgs) -> Iterator[str]:
    if not args.opts.protect:
        yield "protect is off: `pulumi destroy` or a replacement would delete its data"


POLICIES: list[Policy] = [
    resource_policy(
        "storage-https-only",
        "Storage accounts accept HTTPS traffic only.",
        severity=Severity.HIGH,
        remediation="Set enable_https_traffic_only=True on the StorageAccount.",
        types=(STORAGE_ACCOUNT,),
        check=_https_only,
        tags=("storage", "security"),
    ),
    resource_policy(
        "storage-min-tls-1-2",
        "Storage accounts refuse TLS versions older than 1.2.",
        severity=Severity.HIGH,
        remediation='Set minimum_tls_version="TLS1_2" on the StorageAccount.',
        types=(STORAGE_ACCOUNT,),
        check=_storage_tls,
        tags=("storage", "security"),
    ),
    resource_policy(
        "storage-no-public-blob-access",
        "No anonymous read access to blobs, on the account or on any container.",
        severity=Severity.CRITICAL,
        remediation="Set allow_blob_public_access=False on the account and public_access=PublicAccess.NONE "
        "on every BlobContainer.",
        types=(STORAGE_ACCOUNT, BLOB_CONTAINER),
        check=_no_public_blob,
        tags=("storage", "security"),
    ),
    resource_policy(
        "storage-shared-key-disabled",
        "Storage accounts refuse shared-key and SAS access in prod: only Entra ID (workload identity).",
        severity=Severity.HIGH,
        remediation="Set storageSharedKeyAccess: false in the stack file; clients authenticate with "
        "DefaultAzureCredential.",
        types=(STORAGE_ACCOUNT,),
        check=_shared_key_off,
        tags=("storage", "security", PROD_ONLY),
    ),
    resource_policy(
        "storage-network-deny-by-default",
        "Storage accounts deny public network traffic by default in prod (private endpoint plus allowed ranges).",
        severity=Severity.HIGH,
        remediation="Set privateEndpoints: true in the stack file, so the account's network rule set defaults to Deny.",
        types=(STORAGE_ACCOUNT,),
        check=_storage_network_deny,
        tags=("storage", "network", PROD_ONLY),
    ),
    resource_policy(
        "storage-blob-versioning",
        "Blob versioning is on, so an overwritten model artifact can be restored.",
        severity=Severity.MEDIUM,
        remediation="Set is_versioning_enabled=True on the BlobServiceProperties.",
        types=(BLOB_SERVICE,),
        check=_versioning,
        tags=("storage", "recovery"),
    ),
    resource_policy(
        "storage-soft-delete",
        "Blob and container soft delete are on with at least 7 days of retention.",
        severity=Severity.MEDIUM,
        remediation="Enable delete_retention_policy and container_delete_retention_policy on the "
        "BlobServiceProperties (blobSoftDeleteDays, containerSoftDeleteDays >= 7).",
        types=(BLOB_SERVICE,),
        check=_soft_delete,
        tags=("storage", "recovery"),
    ),
    resource_policy(
        "keyvault-rbac-authorization",
        "Key Vaults use Azure RBAC, not access policies.",
        severity=Severity.HIGH,
        remediation="Set enable_rbac_authorization=True in the vault properties and grant roles per secret.",
        types=(KEY_VAULT,),
        check=_vault_rbac,
        tags=("keyvault", "security"),
    ),
    resource_policy(
        "keyvault-soft-delete",
        "Key Vault soft delete is on, with a retention of 7 to 90 days.",
        severity=Severity.HIGH,
        remediation="Leave enable_soft_delete=True and set keyVaultSoftDeleteDays between 7 and 90.",
        types=(KEY_VAULT,),
        check=_vault_soft_delete,
        tags=("keyvault", "recovery"),
    ),
    resource_policy(
        "keyvault-purge-protection",
        "Key Vault purge protection is on in prod: deleted secrets cannot be purged before retention ends.",
        severity=Severity.HIGH,
        remediation="Set keyVaultPurgeProtection: true in the stack file; note it cannot be switched off again.",
        types=(KEY_VAULT,),
        check=_vault_purge_protection,
        tags=("keyvault", "recovery", PROD_ONLY),
    ),
    resource_policy(
        "keyvault-network-deny-by-default",
        "Key Vaults deny public network traffic by default in prod.",
        severity=Severity.HIGH,
        remediation="Set privateEndpoints: true in the stack file, so the vault's network ACLs default to Deny.",
        types=(KEY_VAULT,),
        check=_vault_network_deny,
        tags=("keyvault", "network", PROD_ONLY),
    ),
    resource_policy(
        "postgres-tls-required",
        "PostgreSQL requires TLS 1.2 or later for every connection.",
        severity=Severity.HIGH,
        remediation="Keep server parameters require_secure_transport=ON and ssl_min_protocol_version=TLSv1.2 "
        "(components/azure/postgres.py SERVER_PARAMETERS).",
        types=(POSTGRES_CONFIGURATION,),
        check=_postgres_tls,
        tags=("postgres", "security"),
    ),
    resource_policy(
        "postgres-backup-retention",
        "PostgreSQL keeps point-in-time backups long enough (at least 7 days; the prod config asks for 30).",
        severity=Severity.HIGH,
        remediation="Raise postgresBackupRetentionDays in the stack file to the configured minimum.",
        types=(POSTGRES_SERVER,),
        check=_backup_retention,
        tags=("postgres", "recovery"),
        config_schema=PolicyConfigSchema(
            properties={"minimumDays": {"type": "integer", "minimum": 7, "maximum": 35, "default": 7}}
        ),
    ),
    resource_policy(
        "postgres-high-availability",
        "PostgreSQL runs with a standby (zone-redundant high availability) in prod.",
        severity=Severity.HIGH,
        remediation="Set postgresHighAvailability: ZoneRedundant (needs the GeneralPurpose or MemoryOptimized tier).",
        types=(POSTGRES_SERVER,),
        check=_postgres_ha,
        tags=("postgres", "availability", COST),
    ),
    resource_policy(
        "postgres-geo-redundant-backup",
        "PostgreSQL backups are copied to the paired region in prod.",
        severity=Severity.MEDIUM,
        remediation="Set postgresGeoRedundantBackup: true (only possible when the server is created).",
        types=(POSTGRES_SERVER,),
        check=_geo_backup,
        tags=("postgres", "recovery", COST),
    ),
    resource_policy(
        "postgres-no-public-network",
        "PostgreSQL is reachable only inside the VNet.",
        severity=Severity.CRITICAL,
        remediation="Use VNet integration (delegated subnet and private DNS zone) with public_network_access="
        '"Disabled".',
        types=(POSTGRES_SERVER,),
        check=_postgres_private,
        tags=("postgres", "network"),
    ),
    resource_policy(
        "aks-entra-rbac",
        "AKS uses Kubernetes RBAC with Entra ID integration and Azure RBAC for authorization.",
        severity=Severity.HIGH,
        remediation="Set enable_rbac=True and aad_profile(managed=True, enable_azure_rbac=True, "
        "admin_group_object_ids=aksAdminGroupObjectIds).",
        types=(AKS_CLUSTER,),
        check=_aks_entra_rbac,
        tags=("aks", "security"),
    ),
    resource_policy(
        "aks-local-accounts-disabled",
        "AKS local accounts (the static admin kubeconfig) are off in prod: access goes through Entra ID.",
        severity=Severity.HIGH,
        remediation="Set aksLocalAccounts: false in the stack file; log in with kubelogin (aksKubeloginMode).",
        types=(AKS_CLUSTER,),
        check=_aks_local_accounts,
        tags=("aks", "security", PROD_ONLY),
    ),
    resource_policy(
        "aks-workload-identity",
        "AKS has the OIDC issuer and workload identity on, so pods use federated identities instead of secrets.",
        severity=Severity.HIGH,
        remediation="Set oidc_issuer_profile.enabled=True and security_profile.workload_identity.enabled=True.",
        types=(AKS_CLUSTER,),
        check=_aks_workload_identity,
        tags=("aks", "security"),
    ),
    resource_policy(
        "aks-network-policy",
        "AKS enforces Kubernetes NetworkPolicies.",
        severity=Severity.MEDIUM,
        remediation='Set network_profile.network_policy="cilium" (with network_dataplane="cilium").',
        types=(AKS_CLUSTER,),
        check=_aks_network_policy,
        tags=("aks", "network"),
    ),
    resource_policy(
        "aks-autoscaling-bounds",
        "Every AKS node pool autoscales between explicit bounds (min <= max; system pools keep a node).",
        severity=Severity.MEDIUM,
        remediation="Set enable_auto_scaling=True with min_count <= max_count (aks*MinNodes/aks*MaxNodes).",
        types=(AKS_CLUSTER, AKS_AGENT_POOL),
        check=_aks_autoscaling,
        tags=("aks", "capacity"),
    ),
    resource_policy(
        "aks-pinned-version",
        "AKS runs a pinned Kubernetes patch version with automatic version upgrades off.",
        severity=Severity.MEDIUM,
        remediation="Set aksKubernetesVersion to a patch release (1.34.2) and upgrade_channel=none; upgrade by "
        "changing the setting in a reviewed change.",
        types=(AKS_CLUSTER, AKS_AGENT_POOL),
        check=_aks_pinned_version,
        tags=("aks", "change-control"),
    ),
    resource_policy(
        "aks-availability-zones",
        "AKS node pools span at least two availability zones in prod.",
        severity=Severity.HIGH,
        remediation='Set aksZones: ["1", "2", "3"] in the stack file (in a region with zones).',
        types=(AKS_CLUSTER, AKS_AGENT_POOL),
        check=_aks_zones,
        tags=("aks", "availability", COST),
    ),
    resource_policy(
        "azure-required-tags",
        f"Every taggable Azure resource carries the tags {', '.join(REQUIRED_TAGS)}.",
        severity=Severity.MEDIUM,
        remediation="Pass tags=settings.tags (PlatformSettings.tags) to the resource's component args.",
        types=_is_taggable,
        check=_required_tags,
        tags=("governance",),
    ),
    resource_policy(
        "stateful-resources-protected",
        "Stateful resources (PostgreSQL server and databases, storage account and container, Key Vault) "
        "are protected in prod.",
        severity=Severity.CRITICAL,
        remediation="Pass protect=settings.protect_stateful to the component (ResourceOptions(protect=True)).",
        types=STATEFUL_TYPES,
        check=_protected,
        tags=("recovery", PROD_ONLY),
    ),
    resource_policy(
        "aks-encryption-at-host",
        "Every AKS node pool encrypts its temp disk, caches and ephemeral OS disk at the host in prod.",
        severity=Severity.HIGH,
        remediation="Set aksEncryptionAtHost: true (after registering Microsoft.Compute/EncryptionAtHost on the "
        "subscription, see the first-deploy runbook).",
        types=(AKS_CLUSTER, AKS_AGENT_POOL),
        check=_aks_encryption_at_host,
        tags=("aks", "security", PROD_ONLY),
    ),
    resource_policy(
        "aks-api-server-restricted",
        "The AKS API server answers only authorized ranges (or is private) in prod, with or without API Server "
        "VNet Integration.",
        severity=Severity.HIGH,
        remediation="Set allowedIpRanges to the operators' ranges and aksDeployerIpRanges to the deploy runner's "
        "egress; with aksApiServerVnetIntegration the public endpoint keeps these ranges.",
        types=(AKS_CLUSTER,),
        check=_aks_api_server_restricted,
        tags=("aks", "network", PROD_ONLY),
    ),
    resource_policy(
        "storage-zone-redundant",
        "The artifact store survives the loss of a datacentre in prod (no LRS).",
        severity=Severity.MEDIUM,
        remediation="Set storageReplication to ZRS or GZRS.",
        types=(STORAGE_ACCOUNT,),
        check=_storage_redundancy,
        tags=("storage", "recovery", PROD_ONLY),
    ),
    resource_policy(
        "keyvault-secret-lifetime",
        "Every Key Vault secret says what it is (contentType) and when it expires (attributes.expires).",
        severity=Severity.HIGH,
        remediation="Pass content_types and expires (CredentialRotation.expires) to KeyVaultArgs; the lifetime is "
        "credentialLifetimeDays + credentialExpiryGraceDays.",
        types=(KEY_VAULT_SECRET,),
        check=_secret_lifetime,
        tags=("keyvault", "security"),
    ),
    resource_policy(
        "log-analytics-retention",
        "The audit trail's Log Analytics workspace keeps logs long enough (the prod config asks for 90 days).",
        severity=Severity.MEDIUM,
        remediation="Raise logAnalyticsRetentionDays in the stack file to the configured minimum.",
        types=(LOG_ANALYTICS_WORKSPACE,),
        check=_workspace_retention,
        tags=("audit",),
        config_schema=PolicyConfigSchema(
            properties={"minimumDays": {"type": "integer", "minimum": 30, "maximum": 730, "default": 30}}
        ),
    ),
    resource_policy(
        "postgres-entra-auth",
        "PostgreSQL accepts Entra ID sign-in, so people never need the generated password.",
        severity=Severity.MEDIUM,
        remediation="Set postgresEntraAdminGroupObjectId and postgresEntraAdminGroupName in the stack file.",
        types=(POSTGRES_SERVER,),
        check=_postgres_entra,
        tags=("postgres", "security"),
    ),
    resource_policy(
        "registry-no-quarantine",
        "Container registry quarantine stays off: no scanner here releases quarantined images.",
        severity=Severity.HIGH,
        remediation="Leave policies.quarantinePolicy unset; Defender for Containers scans without quarantine.",
        types=(CONTAINER_REGISTRY,),
        check=_registry_quarantine,
        tags=("registry", "availability"),
    ),
    stack_policy(
        "audit-diagnostic-settings",
        "AKS, Key Vault, the blob service, PostgreSQL and the container registry send their audit "
        "categories to a Log Analytics workspace.",
        severity=Severity.HIGH,
        remediation="Pass the resource's id to AuditTrailArgs.sources (layers/azure.py); categories are in "
        "layout/audit.py.",
        check=_audit_trail,
        tags=("audit", "security"),
    ),
    stack_policy(
        "defender-for-containers",
        "Microsoft Defender for Containers is on for the subscription in prod (pushed images are scanned).",
        severity=Severity.HIGH,
        remediation="Set defenderForContainers: true in the stack file (off only where the subscription is shared "
        "and its Defender plans are managed elsewhere).",
        check=_defender_for_containers,
        tags=("security", "registry", PROD_ONLY),
    ),
]
