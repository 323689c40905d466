"""What the audit trail collects from each Azure resource: diagnostic-setting log categories.

Category names are Azure Monitor's, per resource type ("Supported logs for
Microsoft.ContainerService/managedClusters", "... Microsoft.KeyVault/vaults",
"... Microsoft.Storage/storageAccounts/blobServices", "... Microsoft.DBforPostgreSQL/flexibleServers",
"... Microsoft.ContainerRegistry/registries"). The choice is cost-aware: AKS sends
`kube-audit-admin` (every change, no get/list/watch), not `kube-audit` (which also logs every
read and is typically 10x the volume); PostgreSQL sends its server log (connections, slow
statements, checkpoints as configured) but not the query-store and statistics categories.
The policy pack checks deployed settings against the same table.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

AuditSourceKind = Literal["aks", "key-vault", "blob", "postgres", "registry"]


@dataclass(frozen=True)
class AuditSource:
    resource_type: str
    """ARM type of the audited resource."""
    categories: tuple[str, ...]
    dedicated_tables: bool
    """Whether the type writes resource-specific tables (`Dedicated`) instead of AzureDiagnostics."""
    answers: str
    """What question after an incident the categories answer (README)."""


AUDIT_SOURCES: Final[dict[AuditSourceKind, AuditSource]] = {
    "aks": AuditSource(
        "Microsoft.ContainerService/managedClusters",
        ("kube-audit-admin", "guard", "cluster-autoscaler", "kube-apiserver"),
        True,
        "who changed what in the cluster (API-server audit without reads), Entra sign-ins to the cluster, "
        "scaling decisions, API-server errors",
    ),
    "key-vault": AuditSource(
        "Microsoft.KeyVault/vaults",
        ("AuditEvent",),
        True,
        "who read or changed which secret, from where",
    ),
    "blob": AuditSource(
        "Microsoft.Storage/storageAccounts/blobServices",
        ("StorageRead", "StorageWrite", "StorageDelete"),
        False,
        "who read, wrote or deleted which model artifact",
    ),
    "postgres": AuditSource(
        "Microsoft.DBforPostgreSQL/flexibleServers",
        ("PostgreSQLLogs",),
        False,
        "connections and disconnections (with role and client address), failed sign-ins, slow statements",
    ),
    "registry": AuditSource(
        "Microsoft.ContainerRegistry/registries",
        ("ContainerRegistryLoginEvents", "ContainerRegistryRepositoryEvents"),
        False,
        "who logged in to the registry, which image was pushed, pulled or deleted",
    ),
}
