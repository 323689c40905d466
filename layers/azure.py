"""The Azure layer: resource group, network, PostgreSQL, storage, Key Vault, registry, AKS, identities."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
from pulumi_azure_native import authorization, resources

from components.azure.aks import AksCluster, AksClusterArgs
from components.azure.artifact_storage import ArtifactStorage, ArtifactStorageArgs
from components.azure.audit_trail import AuditTrail, AuditTrailArgs
from components.azure.container_registry import ContainerRegistry, ContainerRegistryArgs
from components.azure.credential_rotation import CredentialRotation, CredentialRotationArgs
from components.azure.defender import DefenderForContainers, DefenderForContainersArgs
from components.azure.dns import PublicDnsZone, PublicDnsZoneArgs
from components.azure.key_vault import KeyVault, KeyVaultArgs
from components.azure.network import Network, NetworkArgs
from components.azure.platform_identities import PlatformIdentities, PlatformIdentitiesArgs
from components.azure.platform_images import BuildRegistry, PlatformImages, PlatformImagesArgs
from components.azure.postgres import EntraAdministrator, PgBouncerArgs, PostgresArgs, PostgresRestore, PostgresServer
from components.azure.private_link import PrivateEndpointPlacement
from layout import cluster_layout
from layout.audit import AuditSourceKind
from layout.firewall import api_server_ranges, public_exposure
from layout.images import PLATFORM_IMAGES
from layout.naming import PlatformNames
from settings.loader import config_key
from settings.model import PlatformSettings
from settings.problems import SettingsError
from settings.restore import source_problems


@dataclass(frozen=True)
class AzureLayer:
    """What the cluster layer and the stack outputs need from Azure."""

    names: PlatformNames
    client: pulumi.Output[authorization.GetClientConfigResult]
    resource_group: resources.ResourceGroup
    network: Network
    postgres: PostgresServer
    storage: ArtifactStorage
    vault: KeyVault
    registry: ContainerRegistry | None
    images: PlatformImages
    aks: AksCluster
    identities: PlatformIdentities
    dns_zone: PublicDnsZone
    rotation: CredentialRotation
    audit: AuditTrail


def declare(settings: PlatformSettings) -> AzureLayer:
    """Declare every Azure resource of the stack, in the order the engine needs them."""
    client = authorization.get_client_config_output()
    # Global names hash the subscription id, so they must be plain text before any resource is
    # declared: the one synchronous invoke of the program (it runs in previews too).
    subscription_id = authorization.get_client_config().subscription_id
    names = PlatformNames(
        settings.name_prefix, settings.environment, settings.location, settings.owner, subscription_id
    )
    if settings.postgres_restore:
        # The one check the settings cannot make alone: the source is in this subscription and is
        # not the server this stack declares. Still before the first resource.
        problems = source_problems(
            settings.postgres_restore_source_server_id,
            subscription_id,
            names.postgres_server,
            config_key("postgres_restore_source_server_id"),
        )
        if problems:
            raise SettingsError(problems)
    tags = settings.tags
    exposure = public_exposure(settings.private_endpoints, settings.allowed_ip_ranges)

    resource_group = resources.ResourceGroup(
        "resource-group", resource_group_name=names.resource_group, location=settings.location, tags=tags
    )
    rg_name = resource_group.name

    network = Network(
        "network",
        NetworkArgs(
            resource_group_name=rg_name,
            location=settings.location,
            name=names.regional("vnet"),
            address_space=settings.vnet_address_space,
            aks_nodes_prefix=settings.aks_nodes_subnet,
            postgres_prefix=settings.postgres_subnet,
            private_endpoints_prefix=settings.private_endpoints_subnet,
            postgres_dns_zone=names.postgres_dns_zone,
            private_endpoints=settings.private_endpoints,
            api_server_prefix=settings.aks_api_server_subnet if settings.aks_api_server_vnet_integration else None,
            tags=tags,
        ),
    )

    def placement(kind: str) -> PrivateEndpointPlacement | None:
        if not settings.private_endpoints:
            return None
        return PrivateEndpointPlacement(network.private_endpoints_subnet_id, network.private_link_zone_ids[kind])

    rotation = CredentialRotation(
        "credentials",
        CredentialRotationArgs(
            lifetime_days=settings.credential_lifetime_days, grace_days=settings.credential_expiry_grace_days
        ),
    )

    postgres = PostgresServer(
        "postgres",
        PostgresArgs(
            resource_group_name=rg_name,
            location=settings.location,
            server_name=names.postgres_server,
            version=settings.postgres_version,
            sku_name=settings.postgres_sku_name,
            sku_tier=settings.postgres_sku_tier,
            storage_gb=settings.postgres_storage_gb,
            backup_retention_days=settings.postgres_backup_retention_days,
            geo_redundant_backup=settings.postgres_geo_redundant_backup,
            high_availability=settings.postgres_high_availability,
            admin_login=settings.postgres_admin_login,
            delegated_subnet_id=network.postgres_subnet_id,
            private_dns_zone_id=network.postgres_dns_zone_id,
            dns_zone_link=network.postgres_dns_zone_link,
            zones=settings.aks_zones,
            password_keepers=rotation.keepers,
            entra_admin=(
                EntraAdministrator(
                    object_id=settings.postgres_entra_admin_group_object_id,
                    principal_name=settings.postgres_entra_admin_group_name,
                    tenant_id=client.tenant_id,
                )
                if settings.postgres_entra_admin_group_object_id
                else None
            ),
            restore=PostgresRestore(
                create_mode=settings.postgres_create_mode,
                source_server_id=settings.postgres_restore_source_server_id,
                point_in_time_utc=settings.postgres_restore_point_in_time,
            )
            if settings.postgres_restore
            else None,
            pgbouncer=PgBouncerArgs(
                default_pool_size=settings.postgres_pgbouncer_pool_size,
                max_client_conn=settings.postgres_pgbouncer_max_client_connections,
            )
            if settings.postgres_pgbouncer
            else None,
            tags=tags,
            protect=settings.protect_stateful,
        ),
    )

    storage = ArtifactStorage(
        "artifacts",
        ArtifactStorageArgs(
            resource_group_name=rg_name,
            location=settings.location,
            account_name=names.storage_account,
            container_name=settings.artifact_container,
            replication=settings.storage_replication,
            shared_key_access=settings.storage_shared_key_access,
            blob_soft_delete_days=settings.blob_soft_delete_days,
            container_soft_delete_days=settings.container_soft_delete_days,
            version_retention_days=settings.blob_version_retention_days,
            restore_days=settings.blob_restore_days,
            exposure=exposure,
            private_endpoint=placement("blob"),
            tags=tags,
            protect=settings.protect_stateful,
        ),
    )

    vault = KeyVault(
        "key-vault",
        KeyVaultArgs(
            resource_group_name=rg_name,
            location=settings.location,
            vault_name=names.key_vault,
            tenant_id=client.tenant_id,
            soft_delete_days=settings.key_vault_soft_delete_days,
            purge_protection=settings.key_vault_purge_protection,
            exposure=exposure,
            private_endpoint=placement("vault"),
            secrets={
                cluster_layout.POSTGRES_ADMIN_PASSWORD: postgres.admin_password,
                cluster_layout.GRAFANA_ADMIN_USER: cluster_layout.GRAFANA_ADMIN_LOGIN,
                **{cluster_layout.database_uri_secret(db): uri for db, uri in postgres.connection_uris.items()},
            },
            generated_passwords=(cluster_layout.MLFLOW_FLASK_SECRET_KEY, cluster_layout.ROLLOUT_HOOK_SIGNING_KEY),
            bootstrap_passwords=(
                cluster_layout.MLFLOW_ADMIN_PASSWORD,
                cluster_layout.GRAFANA_ADMIN_PASSWORD,
                # Never rotated: a new passphrase could not decrypt the models stack's state.
                cluster_layout.MODELS_STACK_PASSPHRASE,
                # Stored in MLflow by the registration Job, which reruns only when its spec changes.
                cluster_layout.WEBHOOK_SIGNING_SECRET,
                # Set in MLflow by the `ensure-reader` Job, which reruns only when its spec changes.
                cluster_layout.MODELS_READER_PASSWORD,
            ),
            generated_fernet_keys=(cluster_layout.MLFLOW_WEBHOOK_ENCRYPTION_KEY,),
            password_keepers=rotation.keepers,
            content_types={
                cluster_layout.POSTGRES_ADMIN_PASSWORD: "password",
                cluster_layout.GRAFANA_ADMIN_USER: "username",
                cluster_layout.MLFLOW_ADMIN_PASSWORD: "password",
                cluster_layout.GRAFANA_ADMIN_PASSWORD: "password",
                cluster_layout.MLFLOW_FLASK_SECRET_KEY: "key",
                cluster_layout.ROLLOUT_HOOK_SIGNING_KEY: "key",
                cluster_layout.MODELS_STACK_PASSPHRASE: "password",
                cluster_layout.WEBHOOK_SIGNING_SECRET: "key",
                cluster_layout.MODELS_READER_PASSWORD: "password",
                cluster_layout.MLFLOW_WEBHOOK_ENCRYPTION_KEY: "key",
                **{cluster_layout.database_uri_secret(db): "connection-string" for db in postgres.connection_uris},
            },
            expires=rotation.expires,
            tags=tags,
            protect=settings.protect_stateful,
        ),
    )

    registry = (
        ContainerRegistry(
            "registry",
            ContainerRegistryArgs(
                resource_group_name=rg_name,
                location=settings.location,
                registry_name=names.container_registry,
                sku=settings.container_registry_sku,
                exposure=exposure,
                private_endpoint=placement("registry"),
                zone_redundant=bool(settings.aks_zones),
                tags=tags,
            ),
        )
        if settings.container_registry
        else None
    )

    images = PlatformImages(
        "images",
        PlatformImagesArgs(
            images=PLATFORM_IMAGES,
            registry=BuildRegistry(registry.login_server, client.tenant_id) if registry else None,
            prebuilt=settings.prebuilt_images,
        ),
    )

    aks = AksCluster(
        "aks",
        AksClusterArgs(
            resource_group_name=rg_name,
            location=settings.location,
            cluster_name=names.regional("aks"),
            kubernetes_version=settings.aks_kubernetes_version,
            tier=settings.aks_tier,
            tenant_id=client.tenant_id,
            subscription_id=client.subscription_id,
            deployer_object_ids=settings.aks_deployer_object_ids,
            admin_group_object_ids=settings.aks_admin_group_object_ids,
            local_accounts=settings.aks_local_accounts,
            kubelogin_mode=settings.aks_kubelogin_mode,
            kubelogin_client_id=settings.aks_kubelogin_client_id,
            rbac_propagation_seconds=settings.aks_rbac_propagation_seconds,
            nodes_subnet_id=network.aks_nodes_subnet_id,
            zones=settings.aks_zones,
            system_vm_size=settings.aks_system_vm_size,
            system_min_nodes=settings.aks_system_min_nodes,
            system_max_nodes=settings.aks_system_max_nodes,
            workload_vm_size=settings.aks_workload_vm_size,
            workload_min_nodes=settings.aks_workload_min_nodes,
            workload_max_nodes=settings.aks_workload_max_nodes,
            service_cidr=settings.aks_service_cidr,
            dns_service_ip=settings.aks_dns_service_ip,
            pod_cidr=settings.aks_pod_cidr,
            authorized_ip_ranges=api_server_ranges(settings.allowed_ip_ranges, settings.aks_deployer_ip_ranges),
            maintenance_day=settings.aks_maintenance_day,
            maintenance_start_hour=settings.aks_maintenance_start_hour,
            maintenance_duration_hours=settings.aks_maintenance_duration_hours,
            registry_id=registry.registry_id if registry else None,
            api_server_subnet_id=network.api_server_subnet_id,
            encryption_at_host=settings.aks_encryption_at_host,
            tags=tags,
        ),
    )

    dns_zone = PublicDnsZone(
        "dns",
        PublicDnsZoneArgs(
            zone_name=settings.public_dns_zone,
            subscription_id=client.subscription_id,
            existing_resource_group=settings.dns_zone_resource_group,
            resource_group_name=rg_name,
            tags=tags,
            protect=settings.protect_stateful,
        ),
    )

    identities = PlatformIdentities(
        "identities",
        PlatformIdentitiesArgs(
            resource_group_name=rg_name,
            location=settings.location,
            subscription_id=client.subscription_id,
            oidc_issuer_url=aks.oidc_issuer_url,
            namespaces={
                "mlflow": settings.mlflow_namespace,
                "models": settings.models_namespace,
                "monitoring": cluster_layout.MONITORING_NAMESPACE,
                "automation": cluster_layout.AUTOMATION_NAMESPACE,
                "ml-jobs": settings.ml_jobs_namespace,
                "cert-manager": cluster_layout.CERT_MANAGER_NAMESPACE,
            },
            identity_names={
                account.key: names.identity(account.key) for account in cluster_layout.WORKLOAD_SERVICE_ACCOUNTS
            },
            artifact_container_id=storage.container_id,
            secret_ids=vault.secret_ids,
            server_serves_artifacts=bool(settings.teams),
            dns_zone_id=dns_zone.zone_id,
            tags=tags,
        ),
    )

    audit_sources: dict[AuditSourceKind, pulumi.Input[str]] = {
        "aks": aks.cluster_id,
        "key-vault": vault.vault_id,
        "blob": storage.blob_service_id,
        "postgres": postgres.server_id,
    }
    if registry is not None:
        audit_sources["registry"] = registry.registry_id
    audit = AuditTrail(
        "audit",
        AuditTrailArgs(
            resource_group_name=rg_name,
            location=settings.location,
            workspace_name=names.regional("log"),
            retention_days=settings.log_analytics_retention_days,
            daily_quota_gb=settings.log_analytics_daily_quota_gb,
            sources=audit_sources,
            tags=tags,
        ),
    )
    if settings.defender_for_containers:
        DefenderForContainers("defender", DefenderForContainersArgs(subscription_id=client.subscription_id))

    return AzureLayer(
        names=names,
        client=client,
        resource_group=resource_group,
        network=network,
        postgres=postgres,
        storage=storage,
        vault=vault,
        registry=registry,
        images=images,
        aks=aks,
        identities=identities,
        dns_zone=dns_zone,
        rotation=rotation,
        audit=audit,
    )
