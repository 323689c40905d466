"""Resource names: deterministic, within each Azure service's length and character rules.

Names are computed, not auto-suffixed by Pulumi, so operators can find `mlops-prod-aks` in the
portal and so the offline preview shows the names a real `pulumi up` will use. Globally unique
names (storage, Key Vault, registry, PostgreSQL) get a short stable hash of the environment's
identity, which includes the subscription id: the same stack file deployed to two subscriptions
(a sandbox and the real one, two tenants' copies) never asks Azure for the same global name.
"""

from __future__ import annotations

import hashlib
import re


def regional_name(prefix: str, environment: str, kind: str) -> str:
    """`mlops-prod-aks`: unique within a resource group."""
    return f"{prefix}-{environment}-{kind}"


def unique_suffix(*identity: str, length: int = 6) -> str:
    """A stable hex suffix from what identifies the environment (subscription, prefix, environment,
    region, owner)."""
    return hashlib.sha256("/".join(identity).encode()).hexdigest()[:length]


def global_name(prefix: str, environment: str, kind: str, suffix: str, *, max_length: int, hyphens: bool) -> str:
    """A globally unique name: letters and digits (and hyphens where allowed), at most `max_length`.

    The suffix is kept whole and the descriptive part shortened, so truncation never makes two
    environments collide.
    """
    parts = [prefix, environment, kind]
    separator = "-" if hyphens else ""
    stem = separator.join(parts)
    if not hyphens:
        stem = re.sub(r"[^a-z0-9]", "", stem.lower())
    room = max_length - len(suffix) - len(separator)
    if room < 3:
        raise ValueError(f"no room for a name of kind {kind!r} in {max_length} characters")
    return f"{stem[:room].rstrip('-')}{separator}{suffix}"


class PlatformNames:
    """Every Azure name of one environment, computed from the settings that identify it."""

    def __init__(self, prefix: str, environment: str, location: str, owner: str, subscription_id: str) -> None:
        self.prefix = prefix
        self.environment = environment
        self.subscription_id = subscription_id
        # The subscription comes first and is case-folded: Azure prints GUIDs in either case.
        self.suffix = unique_suffix(subscription_id.lower(), prefix, environment, location, owner)

    def regional(self, kind: str) -> str:
        return regional_name(self.prefix, self.environment, kind)

    @property
    def resource_group(self) -> str:
        return f"rg-{self.regional('platform')}"

    @property
    def storage_account(self) -> str:
        return global_name(self.prefix, self.environment, "art", self.suffix, max_length=24, hyphens=False)

    @property
    def key_vault(self) -> str:
        return global_name(self.prefix, self.environment, "kv", self.suffix, max_length=24, hyphens=True)

    @property
    def container_registry(self) -> str:
        return global_name(self.prefix, self.environment, "acr", self.suffix, max_length=50, hyphens=False)

    @property
    def postgres_server(self) -> str:
        return global_name(self.prefix, self.environment, "pg", self.suffix, max_length=63, hyphens=True)

    @property
    def postgres_dns_zone(self) -> str:
        return f"{self.postgres_server}.private.postgres.database.azure.com"

    def identity(self, key: str) -> str:
        return f"id-{self.regional(key)}"
