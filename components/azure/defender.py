"""Microsoft Defender for Containers on the stack's subscription: registry image scanning, runtime detection.

A subscription-wide plan (`Microsoft.Security/pricings/Containers`, tier Standard): every image
pushed to the registry is scanned for vulnerabilities and AKS gets runtime threat detection.
Because it is per subscription, only one stack may own it (`defenderForContainers` off where the
subscription is shared and its plans are managed elsewhere).

Registry quarantine is deliberately not turned on: with quarantine, a pushed image cannot be
pulled until a scanner releases it, and Defender does not release images, so pulls would block
forever (the policy pack refuses it).
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
from pulumi_azure_native import security

CONTAINERS_PLAN = "Containers"


@dataclass(frozen=True)
class DefenderForContainersArgs:
    subscription_id: pulumi.Input[str]


class DefenderForContainers(pulumi.ComponentResource):
    pricing: security.Pricing

    def __init__(self, name: str, args: DefenderForContainersArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlops:azure:DefenderForContainers", name, None, opts)
        self.pricing = security.Pricing(
            f"{name}-containers",
            pricing_name=CONTAINERS_PLAN,
            pricing_tier=security.PricingTier.STANDARD,
            scope_id=pulumi.Output.concat("/subscriptions/", args.subscription_id),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.register_outputs({})
