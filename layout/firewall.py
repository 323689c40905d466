"""How a data service's public endpoint is exposed, computed once for storage, Key Vault and ACR."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class PublicExposure:
    """`deny_by_default` with no allowed ranges means the public endpoint is switched off."""

    public_network_access: Literal["Enabled", "Disabled"]
    default_action: Literal["Allow", "Deny"]
    allowed_ip_ranges: tuple[str, ...]

    @property
    def deny_by_default(self) -> bool:
        return self.default_action == "Deny"


def public_exposure(private_endpoints: bool, allowed_ip_ranges: list[str]) -> PublicExposure:
    """With private endpoints the public side denies everything but the operators' ranges.

    Without them (dev), the service stays reachable, still behind Entra ID authentication.
    """
    if not private_endpoints:
        return PublicExposure("Enabled", "Allow", ())
    ranges = tuple(allowed_ip_ranges)
    return PublicExposure("Enabled" if ranges else "Disabled", "Deny", ranges)


def api_server_ranges(allowed_ip_ranges: list[str], deployer_ip_ranges: list[str]) -> list[str]:
    """The AKS API server's authorized ranges: none (open, Entra still required) when the operators'
    ranges are empty; otherwise the operators' ranges plus where `pulumi up` runs, each once."""
    if not allowed_ip_ranges:
        return []
    return list(dict.fromkeys([*allowed_ip_ranges, *deployer_ip_ranges]))
