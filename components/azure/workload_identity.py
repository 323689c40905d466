"""A user-assigned identity that exactly one Kubernetes service account can use (workload identity).

The federated credential trusts tokens from the cluster's OIDC issuer for
`system:serviceaccount:<namespace>:<name>` only, and every role grant is scoped to the single
resource the workload needs (a blob container, a Key Vault secret).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import pulumi
from pulumi_azure_native import authorization, managedidentity

from components.azure import azure_roles
from layout.storage_abac import CONDITION_VERSION

TOKEN_AUDIENCE = "api://AzureADTokenExchange"


@dataclass(frozen=True)
class RoleGrant:
    role: str
    """A built-in role id from `components.azure.azure_roles`."""
    scope: pulumi.Input[str]
    label: str
    """Short name for the grant's Pulumi resource (`container`, `secret-mlflow-admin-password`)."""
    condition: str | None = None
    """An ABAC condition (version 2.0) narrowing the grant (a team's blob prefix); None: unconditional."""


@dataclass(frozen=True)
class WorkloadIdentityArgs:
    resource_group_name: pulumi.Input[str]
    location: str
    identity_name: str
    subscription_id: pulumi.Input[str]
    oidc_issuer_url: pulumi.Input[str]
    namespace: str
    service_account: str
    grants: Sequence[RoleGrant]
    purpose: str
    tags: dict[str, str] = field(default_factory=dict)


def _condition(grant: RoleGrant) -> dict[str, str]:
    """`condition` and `conditionVersion` of a conditional grant; nothing for the others (their inputs unchanged)."""
    if grant.condition is None:
        return {}
    return {"condition": grant.condition, "condition_version": CONDITION_VERSION}


class WorkloadIdentity(pulumi.ComponentResource):
    client_id: pulumi.Output[str]
    principal_id: pulumi.Output[str]
    ready: list[pulumi.Resource]
    """The federated credential and every role grant: a pod using this identity waits for them,
    or its first token exchange (or first read) fails."""

    def __init__(self, name: str, args: WorkloadIdentityArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlops:azure:WorkloadIdentity", name, None, opts)
        identity = managedidentity.UserAssignedIdentity(
            f"{name}-identity",
            resource_name_=args.identity_name,
            resource_group_name=args.resource_group_name,
            location=args.location,
            tags={**args.tags, "purpose": args.purpose[:256]},
            opts=pulumi.ResourceOptions(parent=self),
        )
        federation = managedidentity.FederatedIdentityCredential(
            f"{name}-federation",
            federated_identity_credential_resource_name=f"{args.namespace}-{args.service_account}",
            resource_name_=identity.name,
            resource_group_name=args.resource_group_name,
            issuer=args.oidc_issuer_url,
            subject=f"system:serviceaccount:{args.namespace}:{args.service_account}",
            audiences=[TOKEN_AUDIENCE],
            opts=pulumi.ResourceOptions(parent=identity),
        )
        self.ready = [federation]
        for grant in args.grants:
            grant_resource = authorization.RoleAssignment(
                f"{name}-{grant.label}",
                principal_id=identity.principal_id,
                principal_type="ServicePrincipal",
                role_definition_id=azure_roles.role_definition(args.subscription_id, grant.role),
                scope=grant.scope,
                description=f"{args.namespace}/{args.service_account}: {args.purpose}"[:1024],
                **_condition(grant),
                opts=pulumi.ResourceOptions(parent=identity),
            )
            self.ready.append(grant_resource)
        self.client_id = identity.client_id
        self.principal_id = identity.principal_id
        self.register_outputs({"clientId": self.client_id})
