"""The cluster layer: Istio, Seldon Core, monitoring, MLflow and the rollout automation.

Model delivery (the SeldonDeployments) is not here: the models stack (`models/`) declares it
from the platform's outputs and the registry, so this layer never talks to MLflow.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi

from components.azure.dns import GatewayDnsRecords, GatewayDnsRecordsArgs
from components.cluster.gateway_certificate import GatewayCertificate, GatewayCertificateArgs
from components.cluster.istio_mesh import IstioMesh, IstioMeshArgs
from components.cluster.mlflow import MlflowStack, MlflowStackArgs, PodResources, RoleScaling
from components.cluster.mlflow_projects import MlflowProjects, MlflowProjectsArgs
from components.cluster.models_reader import ModelsReader, ModelsReaderArgs
from components.cluster.models_stack import OperatorArgs
from components.cluster.monitoring import Monitoring, MonitoringArgs, MonitoringValues
from components.cluster.rollout_automation import RolloutAutomation, RolloutAutomationArgs
from components.cluster.seldon_core import SeldonCore, SeldonCoreArgs
from components.cluster.webhook_receiver import WebhookReceiver, WebhookReceiverArgs
from components.cluster.webhook_teams import TeamHook
from components.cluster.workload_identity import pod_identities
from layers.azure import AzureLayer
from layers.mlflow_servers import cluster_database, server_settings
from layout import cluster_layout
from layout.platform_outputs import mlflow_in_cluster_uri
from observability.alerts import AlertThresholds, WatchedStacks
from settings.model import PlatformSettings


@dataclass(frozen=True)
class ClusterLayer:
    """What the stack outputs need from the cluster."""

    mesh: IstioMesh
    seldon: SeldonCore
    monitoring: Monitoring
    automation: RolloutAutomation
    mlflow: MlflowStack
    mlflow_projects: MlflowProjects
    webhooks: WebhookReceiver | None
    models_reader: ModelsReader | None
    """The operator workspace's read-only MLflow user (with the operator only)."""
    certificate: GatewayCertificate
    dns_records: GatewayDnsRecords


def declare(
    settings: PlatformSettings,
    azure: AzureLayer,
    managed_models: Sequence[str] = (),
    team_hooks: Sequence[TeamHook] = (),
) -> ClusterLayer:
    """Declare everything that runs in the cluster, through the cluster's one Kubernetes provider;
    `managed_models` are the models stack's models (`layers.config.managed_models`), `team_hooks` the
    teams whose webhooks the receiver serves (`layers.teams.receiver_hooks`)."""
    identities = pod_identities(azure.identities.client_ids, azure.identities.ready)
    mesh = IstioMesh(
        "istio",
        IstioMeshArgs(
            provider=azure.aks.provider,
            cluster=azure.aks.cluster,
            chart_version=settings.istio_chart_version,
            domain=settings.domain,
            tls_secret_name=settings.gateway_tls_secret_name,
            internal_load_balancer=settings.ingress_internal_load_balancer,
            high_availability=settings.is_prod,
            node_pools=azure.aks.user_node_pools,
        ),
    )

    certificate = GatewayCertificate(
        "gateway-certificate",
        GatewayCertificateArgs(
            provider=azure.aks.provider,
            cluster=azure.aks.cluster,
            chart_version=settings.cert_manager_chart_version,
            high_availability=settings.is_prod,
            domain=settings.domain,
            tls_secret_name=settings.gateway_tls_secret_name,
            acme_server=settings.acme_server,
            acme_email=settings.acme_email,
            subscription_id=azure.client.subscription_id,
            zone_name=azure.dns_zone.zone_name,
            zone_resource_group=azure.dns_zone.resource_group_name,
            identity=identities["cert-manager"],
            node_pools=azure.aks.user_node_pools,
        ),
    )

    dns_records = GatewayDnsRecords(
        "gateway-dns",
        GatewayDnsRecordsArgs(
            hosts=[cluster_layout.public_host(service, settings.domain) for service in cluster_layout.PUBLIC_SERVICES],
            address=mesh.gateway_address.apply(lambda ip: ip or ""),
            private=settings.ingress_internal_load_balancer,
            domain=settings.domain,
            public_zone=azure.dns_zone,
            resource_group_name=azure.resource_group.name,
            vnet_id=azure.network.vnet_id,
            vnet_link_name=f"{azure.names.regional('vnet')}-link",
            tags=settings.tags,
        ),
    )

    model_server_image = azure.images.refs["model-server"]
    storage_initializer_image = azure.images.refs["storage-initializer"]
    seldon = SeldonCore(
        "seldon",
        SeldonCoreArgs(
            provider=azure.aks.provider,
            cluster=azure.aks.cluster,
            chart_version=settings.seldon_core_operator_chart_version,
            models_namespace=settings.models_namespace,
            istio_crds=mesh.base,
            node_pools=azure.aks.user_node_pools,
            model_server_image=model_server_image,
            storage_initializer_image=storage_initializer_image,
        ),
    )

    monitoring = Monitoring(
        "monitoring",
        MonitoringArgs(
            provider=azure.aks.provider,
            cluster=azure.aks.cluster,
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
            vault_name=azure.vault.vault_name,
            tenant_id=azure.client.tenant_id,
            grafana_identity=identities["grafana"],
            istio_crds=mesh.base,
            istiod=mesh.istiod,
            node_pools=azure.aks.user_node_pools,
            thresholds=AlertThresholds(
                model_error_ratio=settings.alert_model_error_percent / 100,
                model_p95_latency_seconds=settings.alert_model_p95_latency_ms / 1000,
                mlflow_5xx_ratio=settings.alert_mlflow_5xx_percent / 100,
            ),
            watched_stacks=WatchedStacks(cluster_layout.MODELS_STACK_CR_NAMESPACE, settings.environment)
            if settings.pulumi_operator
            else None,
        ),
    )

    automation = RolloutAutomation(
        "automation",
        RolloutAutomationArgs(
            namespace=cluster_layout.AUTOMATION_NAMESPACE,
            stack=pulumi.get_stack(),
            schedule=settings.rollout_analysis_schedule,
            image=azure.images.refs["mlopsctl"],
            analyzer_identity=identities["rollout-analyzer"],
            tenant_id=azure.client.tenant_id,
            key_vault_name=azure.vault.vault_name,
            tracking_uri=mlflow_in_cluster_uri(settings.mlflow_namespace),
            mlflow_username=settings.mlflow_admin_username,
            prometheus_url=monitoring.prometheus_url,
            models_namespace=settings.models_namespace,
            provider=azure.aks.provider,
            cluster=azure.aks.cluster,
            node_pools=azure.aks.user_node_pools,
            image_pull_ready=azure.aks.image_pull_ready,
            operator=OperatorArgs(
                chart_version=settings.pulumi_operator_chart_version,
                resync_seconds=settings.pulumi_operator_resync_seconds,
                project_repo=settings.pulumi_project_repo,
                branch=settings.pulumi_project_branch,
                backend_url=settings.pulumi_backend_url,
                stack_name=settings.pulumi_stack_name,
                workspace_image=azure.images.refs["operator-workspace"],
                deployer_identity=identities["models-deployer"],
                models_namespace=settings.models_namespace,
                models_namespace_ready=seldon,
                monitoring_crds=monitoring.release,
            )
            if settings.pulumi_operator
            else None,
        ),
    )

    mlflow = MlflowStack(
        "mlflow",
        MlflowStackArgs(
            namespace=settings.mlflow_namespace,
            models_namespace=settings.models_namespace,
            monitoring_namespace=cluster_layout.MONITORING_NAMESPACE,
            image=azure.images.refs["mlflow"],
            # Host and destination are filled in from the database and storage outputs.
            server=server_settings(settings, cluster_database(settings, host=""), ""),
            database_host=azure.postgres.fqdn,
            artifacts_destination=azure.storage.artifacts_destination,
            public_host=cluster_layout.public_host("mlflow", settings.domain),
            gateway=cluster_layout.PLATFORM_GATEWAY,
            tenant_id=azure.client.tenant_id,
            key_vault_name=azure.vault.vault_name,
            identities=identities,
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
            node_pools=azure.aks.user_node_pools,
            databases=[*azure.postgres.ready, *azure.postgres.network_path],
            run_migrations=settings.run_mlflow_migrations,
            istio_crds=mesh.base,
            monitoring_crds=monitoring.release,
            image_pull_ready=azure.aks.image_pull_ready,
            gc_schedule=settings.mlflow_gc_schedule,
            gc_older_than=settings.mlflow_gc_older_than,
            deleted_with=azure.aks.cluster,
            # The generation as of the Key Vault write: pods roll only after the vault holds the new values.
            credentials_generation=pulumi.Output.all(azure.rotation.generation, *azure.vault.secret_ids.values()).apply(
                lambda values: str(values[0])
            ),
        ),
        opts=pulumi.ResourceOptions(providers=[azure.aks.provider]),
    )
    mlflow_projects = MlflowProjects(
        "mlflow-projects",
        MlflowProjectsArgs(
            namespace=settings.ml_jobs_namespace,
            identity=identities["ml-jobs"],
            resource_prefix="mlflow",
            formerly_in=mlflow,
            deleted_with=azure.aks.cluster,
        ),
        opts=pulumi.ResourceOptions(providers=[azure.aks.provider]),
    )

    webhooks = (
        WebhookReceiver(
            "webhooks",
            WebhookReceiverArgs(
                namespace=cluster_layout.AUTOMATION_NAMESPACE,
                mlflow_namespace=settings.mlflow_namespace,
                # The models stack of the same name lists the served models (`models/Pulumi.<stack>.yaml`).
                stack=pulumi.get_stack(),
                image=azure.images.refs["mlopsctl"],
                identities=identities,
                tenant_id=azure.client.tenant_id,
                key_vault_name=azure.vault.vault_name,
                mlflow_username=settings.mlflow_admin_username,
                provider=azure.aks.provider,
                cluster=azure.aks.cluster,
                automation=automation,
                mlflow=list(mlflow.deployments.values()),
                mlflow_selectors=mlflow.selectors,
                tolerance_seconds=settings.webhook_replay_window_seconds,
                zone_spread=len(settings.aks_zones) > 1,
                node_pools=azure.aks.user_node_pools,
                image_pull_ready=azure.aks.image_pull_ready,
                teams=team_hooks,
            ),
        )
        if settings.webhook_receiver
        else None
    )

    models_reader = (
        ModelsReader(
            "models-reader",
            ModelsReaderArgs(
                namespace=cluster_layout.AUTOMATION_NAMESPACE,
                mlflow_namespace=settings.mlflow_namespace,
                models=managed_models,
                image=azure.images.refs["mlopsctl"],
                identity=identities["models-reader-registrar"],
                tenant_id=azure.client.tenant_id,
                key_vault_name=azure.vault.vault_name,
                mlflow_username=settings.mlflow_admin_username,
                provider=azure.aks.provider,
                cluster=azure.aks.cluster,
                automation=automation,
                mlflow=list(mlflow.deployments.values()),
                node_pools=azure.aks.user_node_pools,
                image_pull_ready=azure.aks.image_pull_ready,
            ),
        )
        if settings.pulumi_operator
        else None
    )

    return ClusterLayer(
        mesh=mesh,
        seldon=seldon,
        monitoring=monitoring,
        automation=automation,
        mlflow=mlflow,
        mlflow_projects=mlflow_projects,
        webhooks=webhooks,
        models_reader=models_reader,
        certificate=certificate,
        dns_records=dns_records,
    )
