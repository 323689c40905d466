"""Blob storage for MLflow artifacts: private, HTTPS/TLS 1.2 only, versioned, soft-deleted.

Space comes back in two steps: `mlflow gc` (a CronJob in the MLflow namespace) deletes the
artifacts of deleted runs and logged models; with versioning on, a deleted blob lives on as a
previous version, which the lifecycle management policy deletes `blob_version_retention_days`
after it was created (snapshots likewise). Soft-deleted blobs and versions are purged by the
soft-delete retention (`blob_soft_delete_days`): lifecycle rules do not act on soft-deleted data.

Point-in-time restore of block blobs (`restore_days` > 0) rolls the container back to an earlier
time; it needs versioning, the change feed (kept longer than the restore window) and soft delete
longer than the window (the settings check that). A deleted container comes back through
container soft delete instead, which a blob restore cannot do.

Pods authenticate with workload identity (Entra ID), never with account keys; in prod shared-key
access is off, so a leaked key or SAS cannot read models.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pulumi
from pulumi_azure_native import storage

from components.azure.private_link import PrivateEndpointPlacement, private_link
from layout.firewall import PublicExposure


def artifacts_destination(account: str, container: str) -> str:
    """`wasbs://<container>@<account>.blob.core.windows.net/`: the MLflow artifacts root."""
    return f"wasbs://{container}@{account}.blob.core.windows.net/"


def lifecycle_policy(container: str, version_retention_days: int) -> storage.ManagementPolicySchemaArgs:
    """Delete previous versions and snapshots of the artifact blobs `version_retention_days` after creation."""
    return storage.ManagementPolicySchemaArgs(
        rules=[
            storage.ManagementPolicyRuleArgs(
                name="expire-previous-versions",
                enabled=True,
                type=storage.RuleType.LIFECYCLE,
                definition=storage.ManagementPolicyDefinitionArgs(
                    filters=storage.ManagementPolicyFilterArgs(
                        blob_types=["blockBlob"], prefix_match=[f"{container}/"]
                    ),
                    actions=storage.ManagementPolicyActionArgs(
                        version=storage.ManagementPolicyVersionArgs(
                            delete=storage.DateAfterCreationArgs(
                                days_after_creation_greater_than=version_retention_days
                            )
                        ),
                        snapshot=storage.ManagementPolicySnapShotArgs(
                            delete=storage.DateAfterCreationArgs(
                                days_after_creation_greater_than=version_retention_days
                            )
                        ),
                    ),
                ),
            )
        ]
    )


@dataclass(frozen=True)
class ArtifactStorageArgs:
    resource_group_name: pulumi.Input[str]
    location: str
    account_name: str
    container_name: str
    replication: str
    shared_key_access: bool
    blob_soft_delete_days: int
    container_soft_delete_days: int
    version_retention_days: int
    exposure: PublicExposure
    private_endpoint: PrivateEndpointPlacement | None
    restore_days: int = 0
    """Point-in-time restore window of the block blobs in days (0: off)."""
    tags: dict[str, str] = field(default_factory=dict)
    protect: bool = False


def restore_properties(
    restore_days: int, soft_delete_days: int
) -> tuple[storage.ChangeFeedArgs | None, storage.RestorePolicyPropertiesArgs | None]:
    """Change feed and restore policy of the blob service for a restore window (none when off).

    The change feed is kept a day beyond the soft-delete retention, so every change a restore
    could roll back is still in the feed."""
    if restore_days == 0:
        return None, None
    return (
        storage.ChangeFeedArgs(enabled=True, retention_in_days=soft_delete_days + 1),
        storage.RestorePolicyPropertiesArgs(enabled=True, days=restore_days),
    )


class ArtifactStorage(pulumi.ComponentResource):
    account_id: pulumi.Output[str]
    account_name: pulumi.Output[str]
    container_name: pulumi.Output[str]
    blob_service_id: pulumi.Output[str]
    """`<account id>/blobServices/default`, the source of the blob audit logs."""
    container_id: pulumi.Output[str]
    """Scope of the blob-data role assignments: the one container, not the account."""
    artifacts_destination: pulumi.Output[str]
    """`wasbs://<container>@<account>.blob.core.windows.net/`, the MLflow artifacts root."""

    def __init__(self, name: str, args: ArtifactStorageArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlops:azure:ArtifactStorage", name, None, opts)
        account = storage.StorageAccount(
            f"{name}-account",
            account_name=args.account_name,
            resource_group_name=args.resource_group_name,
            location=args.location,
            kind="StorageV2",
            sku=storage.SkuArgs(name=f"Standard_{args.replication}"),
            access_tier=storage.AccessTier.HOT,
            enable_https_traffic_only=True,
            minimum_tls_version="TLS1_2",
            allow_blob_public_access=False,
            allow_shared_key_access=args.shared_key_access,
            default_to_o_auth_authentication=True,
            allow_cross_tenant_replication=False,
            is_local_user_enabled=False,
            is_sftp_enabled=False,
            public_network_access=args.exposure.public_network_access,
            network_rule_set=storage.NetworkRuleSetArgs(
                default_action=storage.DefaultAction(args.exposure.default_action),
                bypass="AzureServices",
                ip_rules=[
                    storage.IPRuleArgs(i_p_address_or_range=cidr.removesuffix("/32"), action=storage.Action.ALLOW)
                    for cidr in args.exposure.allowed_ip_ranges
                ],
            ),
            tags=args.tags,
            opts=pulumi.ResourceOptions(parent=self, protect=args.protect),
        )
        change_feed, restore_policy = restore_properties(args.restore_days, args.blob_soft_delete_days)
        blob_service = storage.BlobServiceProperties(
            f"{name}-blob-service",
            blob_services_name="default",
            account_name=account.name,
            resource_group_name=args.resource_group_name,
            is_versioning_enabled=True,
            change_feed=change_feed,
            restore_policy=restore_policy,
            delete_retention_policy=storage.DeleteRetentionPolicyArgs(
                enabled=True, days=args.blob_soft_delete_days, allow_permanent_delete=False
            ),
            container_delete_retention_policy=storage.DeleteRetentionPolicyArgs(
                enabled=True, days=args.container_soft_delete_days
            ),
            opts=pulumi.ResourceOptions(parent=account),
        )
        container = storage.BlobContainer(
            f"{name}-container",
            container_name=args.container_name,
            account_name=account.name,
            resource_group_name=args.resource_group_name,
            public_access=storage.PublicAccess.NONE,
            opts=pulumi.ResourceOptions(parent=account, protect=args.protect, depends_on=[blob_service]),
        )
        storage.ManagementPolicy(
            f"{name}-lifecycle",
            management_policy_name="default",
            account_name=account.name,
            resource_group_name=args.resource_group_name,
            policy=lifecycle_policy(args.container_name, args.version_retention_days),
            opts=pulumi.ResourceOptions(parent=account, depends_on=[blob_service]),
        )
        private_link(
            self,
            name,
            args,
            endpoint_name=f"{args.account_name}-blob-pe",
            target_resource_id=account.id,
            group_id="blob",
        )
        self.account_id = account.id
        self.account_name = account.name
        self.blob_service_id = blob_service.id
        self.container_name = container.name
        self.container_id = container.id
        self.artifacts_destination = pulumi.Output.all(account.name, container.name).apply(
            lambda names: artifacts_destination(names[0], names[1])
        )
        self.register_outputs(
            {
                "accountName": self.account_name,
                "containerName": self.container_name,
                "artifactsDestination": self.artifacts_destination,
            }
        )
