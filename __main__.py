"""mlops-platform: settings → components → stack outputs. Wiring only; see ARCHITECTURE.md.

Settings are read and validated first: bad configuration raises before any resource exists.
"""

import pulumi
from pulumi_azure_native import authorization, resources

from components import cluster_layout
from components.aks import AksCluster, AksClusterArgs
from components.artifact_storage import ArtifactStorage, ArtifactStorageArgs, artifacts_destination
from components.container_registry import ContainerRegistry, ContainerRegistryArgs, image_in_registry
from components.firewall import public_exposure
from components.istio_mesh import IstioMesh, IstioMeshArgs
from components.key_vault import KeyVault, KeyVaultArgs
from components.mlflow_server import DatabaseServer, server_settings
from components.mlflow_stack import MlflowStack, MlflowStackArgs, PodResources, RoleScaling
from components.model_rollout import ModelRollout, ModelRolloutArgs
from components.monitoring import Monitoring, MonitoringArgs, MonitoringValues
from components.naming import PlatformNames
from components.network import Network, NetworkArgs
from components.platform_identities import PlatformIdentities, PlatformIdentitiesArgs
from components.postgres import PostgresArgs, PostgresServer
from components.private_link import PrivateEndpointPlacement
from components.rollout_automation import OperatorArgs, RolloutAutomation, RolloutAutomationArgs
from components.seldon_core import SeldonCore, SeldonCoreArgs
from observability.alerts import AlertThresholds
from rollout.planner import declared_predictors, plan_rollouts
from rollout.source import registry_snapshot
from settings.stack_file import from_pulumi_runtime

settings = from_pulumi_runtime()
# The registry is read (or the snapshot file loaded) and every rollout planned before anything is
# declared: an unreachable or inconsistent registry fails the program and deletes nothing.
rollout_plans = plan_rollouts(registry_snapshot(settings.rollout), settings.rollout.models)
names = PlatformNames(settings.name_prefix, settings.environment, settings.location, settings.owner)
tags = settings.tags
client = authorization.get_client_config_output()
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
        tags=tags,
    ),
)


def placement(kind: str) -> PrivateEndpointPlacement | None:
    if not settings.private_endpoints:
        return None
    return PrivateEndpointPlacement(network.private_endpoints_subnet_id, network.private_link_zone_ids[kind])


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
        zones=settings.aks_zones,
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
        shared_key_access=not settings.is_prod,
        blob_soft_delete_days=settings.blob_soft_delete_days,
        container_soft_delete_days=settings.container_soft_delete_days,
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
        purge_protection=settings.is_prod,
        exposure=exposure,
        private_endpoint=placement("vault"),
        secrets={
            cluster_layout.POSTGRES_ADMIN_PASSWORD: postgres.admin_password,
            cluster_layout.GRAFANA_ADMIN_USER: cluster_layout.GRAFANA_ADMIN_LOGIN,
            **{cluster_layout.database_uri_secret(db): uri for db, uri in postgres.connection_uris.items()},
        },
        generated_passwords=(
            cluster_layout.MLFLOW_ADMIN_PASSWORD,
            cluster_layout.MLFLOW_FLASK_SECRET_KEY,
            cluster_layout.GRAFANA_ADMIN_PASSWORD,
        ),
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
        deployer_object_id=client.object_id,
        admin_group_object_ids=settings.aks_admin_group_object_ids,
        local_accounts=settings.aks_local_accounts,
        kubelogin_mode=settings.aks_kubelogin_mode,
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
        authorized_ip_ranges=settings.allowed_ip_ranges,
        maintenance_day=settings.aks_maintenance_day,
        maintenance_start_hour=settings.aks_maintenance_start_hour,
        maintenance_duration_hours=settings.aks_maintenance_duration_hours,
        registry_id=registry.registry_id if registry else None,
        tags=tags,
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
        },
        identity_names={
            account.key: names.identity(account.key) for account in cluster_layout.WORKLOAD_SERVICE_ACCOUNTS
        },
        artifact_container_id=storage.container_id,
        secret_ids=vault.secret_ids,
        tags=tags,
    ),
)

mesh = IstioMesh(
    "istio",
    IstioMeshArgs(
        provider=aks.provider,
        cluster=aks.cluster,
        chart_version=settings.istio_chart_version,
        domain=settings.domain,
        tls_secret_name=settings.gateway_tls_secret_name,
        internal_load_balancer=settings.ingress_internal_load_balancer,
        high_availability=settings.is_prod,
    ),
)

seldon = SeldonCore(
    "seldon",
    SeldonCoreArgs(
        provider=aks.provider,
        cluster=aks.cluster,
        chart_version=settings.seldon_core_operator_chart_version,
        models_namespace=settings.models_namespace,
        istio_crds=mesh.base,
    ),
)

monitoring = Monitoring(
    "monitoring",
    MonitoringArgs(
        provider=aks.provider,
        cluster=aks.cluster,
        chart_version=settings.kube_prometheus_stack_chart_version,
        values=MonitoringValues(
            retention_days=settings.prometheus_retention_days,
            prometheus_storage_gb=settings.prometheus_storage_gb,
            alertmanager_storage_gb=settings.alertmanager_storage_gb,
            storage_class=settings.monitoring_storage_class,
            high_availability=settings.is_prod,
            domain=settings.domain,
        ),
        models_namespace=settings.models_namespace,
        mlflow_namespace=settings.mlflow_namespace,
        vault_name=vault.vault_name,
        tenant_id=client.tenant_id,
        grafana_client_id=identities.client_ids["grafana"],
        istio_crds=mesh.base,
        istiod=mesh.istiod,
        thresholds=AlertThresholds(
            model_error_ratio=settings.alert_model_error_percent / 100,
            model_p95_latency_seconds=settings.alert_model_p95_latency_ms / 1000,
            mlflow_5xx_ratio=settings.alert_mlflow_5xx_percent / 100,
        ),
        declared_predictors=declared_predictors(rollout_plans, settings.models_namespace),
    ),
)

model_rollout = ModelRollout(
    "models",
    ModelRolloutArgs(
        plans=rollout_plans,
        namespace=settings.models_namespace,
        domain=settings.domain,
        storage_account=names.storage_account,
        artifacts_destination=artifacts_destination(names.storage_account, settings.artifact_container),
        storage_secret=settings.rollout.storage_secret,
        reader_client_id=identities.client_ids["model-reader"],
        provider=aks.provider,
        cluster=aks.cluster,
        depends_on=[seldon],
    ),
)

automation = RolloutAutomation(
    "automation",
    RolloutAutomationArgs(
        namespace=cluster_layout.AUTOMATION_NAMESPACE,
        stack=pulumi.get_stack(),
        schedule=settings.rollout_analysis_schedule,
        image=image_in_registry(settings.rollout_analysis_image, registry),
        analyzer_client_id=identities.client_ids["rollout-analyzer"],
        tenant_id=client.tenant_id,
        key_vault_name=vault.vault_name,
        tracking_uri=settings.rollout.tracking_uri,
        mlflow_username=settings.mlflow_admin_username,
        prometheus_url=settings.rollout.prometheus_url or monitoring.prometheus_url,
        provider=aks.provider,
        cluster=aks.cluster,
        operator=OperatorArgs(
            chart_version=settings.pulumi_operator_chart_version,
            resync_seconds=settings.pulumi_operator_resync_seconds,
            project_repo=settings.pulumi_project_repo,
            branch=settings.pulumi_project_branch,
            backend_url=settings.pulumi_backend_url,
            stack_name=settings.pulumi_stack_name,
            deployer_client_id=settings.pulumi_deployer_client_id,
            tenant_id=client.tenant_id,
            subscription_id=client.subscription_id,
        )
        if settings.pulumi_operator
        else None,
    ),
)

mlflow = MlflowStack(
    "mlflow",
    MlflowStackArgs(
        namespace=settings.mlflow_namespace,
        jobs_namespace=settings.ml_jobs_namespace,
        models_namespace=settings.models_namespace,
        monitoring_namespace=cluster_layout.MONITORING_NAMESPACE,
        image=image_in_registry(settings.mlflow_image, registry),
        # Host and destination are filled in from the database and storage outputs.
        server=server_settings(settings, DatabaseServer(host="", user=settings.postgres_admin_login), ""),
        database_host=postgres.fqdn,
        artifacts_destination=storage.artifacts_destination,
        public_host=cluster_layout.public_host("mlflow", settings.domain),
        gateway=cluster_layout.PLATFORM_GATEWAY,
        tenant_id=client.tenant_id,
        key_vault_name=vault.vault_name,
        client_ids=identities.client_ids,
        scaling={
            "tracking": RoleScaling(settings.mlflow_tracking_min_replicas, settings.mlflow_tracking_max_replicas),
            "registry": RoleScaling(settings.mlflow_registry_min_replicas, settings.mlflow_registry_max_replicas),
            "artifacts": RoleScaling(settings.mlflow_artifacts_replicas, settings.mlflow_artifacts_replicas),
        },
        resources=PodResources(
            cpu_request=settings.mlflow_cpu_request,
            cpu_limit=settings.mlflow_cpu_limit,
            memory_request=settings.mlflow_memory_request,
            memory_limit=settings.mlflow_memory_limit,
        ),
        zone_spread=len(settings.aks_zones) > 1,
        postgres_subnet=settings.postgres_subnet,
        deleted_with=aks.cluster,
    ),
    opts=pulumi.ResourceOptions(providers=[aks.provider]),
)

pulumi.export("environment", settings.environment)
pulumi.export("location", settings.location)
pulumi.export("tenantId", client.tenant_id)
pulumi.export("resourceGroupName", rg_name)
pulumi.export("postgresFqdn", postgres.fqdn)
pulumi.export("postgresDatabases", list(postgres.connection_uris))
pulumi.export("storageAccountName", storage.account_name)
pulumi.export("artifactContainerName", storage.container_name)
pulumi.export("artifactsDestination", storage.artifacts_destination)
pulumi.export("keyVaultName", vault.vault_name)
pulumi.export("keyVaultUri", vault.vault_uri)
pulumi.export("containerRegistryLoginServer", registry.login_server if registry else None)
pulumi.export("clusterName", aks.cluster_name)
pulumi.export("oidcIssuerUrl", aks.oidc_issuer_url)
pulumi.export("kubeconfig", aks.kubeconfig)
pulumi.export("workloadIdentityClientIds", identities.client_ids)
pulumi.export("models", model_rollout.served)
pulumi.export("gatewayAddress", mesh.gateway_address)
pulumi.export("grafanaUrl", monitoring.grafana_url)
pulumi.export("prometheusUrl", monitoring.prometheus_url)
pulumi.export("mlflowTrackingUri", mlflow.tracking_uri)
pulumi.export("mlflowRegistryUri", mlflow.registry_uri)
pulumi.export("mlflowArtifactsDestination", mlflow.artifacts_destination)
pulumi.export("mlflowJobsNamespace", mlflow.jobs_namespace)
