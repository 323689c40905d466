"""Pulumi type tokens of the resources the platform declares, named once.

The policy pack (policies/), the offline harness's checks (harness/) and the tests match resources
by these tokens; a token is `<package>:<module>:<Type>` as the providers register it (the state
and every URN carry it), so a typo here would silently match nothing: one home for each.
"""

from __future__ import annotations

from typing import Final

# Pulumi itself
STACK: Final = "pulumi:pulumi:Stack"
STACK_REFERENCE: Final = "pulumi:pulumi:StackReference"
KUBERNETES_PROVIDER: Final = "pulumi:providers:kubernetes"

# Azure (azure-native)
AKS_CLUSTER: Final = "azure-native:containerservice:ManagedCluster"
AKS_AGENT_POOL: Final = "azure-native:containerservice:AgentPool"
BLOB_CONTAINER: Final = "azure-native:storage:BlobContainer"
BLOB_SERVICE: Final = "azure-native:storage:BlobServiceProperties"
CONTAINER_REGISTRY: Final = "azure-native:containerregistry:Registry"
DIAGNOSTIC_SETTING: Final = "azure-native:monitor:DiagnosticSetting"
FEDERATED_CREDENTIAL: Final = "azure-native:managedidentity:FederatedIdentityCredential"
KEY_VAULT: Final = "azure-native:keyvault:Vault"
KEY_VAULT_SECRET: Final = "azure-native:keyvault:Secret"
LOG_ANALYTICS_WORKSPACE: Final = "azure-native:operationalinsights:Workspace"
POSTGRES_CONFIGURATION: Final = "azure-native:dbforpostgresql:Configuration"
POSTGRES_DATABASE: Final = "azure-native:dbforpostgresql:Database"
POSTGRES_SERVER: Final = "azure-native:dbforpostgresql:Server"
PRIVATE_DNS_VNET_LINK: Final = "azure-native:privatedns:VirtualNetworkLink"
ROLE_ASSIGNMENT: Final = "azure-native:authorization:RoleAssignment"
SECURITY_PRICING: Final = "azure-native:security:Pricing"
STORAGE_ACCOUNT: Final = "azure-native:storage:StorageAccount"
USER_ASSIGNED_IDENTITY: Final = "azure-native:managedidentity:UserAssignedIdentity"

# Kubernetes
DEPLOYMENT: Final = "kubernetes:apps/v1:Deployment"
JOB: Final = "kubernetes:batch/v1:Job"
HELM_RELEASE: Final = "kubernetes:helm.sh/v3:Release"
HELM_CHART: Final = "kubernetes:helm.sh/v4:Chart"
SELDON_DEPLOYMENT: Final = "kubernetes:machinelearning.seldon.io/v1:SeldonDeployment"
SELDON_DEPLOYMENT_V1ALPHA3: Final = "kubernetes:machinelearning.seldon.io/v1alpha3:SeldonDeployment"
VIRTUAL_SERVICE: Final = "kubernetes:networking.istio.io/v1:VirtualService"
CERTIFICATE: Final = "kubernetes:cert-manager.io/v1:Certificate"
CLUSTER_ISSUER: Final = "kubernetes:cert-manager.io/v1:ClusterIssuer"

# docker-build (the platform images)
IMAGE_BUILD: Final = "docker-build:index:Image"

# pulumiverse-time
SLEEP: Final = "time:index/sleep:Sleep"
ROTATING: Final = "time:index/rotating:Rotating"
