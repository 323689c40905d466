"""The clock of every generated credential: a time-based keeper and the expiry it implies.

A pulumiverse-time `Rotating` resource is created with the lifetime in days. Once the current
time passes its rotation timestamp, the provider's read reports it gone, so the next
`pulumi up` with refresh (Pulumi.yaml sets `options.refresh: always`) replaces it with a new
base timestamp. Its `rfc3339` is the keeper of every rotated password (pulumi-random replaces a
password when a keeper changes), so one rotation regenerates them all, and every dependent (the
PostgreSQL server's admin password, the Key Vault secrets, the pods' restart annotation)
follows in the same `up`. Key Vault secrets expire `grace_days` after the rotation date, so a
rotation nobody ran shows as an expired secret instead of going unnoticed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import pulumi
import pulumiverse_time as time

SECONDS_PER_DAY = 86_400


def expiry_epoch(rotation_rfc3339: str, grace_days: int) -> int:
    """Unix seconds of `rotation + grace` (Key Vault's `attributes.expires`)."""
    rotation = datetime.fromisoformat(rotation_rfc3339.replace("Z", "+00:00"))
    return int(rotation.timestamp()) + grace_days * SECONDS_PER_DAY


@dataclass(frozen=True)
class CredentialRotationArgs:
    lifetime_days: int
    grace_days: int


class CredentialRotation(pulumi.ComponentResource):
    generation: pulumi.Output[str]
    """Base timestamp of the current credentials (RFC 3339): changes exactly when they rotate."""
    keepers: dict[str, pulumi.Output[str]]
    """pulumi-random `keepers` of every rotated password."""
    expires: pulumi.Output[int]
    """Unix seconds at which the current credentials expire (rotation + grace)."""

    def __init__(self, name: str, args: CredentialRotationArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlops:azure:CredentialRotation", name, None, opts)
        keeper = time.Rotating(
            f"{name}-keeper", rotation_days=args.lifetime_days, opts=pulumi.ResourceOptions(parent=self)
        )
        self.generation = keeper.rfc3339
        self.keepers = {"rotation": keeper.rfc3339}
        self.expires = keeper.rotation_rfc3339.apply(lambda rotation: expiry_epoch(rotation, args.grace_days))
        self.register_outputs({"generation": self.generation})
