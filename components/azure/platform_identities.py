"""One workload identity per entry of `cluster_layout.WORKLOAD_SERVICE_ACCOUNTS`, least privilege."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import pulumi

from components.azure import azure_roles
from components.azure.workload_identity import RoleGrant, WorkloadIdentity, WorkloadIdentityArgs
from layout.cluster_layout import WORKLOAD_SERVICE_ACCOUNTS, WorkloadServiceAccount


@dataclass(frozen=True)
class PlatformIdentitiesArgs:
    resource_group_name: pulumi.Input[str]
    location: str
    subscription_id: pulumi.Input[str]
    oidc_issuer_url: pulumi.Input[str]
    namespaces: Mapping[str, str]
    """Namespace per `WorkloadServiceAccount.namespace` kind."""
    identity_names: Mapping[str, str]
    """Azure name per `WorkloadServiceAccount.key`."""
    artifact_container_id: pulumi.Input[str]
    secret_ids: Mapping[str, pulumi.Input[str]]
    server_serves_artifacts: bool = False
    """MLflow workspaces (teams): the tracking role proxies artifacts (`layout.mlflow_server`), so the
    servers' identity writes blobs of the container too."""
    dns_zone_id: pulumi.Input[str] | None = None
    """The public DNS zone cert-manager answers DNS-01 challenges in (DNS Zone Contributor there only)."""
    tags: dict[str, str] = field(default_factory=dict)


def role_grants(account: WorkloadServiceAccount, args: PlatformIdentitiesArgs) -> list[RoleGrant]:
    """Blob roles on the one container; Key Vault Secrets User on each secret, not the vault."""
    grants = []
    if account.access == "artifacts-write":
        grants.append(RoleGrant(azure_roles.STORAGE_BLOB_DATA_CONTRIBUTOR, args.artifact_container_id, "container"))
    if account.key == "mlflow-server" and args.server_serves_artifacts:
        grants.append(RoleGrant(azure_roles.STORAGE_BLOB_DATA_CONTRIBUTOR, args.artifact_container_id, "container"))
    if account.access == "artifacts-read":
        grants.append(RoleGrant(azure_roles.STORAGE_BLOB_DATA_READER, args.artifact_container_id, "container"))
    if account.access == "dns-zone":
        if args.dns_zone_id is None:
            raise ValueError(f"{account.key} needs the public DNS zone id (PlatformIdentitiesArgs.dns_zone_id)")
        grants.append(RoleGrant(azure_roles.DNS_ZONE_CONTRIBUTOR, args.dns_zone_id, "dns-zone"))
    grants += [
        RoleGrant(azure_roles.KEY_VAULT_SECRETS_USER, args.secret_ids[secret], f"secret-{secret}")
        for secret in account.secrets
    ]
    return grants


class PlatformIdentities(pulumi.ComponentResource):
    client_ids: dict[str, pulumi.Output[str]]
    """Client id per service-account key, for the `azure.workload.identity/client-id` annotation."""
    ready: dict[str, list[pulumi.Resource]]
    """Per service-account key: federated credential and role grants its pods wait for."""
    principal_ids: dict[str, pulumi.Output[str]]
    """Per service-account key: the identity's object id, for grants declared elsewhere (a team's
    webhook secret, read by the webhook receiver, is declared with the team)."""

    def __init__(self, name: str, args: PlatformIdentitiesArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlops:azure:PlatformIdentities", name, None, opts)
        self.client_ids = {}
        self.ready = {}
        self.principal_ids = {}
        for account in WORKLOAD_SERVICE_ACCOUNTS:
            identity = WorkloadIdentity(
                f"{name}-{account.key}",
                WorkloadIdentityArgs(
                    resource_group_name=args.resource_group_name,
                    location=args.location,
                    identity_name=args.identity_names[account.key],
                    subscription_id=args.subscription_id,
                    oidc_issuer_url=args.oidc_issuer_url,
                    namespace=args.namespaces[account.namespace],
                    service_account=account.service_account,
                    grants=role_grants(account, args),
                    purpose=account.purpose,
                    tags=args.tags,
                ),
                opts=pulumi.ResourceOptions(parent=self),
            )
            self.client_ids[account.key] = identity.client_id
            self.ready[account.key] = identity.ready
            self.principal_ids[account.key] = identity.principal_id
        self.register_outputs({"clientIds": self.client_ids})
