"""Generated passwords: 32 letters and digits (no symbols, so they are safe in URIs and INI files)."""

from __future__ import annotations

import pulumi
import pulumi_random as random


def generated_password(resource_name: str, parent: pulumi.Resource) -> random.RandomPassword:
    return random.RandomPassword(
        resource_name,
        length=32,
        special=False,
        min_upper=2,
        min_lower=2,
        min_numeric=2,
        opts=pulumi.ResourceOptions(parent=parent),
    )
