"""Azure Container Registry for the platform's own images (built by components/azure/platform_images.py).

Entra ID only: no admin user, no anonymous pull. AKS pulls with its kubelet identity (AcrPull,
assigned in the AKS component).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pulumi
from pulumi_azure_native import containerregistry

from components.azure.private_link import PrivateEndpointPlacement, private_link
from layout.firewall import PublicExposure


@dataclass(frozen=True)
class ContainerRegistryArgs:
    resource_group_name: pulumi.Input[str]
    location: str
    registry_name: str
    sku: str
    exposure: PublicExposure
    private_endpoint: PrivateEndpointPlacement | None
    zone_redundant: bool = False
    tags: dict[str, str] = field(default_factory=dict)


class ContainerRegistry(pulumi.ComponentResource):
    registry_id: pulumi.Output[str]
    login_server: pulumi.Output[str]

    def __init__(self, name: str, args: ContainerRegistryArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlops:azure:ContainerRegistry", name, None, opts)
        premium = args.sku == "Premium"
        registry = containerregistry.Registry(
            f"{name}-registry",
            registry_name=args.registry_name,
            resource_group_name=args.resource_group_name,
            location=args.location,
            sku=containerregistry.SkuArgs(name=args.sku),
            admin_user_enabled=False,
            anonymous_pull_enabled=False,
            # Firewall rules and zone redundancy exist on Premium only.
            public_network_access=args.exposure.public_network_access if premium else "Enabled",
            network_rule_set=(
                containerregistry.NetworkRuleSetArgs(
                    default_action=args.exposure.default_action,
                    ip_rules=[
                        containerregistry.IPRuleArgs(i_p_address_or_range=cidr, action="Allow")
                        for cidr in args.exposure.allowed_ip_ranges
                    ],
                )
                if premium
                else None
            ),
            zone_redundancy="Enabled" if premium and args.zone_redundant else "Disabled",
            tags=args.tags,
            opts=pulumi.ResourceOptions(parent=self),
        )
        if premium:  # private endpoints exist on Premium only
            private_link(
                self,
                name,
                args,
                endpoint_name=f"{args.registry_name}-pe",
                target_resource_id=registry.id,
                group_id="registry",
            )
        self.registry_id = registry.id
        self.login_server = registry.login_server
        self.register_outputs({"registryId": self.registry_id, "loginServer": self.login_server})
