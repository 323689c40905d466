"""A private endpoint for one Azure service, registered in its private DNS zone."""

from __future__ import annotations

from dataclasses import dataclass, field

import pulumi
from pulumi_azure_native import network


@dataclass(frozen=True)
class PrivateEndpointPlacement:
    """Where a service's private endpoint goes, and the DNS zone it registers in."""

    subnet_id: pulumi.Input[str]
    dns_zone_id: pulumi.Input[str]


@dataclass(frozen=True)
class PrivateLinkArgs:
    resource_group_name: pulumi.Input[str]
    location: str
    endpoint_name: str
    target_resource_id: pulumi.Input[str]
    group_id: str
    """Sub-resource of the target (`blob`, `vault`, `registry`)."""
    placement: PrivateEndpointPlacement
    tags: dict[str, str] = field(default_factory=dict)


class PrivateLink(pulumi.ComponentResource):
    """Private endpoint + DNS zone group, so the service's hostname resolves to the VNet address."""

    endpoint_id: pulumi.Output[str]

    def __init__(self, name: str, args: PrivateLinkArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlops:azure:PrivateLink", name, None, opts)
        endpoint = network.PrivateEndpoint(
            f"{name}-pe",
            private_endpoint_name=args.endpoint_name,
            resource_group_name=args.resource_group_name,
            location=args.location,
            subnet=network.SubnetArgs(id=args.placement.subnet_id),
            private_link_service_connections=[
                network.PrivateLinkServiceConnectionArgs(
                    name=args.endpoint_name,
                    private_link_service_id=args.target_resource_id,
                    group_ids=[args.group_id],
                )
            ],
            tags=args.tags,
            opts=pulumi.ResourceOptions(parent=self),
        )
        network.PrivateDnsZoneGroup(
            f"{name}-dns",
            private_dns_zone_group_name="default",
            private_endpoint_name=endpoint.name,
            resource_group_name=args.resource_group_name,
            private_dns_zone_configs=[
                network.PrivateDnsZoneConfigArgs(name=args.group_id, private_dns_zone_id=args.placement.dns_zone_id)
            ],
            opts=pulumi.ResourceOptions(parent=endpoint),
        )
        self.endpoint_id = endpoint.id
        self.register_outputs({"endpointId": self.endpoint_id})
