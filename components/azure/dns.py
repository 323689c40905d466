"""DNS of the platform's host names: the public zone, and the gateway's records in it (or privately).

- `PublicDnsZone`: the public Azure DNS zone the domain lives in. Either an existing zone
  (`dnsZoneResourceGroup` set: referenced by id, nothing created) or one the program creates in
  the stack's resource group, whose name servers the parent zone must delegate to
  (`dnsNameServers` output). cert-manager answers ACME DNS-01 challenges in it, in both cases.
- `GatewayDnsRecords`: `mlflow.<domain>`, `models.<domain>`, `grafana.<domain>` → the Istio
  ingress gateway's load-balancer address. With a public load balancer (dev) the A records go in
  the public zone; with an internal one (prod) they go in a private DNS zone named after the
  domain, linked to the VNet, so the names resolve only inside it (split horizon: the public zone
  keeps only the ACME challenge records, and nothing about the internal addresses leaks).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import pulumi
from pulumi_azure_native import dns, privatedns

RECORD_TTL_SECONDS = 300


def relative_name(host: str, zone: str) -> str:
    """`mlflow.dev.mlops.example.com` in zone `mlops.example.com` → `mlflow.dev` (`@` for the apex)."""
    if host == zone:
        return "@"
    suffix = "." + zone
    if not host.endswith(suffix):
        raise ValueError(f"{host} is not inside the zone {zone}")
    return host[: -len(suffix)]


def zone_id(subscription_id: str, resource_group: str, zone: str) -> str:
    """The ARM id of a public DNS zone (role assignments are scoped to it)."""
    return (
        f"/subscriptions/{subscription_id}/resourceGroups/{resource_group}/providers/Microsoft.Network/dnszones/{zone}"
    )


@dataclass(frozen=True)
class PublicDnsZoneArgs:
    zone_name: str
    subscription_id: pulumi.Input[str]
    existing_resource_group: str
    """Resource group of an existing zone; empty: the zone is created in `resource_group_name`."""
    resource_group_name: pulumi.Input[str]
    tags: dict[str, str] = field(default_factory=dict)
    protect: bool = False


class PublicDnsZone(pulumi.ComponentResource):
    zone_name: str
    zone_id: pulumi.Output[str]
    resource_group_name: pulumi.Output[str]
    name_servers: pulumi.Output[list[str]]
    """Where the parent zone must delegate a created zone (empty for an existing zone)."""

    def __init__(self, name: str, args: PublicDnsZoneArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlops:azure:PublicDnsZone", name, None, opts)
        self.zone_name = args.zone_name
        if args.existing_resource_group:
            group = args.existing_resource_group
            self.resource_group_name = pulumi.Output.from_input(group)
            self.zone_id = pulumi.Output.from_input(args.subscription_id).apply(
                lambda subscription: zone_id(subscription, group, args.zone_name)
            )
            self.name_servers = pulumi.Output.from_input([])
        else:
            zone = dns.Zone(
                f"{name}-zone",
                zone_name=args.zone_name,
                resource_group_name=args.resource_group_name,
                location="global",
                zone_type=dns.ZoneType.PUBLIC,
                tags=args.tags,
                # Recreating a zone changes its name servers and breaks the delegation.
                opts=pulumi.ResourceOptions(parent=self, protect=args.protect),
            )
            self.resource_group_name = pulumi.Output.from_input(args.resource_group_name)
            self.zone_id = zone.id
            self.name_servers = zone.name_servers.apply(lambda servers: list(servers or []))
        self.register_outputs({"zoneId": self.zone_id, "nameServers": self.name_servers})


@dataclass(frozen=True)
class GatewayDnsRecordsArgs:
    hosts: Sequence[str]
    address: pulumi.Input[str]
    """The ingress gateway's load-balancer IP."""
    private: bool
    """Internal load balancer: records in a private zone `domain` linked to the VNet."""
    domain: str
    public_zone: PublicDnsZone
    resource_group_name: pulumi.Input[str]
    vnet_id: pulumi.Input[str]
    vnet_link_name: str
    tags: dict[str, str] = field(default_factory=dict)


class GatewayDnsRecords(pulumi.ComponentResource):
    fqdns: list[str]

    def __init__(self, name: str, args: GatewayDnsRecordsArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlops:azure:GatewayDnsRecords", name, None, opts)
        self.fqdns = list(args.hosts)
        if args.private:
            zone = privatedns.PrivateZone(
                f"{name}-private-zone",
                private_zone_name=args.domain,
                resource_group_name=args.resource_group_name,
                location="global",
                tags=args.tags,
                opts=pulumi.ResourceOptions(parent=self),
            )
            privatedns.VirtualNetworkLink(
                f"{name}-private-zone-link",
                virtual_network_link_name=args.vnet_link_name,
                private_zone_name=zone.name,
                resource_group_name=args.resource_group_name,
                location="global",
                registration_enabled=False,
                virtual_network=privatedns.SubResourceArgs(id=args.vnet_id),
                tags=args.tags,
                opts=pulumi.ResourceOptions(parent=zone),
            )
            for host in args.hosts:
                privatedns.PrivateRecordSet(
                    f"{name}-{host.split('.')[0]}",
                    private_zone_name=zone.name,
                    resource_group_name=args.resource_group_name,
                    record_type="A",
                    relative_record_set_name=relative_name(host, args.domain),
                    ttl=RECORD_TTL_SECONDS,
                    a_records=[privatedns.ARecordArgs(ipv4_address=args.address)],
                    opts=pulumi.ResourceOptions(parent=zone),
                )
        else:
            for host in args.hosts:
                dns.RecordSet(
                    f"{name}-{host.split('.')[0]}",
                    zone_name=args.public_zone.zone_name,
                    resource_group_name=args.public_zone.resource_group_name,
                    record_type="A",
                    relative_record_set_name=relative_name(host, args.public_zone.zone_name),
                    ttl=RECORD_TTL_SECONDS,
                    a_records=[dns.ARecordArgs(ipv4_address=args.address)],
                    opts=pulumi.ResourceOptions(parent=self, depends_on=[args.public_zone]),
                )
        self.register_outputs({"fqdns": self.fqdns})
