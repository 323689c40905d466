"""The platform stack's outputs: the contract other stacks read through `StackReference`."""

from __future__ import annotations

import functools

import pulumi

from layers.azure import AzureLayer
from layers.cluster import ClusterLayer
from layers.teams import TeamsLayer
from layout import cluster_layout, team_layout
from layout.platform_outputs import TEAMS_OUTPUT, TeamQuotaContract, mlflow_in_cluster_uri, team_outputs
from settings.model import PlatformSettings
from settings.teams import Team


def export(settings: PlatformSettings, azure: AzureLayer, cluster: ClusterLayer, teams: TeamsLayer) -> None:
    """Export every documented output (README, "Stack outputs"); secrets stay secret."""
    pulumi.export("environment", settings.environment)
    pulumi.export("location", settings.location)
    pulumi.export("tenantId", azure.client.tenant_id)
    pulumi.export("resourceGroupName", azure.resource_group.name)
    pulumi.export("postgresFqdn", azure.postgres.fqdn)
    pulumi.export("postgresDatabases", list(azure.postgres.connection_uris))
    pulumi.export("storageAccountName", azure.storage.account_name)
    pulumi.export("artifactContainerName", azure.storage.container_name)
    pulumi.export("artifactsDestination", azure.storage.artifacts_destination)
    pulumi.export("keyVaultName", azure.vault.vault_name)
    pulumi.export("keyVaultUri", azure.vault.vault_uri)
    pulumi.export("containerRegistryLoginServer", azure.registry.login_server if azure.registry else None)
    pulumi.export("platformImages", azure.images.refs)
    pulumi.export("clusterName", azure.aks.cluster_name)
    pulumi.export("oidcIssuerUrl", azure.aks.oidc_issuer_url)
    pulumi.export("kubeconfig", azure.aks.kubeconfig)
    pulumi.export("workloadIdentityClientIds", azure.identities.client_ids)
    pulumi.export("gatewayAddress", cluster.mesh.gateway_address)
    pulumi.export("publicHosts", cluster.dns_records.fqdns)
    pulumi.export("dnsZoneName", azure.dns_zone.zone_name)
    pulumi.export("dnsNameServers", azure.dns_zone.name_servers)
    pulumi.export("grafanaUrl", cluster.monitoring.grafana_url)
    pulumi.export("prometheusUrl", cluster.monitoring.prometheus_url)
    pulumi.export("mlflowTrackingUri", cluster.mlflow.tracking_uri)
    pulumi.export("mlflowRegistryUri", cluster.mlflow.registry_uri)
    pulumi.export("mlflowArtifactsDestination", cluster.mlflow.artifacts_destination)
    pulumi.export("mlflowJobsNamespace", cluster.mlflow_projects.jobs_namespace)
    # What the models stack (`models/`) reads through StackReference (layout/platform_outputs.py).
    reader = cluster_layout.workload_service_account("model-reader")
    pulumi.export("domain", settings.domain)
    pulumi.export("modelsNamespace", cluster.seldon.models_namespace)
    pulumi.export("modelGatewayHost", cluster_layout.public_host("models", settings.domain))
    pulumi.export("modelReaderClientId", azure.identities.client_ids[reader.key])
    pulumi.export("modelReaderServiceAccount", reader.service_account)
    pulumi.export("mlflowInClusterUri", mlflow_in_cluster_uri(settings.mlflow_namespace))
    if teams.teams:
        _export_teams(settings, azure, teams)


def _export_teams(settings: PlatformSettings, azure: AzureLayer, teams: TeamsLayer) -> None:
    """`teams`: team name → its outputs (layout.platform_outputs.team_outputs); stacks with teams only."""

    def entry(team: Team, stack: str | None, values: list[str]) -> dict[str, object]:
        return team_outputs(
            team=team.name,
            namespace=team.namespace,
            jobs_namespace=team.jobs_namespace,
            domain=settings.domain,
            mlflow_namespace=settings.mlflow_namespace,
            artifacts_destination=values[0],
            reader_client_id=values[1],
            stack_name=stack,
            stack_cr_name=team_layout.stack_cr_name(team.name, settings.environment) if stack else None,
            quota=TeamQuotaContract(
                cpu=team.quota.cpu,
                memory=team.quota.memory,
                pods=team.quota.pods,
                max_replicas=team.quota.max_replicas,
                models=team.quota.models,
            ),
        )

    entries = {
        declared.team.name: pulumi.Output.all(
            azure.storage.artifacts_destination, declared.azure.client_ids["model-reader"]
        ).apply(functools.partial(entry, declared.team, declared.tenancy.stack_name))
        for declared in teams.teams
    }
    pulumi.export(TEAMS_OUTPUT, entries)
