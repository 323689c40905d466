"""Every policy of the pack, in one list (the order of the report)."""

from __future__ import annotations

from policies import azure, kubernetes, rollouts, stack, teams
from policies.framework import PACK_NAME, Policy

POLICIES: list[Policy] = [*azure.POLICIES, *kubernetes.POLICIES, *rollouts.POLICIES, *stack.POLICIES, *teams.POLICIES]
BY_NAME: dict[str, Policy] = {policy.name: policy for policy in POLICIES}

__all__ = ["BY_NAME", "PACK_NAME", "POLICIES"]
