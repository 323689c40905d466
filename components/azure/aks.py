"""AKS: pinned version, Entra ID + Azure RBAC, workload identity, Key Vault CSI, network policy.

Owns the one `pulumi_kubernetes.Provider` every in-cluster component uses. With local accounts
off (prod), the provider's kubeconfig is the Entra one, rewritten for the configured kubelogin
login (`layout.kubelogin`), and every configured deployer principal (an object id from settings,
never "whoever runs `up`") gets "Azure Kubernetes Service RBAC Cluster Admin" on this cluster
only. The provider waits for those grants and then for a bounded `Sleep` (pulumiverse-time):
Azure RBAC for Kubernetes takes minutes to reach the API server's authorizer, and no check
available to the engine can poll it without credentials of its own.

With `api_server_subnet_id` (API Server VNet Integration) the API server is projected into that
delegated subnet; the control-plane identity is granted on it, as on the node subnet, before the
cluster is created.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_kubernetes as kubernetes
import pulumiverse_time as time
from pulumi_azure_native import authorization, containerservice, managedidentity

from components.azure import azure_roles
from layout.kubelogin import KubeloginLogin, KubeloginMode, kubeconfig_with_login

SYSTEM_POOL = "system"
WORKLOAD_POOL = "workload"
WORKLOAD_POOL_LABEL = "mlops.io/pool"


def _decode_kubeconfig(encoded: str, login: KubeloginLogin) -> str:
    return kubeconfig_with_login(base64.b64decode(encoded).decode(), login)


@dataclass(frozen=True)
class AksClusterArgs:
    resource_group_name: pulumi.Input[str]
    location: str
    cluster_name: str
    kubernetes_version: str
    tier: str
    tenant_id: pulumi.Input[str]
    subscription_id: pulumi.Input[str]
    deployer_object_ids: Sequence[str]
    """Principals that deploy into the cluster (CI, the operator): AKS RBAC Cluster Admin each."""
    admin_group_object_ids: Sequence[str]
    local_accounts: bool
    kubelogin_mode: KubeloginMode
    nodes_subnet_id: pulumi.Input[str]
    zones: Sequence[str]
    system_vm_size: str
    system_min_nodes: int
    system_max_nodes: int
    workload_vm_size: str
    workload_min_nodes: int
    workload_max_nodes: int
    service_cidr: str
    dns_service_ip: str
    pod_cidr: str
    authorized_ip_ranges: Sequence[str]
    """Ranges the public API server endpoint answers (empty: any, Entra ID still required)."""
    maintenance_day: str
    maintenance_start_hour: int
    maintenance_duration_hours: int
    rbac_propagation_seconds: int = 300
    """Bound of the wait between the deployer grants and the first in-cluster request."""
    kubelogin_client_id: str = ""
    registry_id: pulumi.Input[str] | None = None
    api_server_subnet_id: pulumi.Input[str] | None = None
    """API Server VNet Integration: the subnet (delegated to `Microsoft.ContainerService/managedClusters`)
    the API server is projected into. The control-plane identity gets Network Contributor on it before
    the cluster is created (AKS fails provisioning without it). The public endpoint stays, limited by
    `authorized_ip_ranges`. None: the API server is reached through its public endpoint only."""
    encryption_at_host: bool = False
    """Encrypt temp disks, caches and ephemeral OS disks of every pool at the host (subscription
    feature `Microsoft.Compute/EncryptionAtHost` must be registered first)."""
    tags: dict[str, str] = field(default_factory=dict)


class AksCluster(pulumi.ComponentResource):
    cluster_name: pulumi.Output[str]
    cluster_id: pulumi.Output[str]
    oidc_issuer_url: pulumi.Output[str]
    kubelet_object_id: pulumi.Output[str]
    kubeconfig: pulumi.Output[str]
    """Secret."""
    provider: kubernetes.Provider
    cluster: containerservice.ManagedCluster
    """For `deleted_with` of in-cluster releases."""
    user_node_pools: list[containerservice.AgentPool]
    """Where pods run (the system pool takes only critical add-ons): everything that makes pods
    waits for these (`node_pools` of the in-cluster components)."""

    def __init__(self, name: str, args: AksClusterArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlops:azure:AksCluster", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)

        # A user-assigned control-plane identity, so its Network Contributor grant on the node
        # subnet exists before the cluster (a system-assigned one would only exist after).
        control_plane = managedidentity.UserAssignedIdentity(
            f"{name}-control-plane",
            resource_name_=f"{args.cluster_name}-control-plane",
            resource_group_name=args.resource_group_name,
            location=args.location,
            tags=args.tags,
            opts=child,
        )
        subnet_access = authorization.RoleAssignment(
            f"{name}-control-plane-subnet",
            principal_id=control_plane.principal_id,
            principal_type="ServicePrincipal",
            role_definition_id=azure_roles.role_definition(args.subscription_id, azure_roles.NETWORK_CONTRIBUTOR),
            scope=args.nodes_subnet_id,
            description="AKS control plane manages load balancers and IPs in the node subnet",
            opts=pulumi.ResourceOptions(parent=control_plane),
        )
        subnet_grants: list[pulumi.Resource] = [subnet_access]
        if args.api_server_subnet_id is not None:
            # Like the node subnet: AKS joins the API server's internal load balancer to this subnet
            # with the cluster identity, and refuses to provision without the grant.
            subnet_grants.append(
                authorization.RoleAssignment(
                    f"{name}-control-plane-api-server-subnet",
                    principal_id=control_plane.principal_id,
                    principal_type="ServicePrincipal",
                    role_definition_id=azure_roles.role_definition(
                        args.subscription_id, azure_roles.NETWORK_CONTRIBUTOR
                    ),
                    scope=args.api_server_subnet_id,
                    description="AKS control plane projects the API server into its delegated subnet",
                    opts=pulumi.ResourceOptions(parent=control_plane),
                )
            )

        zones = list(args.zones) or None
        cluster = containerservice.ManagedCluster(
            f"{name}-cluster",
            resource_name_=args.cluster_name,
            resource_group_name=args.resource_group_name,
            location=args.location,
            dns_prefix=args.cluster_name,
            kubernetes_version=args.kubernetes_version,
            sku=containerservice.ManagedClusterSKUArgs(name="Base", tier=args.tier),
            identity=containerservice.ManagedClusterIdentityArgs(
                type=containerservice.ResourceIdentityType.USER_ASSIGNED,
                user_assigned_identities=[control_plane.id],
            ),
            enable_rbac=True,
            disable_local_accounts=not args.local_accounts,
            aad_profile=containerservice.ManagedClusterAADProfileArgs(
                managed=True,
                enable_azure_rbac=True,
                tenant_id=args.tenant_id,
                admin_group_object_ids=list(args.admin_group_object_ids),
            ),
            oidc_issuer_profile=containerservice.ManagedClusterOIDCIssuerProfileArgs(enabled=True),
            security_profile=containerservice.ManagedClusterSecurityProfileArgs(
                workload_identity=containerservice.ManagedClusterSecurityProfileWorkloadIdentityArgs(enabled=True),
                image_cleaner=containerservice.ManagedClusterSecurityProfileImageCleanerArgs(
                    enabled=True, interval_hours=168
                ),
            ),
            # KEDA, managed by AKS at the version AKS pairs with the cluster's: scales the model
            # predictors on their request rate (rollout/autoscaling.py) without a chart to pin.
            workload_auto_scaler_profile=containerservice.ManagedClusterWorkloadAutoScalerProfileArgs(
                keda=containerservice.ManagedClusterWorkloadAutoScalerProfileKedaArgs(enabled=True)
            ),
            addon_profiles={
                "azureKeyvaultSecretsProvider": containerservice.ManagedClusterAddonProfileArgs(
                    enabled=True,
                    config={"enableSecretRotation": "true", "rotationPollInterval": "2m"},
                ),
            },
            network_profile=containerservice.ContainerServiceNetworkProfileArgs(
                network_plugin="azure",
                network_plugin_mode="overlay",
                network_dataplane="cilium",
                network_policy="cilium",
                pod_cidr=args.pod_cidr,
                service_cidr=args.service_cidr,
                dns_service_ip=args.dns_service_ip,
                load_balancer_sku="standard",
                outbound_type="loadBalancer",
            ),
            api_server_access_profile=containerservice.ManagedClusterAPIServerAccessProfileArgs(
                authorized_ip_ranges=list(args.authorized_ip_ranges) or None,
                disable_run_command=True,
                enable_vnet_integration=True if args.api_server_subnet_id is not None else None,
                subnet_id=args.api_server_subnet_id,
            ),
            # The version stays pinned (no automatic minor/patch upgrades); node images follow
            # security releases inside the maintenance window below.
            auto_upgrade_profile=containerservice.ManagedClusterAutoUpgradeProfileArgs(
                upgrade_channel="none", node_os_upgrade_channel="NodeImage"
            ),
            agent_pool_profiles=[
                containerservice.ManagedClusterAgentPoolProfileArgs(
                    name=SYSTEM_POOL,
                    mode="System",
                    type="VirtualMachineScaleSets",
                    vm_size=args.system_vm_size,
                    os_type="Linux",
                    os_sku="AzureLinux",
                    os_disk_type="Ephemeral",
                    enable_encryption_at_host=args.encryption_at_host,
                    enable_auto_scaling=True,
                    min_count=args.system_min_nodes,
                    max_count=args.system_max_nodes,
                    count=args.system_min_nodes,
                    availability_zones=zones,
                    vnet_subnet_id=args.nodes_subnet_id,
                    orchestrator_version=args.kubernetes_version,
                    # Only critical add-ons (CoreDNS, CSI, konnectivity) on the system pool.
                    node_taints=["CriticalAddonsOnly=true:NoSchedule"],
                    upgrade_settings=containerservice.AgentPoolUpgradeSettingsArgs(max_surge="33%"),
                )
            ],
            tags=args.tags,
            opts=pulumi.ResourceOptions(
                parent=self,
                depends_on=subnet_grants,
                # The autoscaler owns the node count.
                ignore_changes=["agentPoolProfiles[0].count"],
            ),
        )
        workload_pool = containerservice.AgentPool(
            f"{name}-{WORKLOAD_POOL}",
            agent_pool_name=WORKLOAD_POOL,
            resource_name_=cluster.name,
            resource_group_name=args.resource_group_name,
            mode="User",
            type="VirtualMachineScaleSets",
            vm_size=args.workload_vm_size,
            os_type="Linux",
            os_sku="AzureLinux",
            os_disk_type="Ephemeral",
            enable_encryption_at_host=args.encryption_at_host,
            enable_auto_scaling=True,
            min_count=args.workload_min_nodes,
            max_count=args.workload_max_nodes,
            count=max(args.workload_min_nodes, 1),
            availability_zones=zones,
            vnet_subnet_id=args.nodes_subnet_id,
            orchestrator_version=args.kubernetes_version,
            node_labels={WORKLOAD_POOL_LABEL: WORKLOAD_POOL},
            upgrade_settings=containerservice.AgentPoolUpgradeSettingsArgs(max_surge="33%"),
            tags=args.tags,
            opts=pulumi.ResourceOptions(parent=cluster, ignore_changes=["count"]),
        )
        containerservice.MaintenanceConfiguration(
            f"{name}-node-os-window",
            config_name="aksManagedNodeOSUpgradeSchedule",
            resource_name_=cluster.name,
            resource_group_name=args.resource_group_name,
            maintenance_window=containerservice.MaintenanceWindowArgs(
                schedule=containerservice.ScheduleArgs(
                    weekly=containerservice.WeeklyScheduleArgs(day_of_week=args.maintenance_day, interval_weeks=1)
                ),
                start_time=f"{args.maintenance_start_hour:02d}:00",
                duration_hours=args.maintenance_duration_hours,
                utc_offset="+00:00",
            ),
            opts=pulumi.ResourceOptions(parent=cluster),
        )

        kubelet_object_id = cluster.identity_profile.apply(
            lambda profile: (profile or {})["kubeletidentity"].object_id or ""
        )
        self.image_pull_ready: list[pulumi.Resource] = []
        if args.registry_id is not None:
            acr_pull = authorization.RoleAssignment(
                f"{name}-acr-pull",
                principal_id=kubelet_object_id,
                principal_type="ServicePrincipal",
                role_definition_id=azure_roles.role_definition(args.subscription_id, azure_roles.ACR_PULL),
                scope=args.registry_id,
                description="AKS nodes pull platform images",
                opts=pulumi.ResourceOptions(parent=cluster),
            )
            # Pods of images in the registry wait for it, or their first pulls are refused.
            self.image_pull_ready.append(acr_pull)

        # Deployer grants are configuration: CI and an in-cluster operator running `up` declare
        # the same set, so neither removes the other's access. Named by principal, so reordering
        # the list replaces nothing.
        deployer_grants = [
            authorization.RoleAssignment(
                f"{name}-deployer-admin-{principal}",
                principal_id=principal,
                role_definition_id=azure_roles.role_definition(
                    args.subscription_id, azure_roles.AKS_RBAC_CLUSTER_ADMIN
                ),
                scope=cluster.id,
                description="A configured deployer principal manages in-cluster resources",
                opts=pulumi.ResourceOptions(parent=cluster),
            )
            for principal in args.deployer_object_ids
        ]
        credential_dependencies: list[pulumi.Resource] = [cluster]
        credentials: pulumi.Output[Any]
        login = KubeloginLogin(args.kubelogin_mode, client_id=args.kubelogin_client_id)
        if args.local_accounts:
            credentials = containerservice.list_managed_cluster_admin_credentials_output(
                resource_group_name=args.resource_group_name, resource_name=cluster.name
            )
        else:
            # Bounded wait for the grants to reach the API server's authorizer; re-run whenever
            # the set of deployers changes.
            propagation = time.Sleep(
                f"{name}-rbac-propagation",
                create_duration=f"{args.rbac_propagation_seconds}s",
                triggers={"deployers": ",".join(sorted(args.deployer_object_ids))},
                opts=pulumi.ResourceOptions(parent=self, depends_on=list(deployer_grants)),
            )
            credential_dependencies += [*deployer_grants, propagation]
            credentials = containerservice.list_managed_cluster_user_credentials_output(
                resource_group_name=args.resource_group_name, resource_name=cluster.name, format="exec"
            )
        self.kubeconfig = pulumi.Output.secret(
            pulumi.Output.all(credentials.kubeconfigs.apply(lambda configs: configs[0].value), args.tenant_id).apply(
                lambda values: _decode_kubeconfig(
                    str(values[0]),
                    KubeloginLogin(login.mode, tenant_id=str(values[1]), client_id=login.client_id),
                )
            )
        )
        self.provider = kubernetes.Provider(
            f"{name}-kubernetes",
            kubeconfig=self.kubeconfig,
            delete_unreachable=False,
            opts=pulumi.ResourceOptions(parent=self, depends_on=credential_dependencies),
        )

        self.cluster = cluster
        self.user_node_pools = [workload_pool]
        self.cluster_name = cluster.name
        self.cluster_id = cluster.id
        self.kubelet_object_id = kubelet_object_id
        self.oidc_issuer_url = cluster.oidc_issuer_profile.apply(lambda p: (p.issuer_url if p else None) or "")
        self.register_outputs(
            {"clusterName": self.cluster_name, "oidcIssuerUrl": self.oidc_issuer_url, "kubeconfig": self.kubeconfig}
        )
