"""The Azure foundation as declared for each committed stack (real program, mock engine)."""

from __future__ import annotations

import importlib
import inspect
import itertools
import re
from functools import cache

import yaml

from components.azure import azure_roles
from harness.mock_engine import Evaluation, RecordedResource
from layout import cluster_layout, team_layout
from tests.services.stack import committed_settings

REQUIRED_TAGS = {"environment", "owner", "cost-center", "managed-by"}
STATEFUL_TYPES = (
    "azure-native:dbforpostgresql:Server",
    "azure-native:storage:StorageAccount",
    "azure-native:keyvault:Vault",
)


@cache
def _accepts_tags(type_token: str) -> bool:
    """Whether the typed SDK class of an azure-native resource has a `tags` argument."""
    _, module, kind = type_token.split(":")
    sdk_class = getattr(importlib.import_module(f"pulumi_azure_native.{module}"), kind)
    return "tags" in inspect.signature(sdk_class._internal_init).parameters


def _azure(evaluation: Evaluation) -> list[RecordedResource]:
    return [r for r in evaluation.resources if r.type.startswith("azure-native:")]


def test_every_taggable_azure_resource_carries_the_required_tags(stack: Evaluation) -> None:
    taggable = [r for r in _azure(stack) if _accepts_tags(r.type)]
    assert len(taggable) > 15
    for resource in taggable:
        tags = resource.inputs.get("tags") or {}
        assert set(tags) >= REQUIRED_TAGS, f"{resource.name} lacks {REQUIRED_TAGS - set(tags)}"
        assert tags["environment"] == stack.stack
        assert tags["managed-by"] == "pulumi"


def _parents(urn: str) -> str:
    """The parent type chain of an engine URN (`a$b$c::name` → `a$b`)."""
    return urn.split("::")[2].rpartition("$")[0]


def _moved(resource: RecordedResource) -> bool:
    """Aliased to a URN under other parents (a move), not merely to an older type of the same resource."""
    return any(_parents(alias) != _parents(resource.engine_urn) for alias in resource.aliases)


def test_components_follow_the_conventions(stack: Evaluation) -> None:
    by_urn = stack.by_urn()
    components = [r for r in stack.resources if not r.custom]
    assert {c.type for c in components} >= {
        "mlops:azure:Network",
        "mlops:azure:PostgresServer",
        "mlops:azure:ArtifactStorage",
        "mlops:azure:KeyVault",
        "mlops:azure:AksCluster",
        "mlops:azure:WorkloadIdentity",
    }
    for component in components:
        assert re.fullmatch(r"mlops:[a-z]+:[A-Z][A-Za-z]+", component.type), component.type
    for resource in stack.resources:
        owner = by_urn.get(resource.parent)
        while owner is not None and owner.custom:
            owner = by_urn.get(owner.parent)
        if owner is not None:
            # A resource moved into another component keeps its name (an alias to its old parent).
            if not _moved(resource):
                assert resource.name.startswith(owner.name + "-"), f"{resource.name} in component {owner.name}"
        elif resource.type != "azure-native:resources:ResourceGroup":
            assert not resource.custom, f"{resource.name} is declared outside any component"


def test_stateful_resources_are_protected_in_prod_only(dev: Evaluation, prod: Evaluation) -> None:
    for type_token in STATEFUL_TYPES:
        assert prod.one(type_token).protect, type_token
        assert not dev.one(type_token).protect, type_token
    assert all(db.protect for db in prod.of_type("azure-native:dbforpostgresql:Database"))


def test_postgres_server(dev: Evaluation, prod: Evaluation) -> None:
    for evaluation in (dev, prod):
        server = evaluation.one("azure-native:dbforpostgresql:Server")
        assert server.inputs["version"] == "16"
        assert server.inputs["network"]["publicNetworkAccess"] == "Disabled"
        assert server.inputs["network"]["delegatedSubnetResourceId"].endswith("/subnets/postgres")
        assert "administratorLoginPassword" in server.secret_inputs
        assert "administratorLoginPassword" in server.additional_secret_outputs
        parameters = {
            c.inputs["configurationName"]: c.inputs["value"]
            for c in evaluation.of_type("azure-native:dbforpostgresql:Configuration")
        }
        assert parameters["require_secure_transport"] == "ON"
        assert parameters["log_connections"] == parameters["log_checkpoints"] == "ON"
        databases = {d.inputs["databaseName"] for d in evaluation.of_type("azure-native:dbforpostgresql:Database")}
        assert databases == {"mlflow", "mlflow_registry", "mlflow_auth"}
    prod_server = prod.one("azure-native:dbforpostgresql:Server").inputs
    assert prod_server["backup"] == {"backupRetentionDays": 35, "geoRedundantBackup": "Enabled"}
    assert prod_server["highAvailability"]["mode"] == "ZoneRedundant"
    assert prod_server["highAvailability"]["standbyAvailabilityZone"] != prod_server["availabilityZone"]
    dev_server = dev.one("azure-native:dbforpostgresql:Server").inputs
    assert dev_server["highAvailability"]["mode"] == "Disabled"
    assert dev_server["sku"] == {"name": "Standard_B2ms", "tier": "Burstable"}


def test_server_parameters_are_applied_one_at_a_time(prod: Evaluation) -> None:
    by_urn = prod.by_urn()
    configurations = prod.of_type("azure-native:dbforpostgresql:Configuration")
    chained = [c for c in configurations if any(by_urn[d].type == c.type for d in c.dependencies if d in by_urn)]
    assert len(chained) == len(configurations) - 1


def test_artifact_storage(dev: Evaluation, prod: Evaluation) -> None:
    for evaluation, shared_key, default_action in ((dev, True, "Allow"), (prod, False, "Deny")):
        account = evaluation.one("azure-native:storage:StorageAccount").inputs
        assert account["kind"] == "StorageV2"
        assert account["enableHttpsTrafficOnly"] is True
        assert account["minimumTlsVersion"] == "TLS1_2"
        assert account["allowBlobPublicAccess"] is False
        assert account["allowSharedKeyAccess"] is shared_key
        assert account["networkRuleSet"]["defaultAction"] == default_action
        service = evaluation.one("azure-native:storage:BlobServiceProperties").inputs
        assert service["isVersioningEnabled"] is True
        assert service["deleteRetentionPolicy"]["enabled"] is True
        assert service["containerDeleteRetentionPolicy"]["enabled"] is True
        container = evaluation.one("azure-native:storage:BlobContainer").inputs
        assert container["containerName"] == "mlflow-artifacts"
        assert container["publicAccess"] == "None"
    assert prod.one("azure-native:storage:StorageAccount").inputs["sku"]["name"] == "Standard_GZRS"
    assert prod.one("azure-native:storage:BlobServiceProperties").inputs["deleteRetentionPolicy"]["days"] == 30


def test_key_vault_holds_every_generated_secret(dev: Evaluation, prod: Evaluation) -> None:
    expected = {
        cluster_layout.POSTGRES_ADMIN_PASSWORD,
        cluster_layout.MLFLOW_ADMIN_PASSWORD,
        cluster_layout.GRAFANA_ADMIN_PASSWORD,
        cluster_layout.GRAFANA_ADMIN_USER,
        cluster_layout.MLFLOW_FLASK_SECRET_KEY,
        cluster_layout.ROLLOUT_HOOK_SIGNING_KEY,
        cluster_layout.MODELS_STACK_PASSPHRASE,
        cluster_layout.MLFLOW_WEBHOOK_ENCRYPTION_KEY,
        cluster_layout.WEBHOOK_SIGNING_SECRET,
        cluster_layout.MODELS_READER_PASSWORD,
        "mlflow-db-uri",
        "mlflow-registry-db-uri",
        "mlflow-auth-db-uri",
    }
    for evaluation in (dev, prod):
        properties = evaluation.one("azure-native:keyvault:Vault").inputs["properties"]
        assert properties["enableRbacAuthorization"] is True
        assert properties["enableSoftDelete"] is True
        secrets = evaluation.of_type("azure-native:keyvault:Secret")
        teams = committed_settings(evaluation.stack).teams
        team_secrets = {name for team in teams for name in team_layout.team_secrets(team.name)}
        assert {s.inputs["secretName"] for s in secrets} == expected | team_secrets
        for secret in secrets:
            assert "properties" in secret.secret_inputs, f"{secret.name} value is not a Pulumi secret"
        uri = next(s for s in secrets if s.inputs["secretName"] == "mlflow-registry-db-uri").inputs["properties"][
            "value"
        ]
        assert re.fullmatch(
            r"postgresql\+psycopg2://mlflowadmin:[A-Za-z0-9]{32}@[a-z0-9-]+\.postgres\.database\.azure\.com:5432/"
            r"mlflow_registry\?sslmode=require",
            uri,
        ), uri
    prod_vault = prod.one("azure-native:keyvault:Vault").inputs["properties"]
    assert prod_vault["enablePurgeProtection"] is True
    assert prod_vault["networkAcls"]["defaultAction"] == "Deny"
    assert prod_vault["networkAcls"]["ipRules"] == [{"value": "203.0.113.0/28"}]
    assert "enablePurgeProtection" not in dev.one("azure-native:keyvault:Vault").inputs["properties"]


def test_private_endpoints_and_dns_zones_in_prod(dev: Evaluation, prod: Evaluation) -> None:
    zones = {z.inputs["privateZoneName"] for z in prod.of_type("azure-native:privatedns:PrivateZone")}
    assert {"privatelink.blob.core.windows.net", "privatelink.vaultcore.azure.net", "privatelink.azurecr.io"} <= zones
    groups = {
        e.inputs["privateLinkServiceConnections"][0]["groupIds"][0]
        for e in prod.of_type("azure-native:network:PrivateEndpoint")
    }
    assert groups == {"blob", "vault", "registry"}
    assert len(prod.of_type("azure-native:privatedns:VirtualNetworkLink")) == len(zones)
    assert dev.of_type("azure-native:network:PrivateEndpoint") == []
    dev_zones = {z.inputs["privateZoneName"] for z in dev.of_type("azure-native:privatedns:PrivateZone")}
    assert len(dev_zones) == 1 and dev_zones.pop().endswith(".private.postgres.database.azure.com")


def test_private_endpoint_urns_are_stable(prod: Evaluation) -> None:
    """The endpoints keep their URNs (name and parent chain): a changed URN makes Pulumi replace a
    prod endpoint, cutting the service off the VNet until the new one is up."""
    urns = {
        r.urn
        for r in prod.resources
        if r.type
        in (
            "mlops:azure:PrivateLink",
            "azure-native:network:PrivateEndpoint",
            "azure-native:network:PrivateDnsZoneGroup",
        )
    }
    prefix = "urn:pulumi:prod::mlops-platform::"
    assert urns == {
        prefix + f"mlops:azure:{owner}$mlops:azure:PrivateLink::{name}-private-link"
        for owner, name in (
            ("ArtifactStorage", "artifacts"),
            ("KeyVault", "key-vault"),
            ("ContainerRegistry", "registry"),
        )
    } | {
        prefix + f"mlops:azure:PrivateLink$azure-native:network:PrivateEndpoint::{name}-private-link-pe"
        for name in ("artifacts", "key-vault", "registry")
    } | {
        prefix
        + f"azure-native:network:PrivateEndpoint$azure-native:network:PrivateDnsZoneGroup::{name}-private-link-dns"
        for name in ("artifacts", "key-vault", "registry")
    }


def test_network_subnets(stack: Evaluation) -> None:
    recorded = {s.inputs["subnetName"]: s for s in stack.of_type("azure-native:network:Subnet")}
    subnets = {name: s.inputs for name, s in recorded.items()}
    # Prod projects the API server into its own subnet (aksApiServerVnetIntegration); dev does not.
    api_server = {"aks-api-server"} if stack.stack == "prod" else set()
    assert set(subnets) == {"aks-nodes", "postgres", "private-endpoints"} | api_server
    assert subnets["postgres"]["delegations"][0]["serviceName"] == "Microsoft.DBforPostgreSQL/flexibleServers"
    # One VNet update at a time (Azure answers AnotherOperationInProgress): a chain, in this order.
    chain = ["aks-nodes", "postgres", "private-endpoints", *sorted(api_server)]
    for before, after in itertools.pairwise(chain):
        assert recorded[before].urn in recorded[after].dependencies, (before, after)
    if api_server:
        delegated = subnets["aks-api-server"]
        assert delegated["addressPrefix"] == "10.50.18.0/27"
        assert [d["serviceName"] for d in delegated["delegations"]] == ["Microsoft.ContainerService/managedClusters"]


def test_api_server_vnet_integration(dev: Evaluation, prod: Evaluation) -> None:
    """Prod's API server sits in the delegated subnet; the control-plane identity may join it before
    the cluster exists (AKS fails provisioning without the grant); its public side keeps the ranges."""
    cluster = prod.one("azure-native:containerservice:ManagedCluster")
    subnet = next(s for s in prod.of_type("azure-native:network:Subnet") if s.inputs["subnetName"] == "aks-api-server")
    access = cluster.inputs["apiServerAccessProfile"]
    assert access["enableVnetIntegration"] is True and access["subnetId"] == subnet.id
    assert "enablePrivateCluster" not in access and access["authorizedIPRanges"]
    identity = prod.one("azure-native:managedidentity:UserAssignedIdentity", "aks-control-plane")
    assert cluster.inputs["identity"]["userAssignedIdentities"] == [identity.id]
    grants = [
        g
        for g in prod.of_type("azure-native:authorization:RoleAssignment")
        if g.inputs["scope"] == subnet.id and g.inputs["principalId"] == identity.outputs["principalId"]
    ]
    assert len(grants) == 1
    assert grants[0].inputs["roleDefinitionId"].endswith(f"/{azure_roles.NETWORK_CONTRIBUTOR}")
    assert grants[0].urn in cluster.dependencies
    dev_access = dev.one("azure-native:containerservice:ManagedCluster").inputs["apiServerAccessProfile"]
    assert "enableVnetIntegration" not in dev_access and "subnetId" not in dev_access


def test_aks_cluster(dev: Evaluation, prod: Evaluation) -> None:
    for evaluation in (dev, prod):
        cluster = evaluation.one("azure-native:containerservice:ManagedCluster").inputs
        assert cluster["kubernetesVersion"] == "1.34.2"
        assert cluster["oidcIssuerProfile"] == {"enabled": True}
        assert cluster["securityProfile"]["workloadIdentity"] == {"enabled": True}
        addon = cluster["addonProfiles"]["azureKeyvaultSecretsProvider"]
        assert addon["enabled"] is True and addon["config"]["enableSecretRotation"] == "true"
        assert cluster["aadProfile"]["managed"] is True and cluster["aadProfile"]["enableAzureRBAC"] is True
        assert cluster["aadProfile"]["adminGroupObjectIDs"]
        assert cluster["networkProfile"]["networkPolicy"] == "cilium"
        assert cluster["autoUpgradeProfile"] == {"upgradeChannel": "none", "nodeOSUpgradeChannel": "NodeImage"}
        system = cluster["agentPoolProfiles"][0]
        assert system["mode"] == "System" and system["nodeTaints"] == ["CriticalAddonsOnly=true:NoSchedule"]
        assert system["enableAutoScaling"] is True
        workload = evaluation.one("azure-native:containerservice:AgentPool").inputs
        assert workload["mode"] == "User" and workload["enableAutoScaling"] is True
        assert workload["minCount"] <= workload["maxCount"]
        window = evaluation.one("azure-native:containerservice:MaintenanceConfiguration").inputs
        assert window["configName"] == "aksManagedNodeOSUpgradeSchedule"
        assert window["maintenanceWindow"]["durationHours"] >= 4
    prod_cluster = prod.one("azure-native:containerservice:ManagedCluster").inputs
    assert prod_cluster["disableLocalAccounts"] is True
    assert prod_cluster["agentPoolProfiles"][0]["availabilityZones"] == ["1", "2", "3"]
    assert prod.one("azure-native:containerservice:AgentPool").inputs["availabilityZones"] == ["1", "2", "3"]
    # The operators' range and the prod runner's egress (aksDeployerIpRanges).
    assert prod_cluster["apiServerAccessProfile"]["authorizedIPRanges"] == ["203.0.113.0/28", "198.51.100.16/29"]
    assert dev.one("azure-native:containerservice:ManagedCluster").inputs["disableLocalAccounts"] is False


def test_one_kubernetes_provider_from_the_cluster_kubeconfig(dev: Evaluation, prod: Evaluation) -> None:
    for evaluation, exec_plugin in ((dev, False), (prod, True)):
        provider = evaluation.one("pulumi:providers:kubernetes")
        assert "kubeconfig" in provider.secret_inputs
        kubeconfig = yaml.safe_load(provider.inputs["kubeconfig"])
        user = kubeconfig["users"][0]["user"]
        if exec_plugin:  # Entra-only cluster: kubelogin, non-interactive login
            args = user["exec"]["args"]
            assert args[args.index("--login") + 1] == "workloadidentity"
        else:
            assert "exec" not in user
    admin_grant = [
        r
        for r in prod.of_type("azure-native:authorization:RoleAssignment")
        if r.inputs["roleDefinitionId"].endswith(azure_roles.AKS_RBAC_CLUSTER_ADMIN)
    ]
    assert len(admin_grant) == 1 and admin_grant[0].inputs["scope"].endswith("/managedClusters/mlops-prod-aks")
    assert admin_grant[0].inputs["principalId"] == "7c3e5a90-1d2b-4f6e-8a9c-0b1d2e3f4a5b"


def test_workload_identities_are_least_privilege(stack: Evaluation) -> None:
    identities = {
        i.inputs["resourceName"]: i for i in stack.of_type("azure-native:managedidentity:UserAssignedIdentity")
    }
    credentials = stack.of_type("azure-native:managedidentity:FederatedIdentityCredential")
    subjects = {c.inputs["subject"] for c in credentials}
    teams = committed_settings(stack.stack).teams
    assert subjects == {
        "system:serviceaccount:mlflow:mlflow-artifacts",
        "system:serviceaccount:mlflow:mlflow-server",
        "system:serviceaccount:models:model-storage-reader",
        "system:serviceaccount:mlops-system:rollout-analyzer",
        "system:serviceaccount:mlops-system:models-deployer",
        "system:serviceaccount:monitoring:grafana",
        "system:serviceaccount:ml-jobs:mlflow-job-runner",
        "system:serviceaccount:mlops-system:webhook-receiver",
        "system:serviceaccount:mlops-system:webhook-registrar",
        "system:serviceaccount:mlops-system:models-reader-registrar",
        "system:serviceaccount:cert-manager:cert-manager",
        # With teams (docs/teams.md): the teams' ensure Job, and per team its serving reader, its
        # jobs and its models Stack.
        *(["system:serviceaccount:mlops-system:teams-registrar"] if teams else []),
        *(f"system:serviceaccount:{t.namespace}:model-storage-reader" for t in teams),
        *(f"system:serviceaccount:{t.jobs_namespace}:mlflow-job-runner" for t in teams),
        *(f"system:serviceaccount:mlops-system:{t.name}-models-deployer" for t in teams),
    }
    issuer = stack.outputs["oidcIssuerUrl"].value
    assert all(
        c.inputs["issuer"] == issuer and c.inputs["audiences"] == ["api://AzureADTokenExchange"] for c in credentials
    )
    grants = stack.of_type("azure-native:authorization:RoleAssignment")
    for grant in grants:
        role, scope = grant.inputs["roleDefinitionId"].rsplit("/", 1)[1], grant.inputs["scope"]
        if role in (azure_roles.STORAGE_BLOB_DATA_CONTRIBUTOR, azure_roles.STORAGE_BLOB_DATA_READER):
            assert scope.endswith("/blobServices/default/containers/mlflow-artifacts"), scope
        if role == azure_roles.KEY_VAULT_SECRETS_USER:
            assert re.search(r"/vaults/[^/]+/secrets/[a-z-]+$", scope), scope
        if role == azure_roles.DNS_ZONE_CONTRIBUTOR:
            assert re.search(r"/providers/Microsoft\.Network/dnszones/[a-z0-9.-]+$", scope), scope
        if role in (azure_roles.AKS_RBAC_WRITER, azure_roles.AKS_RBAC_READER):
            assert grant.inputs["principalType"] == "Group" and re.search(
                r"/managedClusters/[^/]+/namespaces/[a-z0-9-]+$", scope
            ), scope
    roles = [g.inputs["roleDefinitionId"].rsplit("/", 1)[1] for g in grants]
    # The artifacts role; with teams the servers too (the tracking role proxies artifacts, docs/teams.md).
    assert roles.count(azure_roles.STORAGE_BLOB_DATA_CONTRIBUTOR) == (2 if teams else 1)
    # model serving, MLflow Projects jobs; with teams two per team, each under its ABAC condition
    assert roles.count(azure_roles.STORAGE_BLOB_DATA_READER) == 2 + 2 * len(teams)
    assert roles.count(azure_roles.ACR_PULL) == 1
    assert roles.count(azure_roles.DNS_ZONE_CONTRIBUTOR) == 1  # cert-manager, on the zone only
    # eleven workloads + the AKS control plane; with teams the registrar and three per team
    assert len(identities) == 12 + (1 + 3 * len(teams) if teams else 0)


def test_stack_outputs_and_secrets(stack: Evaluation) -> None:
    outputs = stack.outputs
    assert outputs["kubeconfig"].secret
    for name, output in outputs.items():
        if name != "kubeconfig":
            assert not output.secret, name
    rendered = repr({k: v.value for k, v in outputs.items() if not v.secret})
    for secret in stack.of_type("azure-native:keyvault:Secret"):
        assert secret.inputs["properties"]["value"] not in rendered, secret.inputs["secretName"]
    assert outputs["postgresFqdn"].value.endswith(".postgres.database.azure.com")
    assert outputs["keyVaultUri"].value.startswith("https://") and outputs["keyVaultUri"].value.endswith(
        ".vault.azure.net/"
    )
    assert outputs["artifactsDestination"].value == (
        f"wasbs://mlflow-artifacts@{outputs['storageAccountName'].value}.blob.core.windows.net/"
    )
