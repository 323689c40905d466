"""The environment's VNet: subnets for AKS nodes, PostgreSQL (delegated), private endpoints and,
with API Server VNet Integration, the AKS API server (delegated), and the private DNS zones that
make private endpoints and the VNet-integrated database resolvable.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pulumi
from pulumi_azure_native import network, privatedns

# Private DNS zones of the private-link services the platform uses (Azure's fixed zone names).
PRIVATE_LINK_ZONES = {
    "blob": "privatelink.blob.core.windows.net",
    "vault": "privatelink.vaultcore.azure.net",
    "registry": "privatelink.azurecr.io",
}


@dataclass(frozen=True)
class NetworkArgs:
    resource_group_name: pulumi.Input[str]
    location: str
    name: str
    address_space: str
    aks_nodes_prefix: str
    postgres_prefix: str
    private_endpoints_prefix: str
    postgres_dns_zone: str
    """`<name>.private.postgres.database.azure.com`: the zone of the VNet-integrated server."""
    private_endpoints: bool
    api_server_prefix: str | None = None
    """With AKS API Server VNet Integration: the subnet delegated to `Microsoft.ContainerService/managedClusters`
    that the API server's internal load balancer is projected into (AKS's minimum is a /28)."""
    tags: dict[str, str] = field(default_factory=dict)


class Network(pulumi.ComponentResource):
    """VNet, three subnets (four with the API server's), and private DNS zones linked to the VNet."""

    vnet_id: pulumi.Output[str]
    aks_nodes_subnet_id: pulumi.Output[str]
    postgres_subnet_id: pulumi.Output[str]
    private_endpoints_subnet_id: pulumi.Output[str]
    api_server_subnet_id: pulumi.Output[str] | None
    """The delegated API server subnet (None without API Server VNet Integration)."""
    postgres_dns_zone_id: pulumi.Output[str]
    postgres_dns_zone_link: pulumi.Resource
    """The VNet link of the PostgreSQL zone: the server resolves (and is created) only after it."""
    private_link_zone_ids: dict[str, pulumi.Output[str]]

    def __init__(self, name: str, args: NetworkArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlops:azure:Network", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)

        vnet = network.VirtualNetwork(
            f"{name}-vnet",
            virtual_network_name=args.name,
            resource_group_name=args.resource_group_name,
            location=args.location,
            address_space=network.AddressSpaceArgs(address_prefixes=[args.address_space]),
            tags=args.tags,
            opts=child,
        )
        self.vnet_id = vnet.id

        # Subnets are separate resources, created one after another: Azure rejects concurrent
        # updates of one VNet ("AnotherOperationInProgress").
        aks_nodes = network.Subnet(
            f"{name}-aks-nodes",
            subnet_name="aks-nodes",
            resource_group_name=args.resource_group_name,
            virtual_network_name=vnet.name,
            address_prefix=args.aks_nodes_prefix,
            default_outbound_access=False,
            opts=child,
        )
        postgres = network.Subnet(
            f"{name}-postgres",
            subnet_name="postgres",
            resource_group_name=args.resource_group_name,
            virtual_network_name=vnet.name,
            address_prefix=args.postgres_prefix,
            default_outbound_access=False,
            delegations=[
                network.DelegationArgs(name="postgres", service_name="Microsoft.DBforPostgreSQL/flexibleServers")
            ],
            opts=pulumi.ResourceOptions(parent=self, depends_on=[aks_nodes]),
        )
        endpoints = network.Subnet(
            f"{name}-private-endpoints",
            subnet_name="private-endpoints",
            resource_group_name=args.resource_group_name,
            virtual_network_name=vnet.name,
            address_prefix=args.private_endpoints_prefix,
            default_outbound_access=False,
            private_endpoint_network_policies="Enabled",
            opts=pulumi.ResourceOptions(parent=self, depends_on=[postgres]),
        )
        self.aks_nodes_subnet_id = aks_nodes.id
        self.postgres_subnet_id = postgres.id
        self.private_endpoints_subnet_id = endpoints.id
        self.api_server_subnet_id = None
        if args.api_server_prefix is not None:
            # Nothing else may use it; AKS injects the API server pods and their internal load
            # balancer here (the delegation grants it that). Last in the serialized chain.
            api_server = network.Subnet(
                f"{name}-aks-api-server",
                subnet_name="aks-api-server",
                resource_group_name=args.resource_group_name,
                virtual_network_name=vnet.name,
                address_prefix=args.api_server_prefix,
                default_outbound_access=False,
                delegations=[
                    network.DelegationArgs(name="aks", service_name="Microsoft.ContainerService/managedClusters")
                ],
                opts=pulumi.ResourceOptions(parent=self, depends_on=[endpoints]),
            )
            self.api_server_subnet_id = api_server.id

        self.postgres_dns_zone_id, self.postgres_dns_zone_link = self._linked_zone(
            name, "postgres", args.postgres_dns_zone, vnet, args
        )
        self.private_link_zone_ids = (
            {kind: self._linked_zone(name, kind, zone, vnet, args)[0] for kind, zone in PRIVATE_LINK_ZONES.items()}
            if args.private_endpoints
            else {}
        )

        self.register_outputs(
            {
                "vnetId": self.vnet_id,
                "aksNodesSubnetId": self.aks_nodes_subnet_id,
                "postgresSubnetId": self.postgres_subnet_id,
                "privateEndpointsSubnetId": self.private_endpoints_subnet_id,
                **({"apiServerSubnetId": self.api_server_subnet_id} if self.api_server_subnet_id is not None else {}),
            }
        )

    def _linked_zone(
        self, name: str, kind: str, zone_name: str, vnet: network.VirtualNetwork, args: NetworkArgs
    ) -> tuple[pulumi.Output[str], privatedns.VirtualNetworkLink]:
        zone = privatedns.PrivateZone(
            f"{name}-dns-{kind}",
            private_zone_name=zone_name,
            resource_group_name=args.resource_group_name,
            location="global",
            tags=args.tags,
            opts=pulumi.ResourceOptions(parent=self),
        )
        link = privatedns.VirtualNetworkLink(
            f"{name}-dns-{kind}-link",
            virtual_network_link_name=f"{args.name}-link",
            private_zone_name=zone.name,
            resource_group_name=args.resource_group_name,
            location="global",
            registration_enabled=False,
            virtual_network=privatedns.SubResourceArgs(id=vnet.id),
            tags=args.tags,
            opts=pulumi.ResourceOptions(parent=zone),
        )
        return zone.id, link
