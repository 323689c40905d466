"""Built-in Azure role definition ids the platform grants (the same in every tenant), and their full id.

Pure facts: the components grant them (components/azure/azure_roles.py adds the Pulumi form of
`role_definition_id`), the offline deploy-order rules recognise the grants by them.
"""

from __future__ import annotations

from typing import Final

STORAGE_BLOB_DATA_CONTRIBUTOR: Final = "ba92f5b4-2d11-453d-a403-e96b0029c9fe"
STORAGE_BLOB_DATA_READER: Final = "2a2b9908-6ea1-4ae2-8e65-a410df84e7d1"
KEY_VAULT_SECRETS_USER: Final = "4633458b-17de-408a-b874-0445c86b69e6"
ACR_PULL: Final = "7f951dda-4ed3-4680-a7ca-43fe172d538d"
NETWORK_CONTRIBUTOR: Final = "4d97b98b-1d4f-4787-a291-c67834d212e7"
AKS_RBAC_CLUSTER_ADMIN: Final = "b1ff04bb-8a4e-4dc4-8eb5-8693973ce19b"
DNS_ZONE_CONTRIBUTOR: Final = "befefa01-2a29-4197-83a8-272ff33ce314"
AKS_RBAC_WRITER: Final = "a7ffa36f-339b-4b5c-8bdf-e2c188b2c0eb"
"""Azure Kubernetes Service RBAC Writer: read/write most objects of a namespace (no Roles, RoleBindings,
ResourceQuotas); assigned at `<cluster id>/namespaces/<ns>` it is that namespace only."""
AKS_RBAC_READER: Final = "7f6c6a51-bcf8-42ba-9220-52d62157d7db"
"""Azure Kubernetes Service RBAC Reader: read most objects of a namespace (no Secrets)."""


def namespace_scope(cluster_id: str, namespace: str) -> str:
    """The scope of an Azure RBAC for Kubernetes assignment confined to one namespace."""
    return f"{cluster_id}/namespaces/{namespace}"


def role_definition_id(subscription_id: str, role: str) -> str:
    """The full resource id a role assignment needs for a built-in role."""
    return f"/subscriptions/{subscription_id}/providers/Microsoft.Authorization/roleDefinitions/{role}"
