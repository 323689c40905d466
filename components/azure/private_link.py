"""A private endpoint for one Azure service, registered in its private DNS zone."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import pulumi
from pulumi_azure_native import network


@dataclass(frozen=True)
class PrivateEndpointPlacement:
    """Where a service's private endpoint goes, and the DNS zone it registers in."""

    subnet_id: pulumi.Input[str]
    dns_zone_id: pulumi.Input[str]


class PrivatelyReachable(Protocol):
    """What the Args of a service with a private endpoint share (storage, Key Vault, registry)."""

    @property
    def resource_group_name(self) -> pulumi.Input[str]: ...
    @property
    def location(self) -> str: ...
    @property
    def private_endpoint(self) -> PrivateEndpointPlacement | None:
        """Subnet and DNS zone of the endpoint; `None`: the service has none."""
        ...

    @property
    def tags(self) -> dict[str, str]: ...


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


def private_link(
    owner: pulumi.ComponentResource,
    owner_name: str,
    service: PrivatelyReachable,
    *,
    endpoint_name: str,
    target_resource_id: pulumi.Input[str],
    group_id: str,
) -> PrivateLink | None:
    """The private endpoint of `owner`'s service when its Args place one, else nothing.

    Named `<owner_name>-private-link` and parented to `owner`: the name and the parent are part of
    the URNs of the endpoint and its DNS zone group, so changing either makes Pulumi replace them
    (tests/test_azure_foundation.py pins the prod URNs).
    """
    if service.private_endpoint is None:
        return None
    return PrivateLink(
        f"{owner_name}-private-link",
        PrivateLinkArgs(
            resource_group_name=service.resource_group_name,
            location=service.location,
            endpoint_name=endpoint_name,
            target_resource_id=target_resource_id,
            group_id=group_id,
            placement=service.private_endpoint,
            tags=service.tags,
        ),
        opts=pulumi.ResourceOptions(parent=owner),
    )
