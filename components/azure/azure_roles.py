"""Built-in Azure role definition ids used by the platform, and their full id as a Pulumi output.

The ids are pure facts kept in layout/azure_roles.py (the offline deploy-order rules read them
too); they are re-exported here so the components name every role through one module.
"""

from __future__ import annotations

import pulumi

from layout.azure_roles import (
    ACR_PULL,
    AKS_RBAC_CLUSTER_ADMIN,
    AKS_RBAC_READER,
    AKS_RBAC_WRITER,
    DNS_ZONE_CONTRIBUTOR,
    KEY_VAULT_SECRETS_USER,
    NETWORK_CONTRIBUTOR,
    STORAGE_BLOB_DATA_CONTRIBUTOR,
    STORAGE_BLOB_DATA_READER,
    role_definition_id,
)

__all__ = [
    "ACR_PULL",
    "AKS_RBAC_CLUSTER_ADMIN",
    "AKS_RBAC_READER",
    "AKS_RBAC_WRITER",
    "DNS_ZONE_CONTRIBUTOR",
    "KEY_VAULT_SECRETS_USER",
    "NETWORK_CONTRIBUTOR",
    "STORAGE_BLOB_DATA_CONTRIBUTOR",
    "STORAGE_BLOB_DATA_READER",
    "role_definition",
    "role_definition_id",
]


def role_definition(subscription_id: pulumi.Input[str], role: str) -> pulumi.Output[str]:
    """`role_definition_id` once the subscription id is known."""
    return pulumi.Output.from_input(subscription_id).apply(lambda subscription: role_definition_id(subscription, role))
