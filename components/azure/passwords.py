"""Generated passwords: 32 letters and digits (no symbols, so they are safe in URIs and INI files)."""

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
