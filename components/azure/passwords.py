"""Generated secrets: passwords of 32 letters and digits (no symbols, so they are safe in URIs and INI
files), and Fernet keys (32 random bytes, url-safe base64, as `cryptography.fernet.Fernet` requires)."""

from __future__ import annotations

from collections.abc import Mapping

import pulumi
import pulumi_random as random


def generated_password(
    resource_name: str, parent: pulumi.Resource, keepers: Mapping[str, pulumi.Input[str]] | None = None
) -> random.RandomPassword:
    """A new password; a change of any `keepers` value (the rotation keeper) generates a new one."""
    return random.RandomPassword(
        resource_name,
        length=32,
        special=False,
        min_upper=2,
        min_lower=2,
        min_numeric=2,
        keepers=dict(keepers) if keepers else None,
        opts=pulumi.ResourceOptions(parent=parent),
    )


def urlsafe_base64(standard: str) -> str:
    """Standard base64 (what `RandomBytes.base64` gives) in the url-safe alphabet Fernet keys use."""
    return standard.replace("+", "-").replace("/", "_")


def generated_fernet_key(resource_name: str, parent: pulumi.Resource) -> pulumi.Output[str]:
    key = random.RandomBytes(resource_name, length=32, opts=pulumi.ResourceOptions(parent=parent))
    return pulumi.Output.secret(key.base64.apply(urlsafe_base64))
