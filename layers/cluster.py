"""The cluster layer: Istio, Seldon Core, monitoring, MLflow, model rollouts and their automation."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi

from components.azure.artifact_storage import artifacts_destination
from components.cluster.istio_mesh import IstioMesh, IstioMeshArgs
from components.cluster.mlflow_stack import MlflowStack, MlflowStackArgs, PodResources, RoleScaling
from components.cluster.monitoring import Monitoring, MonitoringArgs, MonitoringValues
from components.cluster.rollout_automation import OperatorArgs, RolloutAutomation, RolloutAutomationArgs
from components.cluster.seldon_core import SeldonCore, SeldonCoreArgs
from components.serving.model_rollout import ModelRollout, ModelRolloutArgs
from layers.azure import AzureLayer
from layout import cluster_layout
from layout.mlflow_server import DatabaseServer, server_settings
from observability.alerts import AlertThresholds
from rollout.planner import DeploymentPlan, declared_predictors
from settings.model import PlatformSettings


@dataclass(frozen=True)
class ClusterLayer:
    """What the stack outputs need from the cluster."""

    mesh: IstioMesh
    seldon: SeldonCore
    monitoring: Monitoring
    model_rollout: ModelRollout
    automation: RolloutAutomation
    mlflow: MlflowStack


def declare(settings: PlatformSettings, azure: AzureLayer, rollout_plans: Sequence[DeploymentPlan]) -> ClusterLayer:
    """Declare everything that runs in the cluster, through the cluster's one Kubernetes provider."""
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
            grafana_client_id=azure.identities.client_ids["grafana"],
            istio_crds=mesh.base,
            istiod=mesh.istiod,
            node_pools=azure.aks.user_node_pools,
            grafana_identity_ready=azure.identities.ready["grafana"],
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
            storage_account=azure.names.storage_account,
            artifacts_destination=artifacts_destination(azure.names.storage_account, settings.artifact_container),
            storage_secret=settings.rollout.storage_secret,
            reader_client_id=azure.identities.client_ids["model-reader"],
            reader_identity_ready=azure.identities.ready["model-reader"],
            provider=azure.aks.provider,
            cluster=azure.aks.cluster,
            depends_on=[seldon],
            model_server_image=model_server_image,
            storage_initializer_image=storage_initializer_image,
            image_pull_ready=azure.aks.image_pull_ready,
        ),
    )

    automation = RolloutAutomation(
        "automation",
        RolloutAutomationArgs(
            namespace=cluster_layout.AUTOMATION_NAMESPACE,
            stack=pulumi.get_stack(),
            schedule=settings.rollout_analysis_schedule,
            image=azure.images.refs["mlopsctl"],
            analyzer_client_id=azure.identities.client_ids["rollout-analyzer"],
            tenant_id=azure.client.tenant_id,
            key_vault_name=azure.vault.vault_name,
            tracking_uri=settings.rollout.tracking_uri,
            mlflow_username=settings.mlflow_admin_username,
            prometheus_url=settings.rollout.prometheus_url or monitoring.prometheus_url,
            provider=azure.aks.provider,
            cluster=azure.aks.cluster,
            node_pools=azure.aks.user_node_pools,
            analyzer_identity_ready=azure.identities.ready["rollout-analyzer"],
            image_pull_ready=azure.aks.image_pull_ready,
            operator=OperatorArgs(
                chart_version=settings.pulumi_operator_chart_version,
                resync_seconds=settings.pulumi_operator_resync_seconds,
                project_repo=settings.pulumi_project_repo,
                branch=settings.pulumi_project_branch,
                backend_url=settings.pulumi_backend_url,
                stack_name=settings.pulumi_stack_name,
                deployer_client_id=settings.pulumi_deployer_client_id,
                tenant_id=azure.client.tenant_id,
                subscription_id=azure.client.subscription_id,
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
            image=azure.images.refs["mlflow"],
            # Host and destination are filled in from the database and storage outputs.
            server=server_settings(settings, DatabaseServer(host="", user=settings.postgres_admin_login), ""),
            database_host=azure.postgres.fqdn,
            artifacts_destination=azure.storage.artifacts_destination,
            public_host=cluster_layout.public_host("mlflow", settings.domain),
            gateway=cluster_layout.PLATFORM_GATEWAY,
            tenant_id=azure.client.tenant_id,
            key_vault_name=azure.vault.vault_name,
            client_ids=azure.identities.client_ids,
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
            databases=[*azure.postgres.databases, *azure.postgres.network_path],
            identities_ready=azure.identities.ready,
            istio_crds=mesh.base,
            monitoring_crds=monitoring.release,
            image_pull_ready=azure.aks.image_pull_ready,
            deleted_with=azure.aks.cluster,
            credentials_generation=azure.rotation.generation,
        ),
        opts=pulumi.ResourceOptions(providers=[azure.aks.provider]),
    )

    return ClusterLayer(
        mesh=mesh,
        seldon=seldon,
        monitoring=monitoring,
        model_rollout=model_rollout,
        automation=automation,
        mlflow=mlflow,
    )
