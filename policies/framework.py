"""How a policy of this pack is declared: metadata every rule must have, and property helpers.

A rule is a plain `check(props, args) -> messages` function over the resource's inputs as the
engine sees them (camelCase keys), wrapped into a `pulumi_policy` policy with a description,
severity, remediation text and tags. Each message names the offending property and value.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping
from typing import Any

from pulumi_policy import (
    PolicyConfigSchema,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    Severity,
    StackValidationArgs,
    StackValidationPolicy,
)

PACK_NAME = "mlops-platform"

# Tags that drive the per-environment enforcement levels in policies/config/*.json.
COST = "cost"
"""Capacity or redundancy that costs money: mandatory in prod, advisory in dev."""
PROD_ONLY = "prod-only"
"""Hardening dev deliberately relaxes (a named setting each): mandatory in prod, advisory in dev."""

ResourceCheck = Callable[[Mapping[str, Any], ResourceValidationArgs], Iterable[str]]
StackCheck = Callable[[StackValidationArgs], Iterable[tuple[str, str | None]]]
Policy = ResourceValidationPolicy | StackValidationPolicy


def get(props: Mapping[str, Any] | None, path: str, default: Any = None) -> Any:
    """`get(props, "backup.backupRetentionDays")`: a nested input, or `default` when any part is missing."""
    value: Any = props
    for part in path.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return default
        value = value[part]
    return default if value is None else value


def resource_policy(
    name: str,
    description: str,
    *,
    severity: Severity,
    remediation: str,
    types: Collection[str] | Callable[[str], bool],
    check: ResourceCheck,
    tags: Iterable[str] = (),
    config_schema: PolicyConfigSchema | None = None,
) -> ResourceValidationPolicy:
    """A resource policy that runs `check` on resources of `types` and reports each message."""
    applies: Callable[[str], bool] = types if callable(types) else frozenset(types).__contains__

    def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
        if not applies(args.resource_type):
            return
        for message in check(args.props, args):
            report_violation(message, None)

    return ResourceValidationPolicy(
        name=name,
        description=description,
        validate=validate,
        severity=severity,
        remediation_steps=remediation,
        tags=sorted(tags),
        config_schema=config_schema,
    )


def stack_policy(
    name: str,
    description: str,
    *,
    severity: Severity,
    remediation: str,
    check: StackCheck,
    tags: Iterable[str] = (),
    config_schema: PolicyConfigSchema | None = None,
) -> StackValidationPolicy:
    """A stack policy; `check` yields (message, urn of the offending resource or None)."""

    def validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
        for message, urn in check(args):
            report_violation(message, urn)

    return StackValidationPolicy(
        name=name,
        description=description,
        validate=validate,
        severity=severity,
        remediation_steps=remediation,
        tags=sorted(tags),
        config_schema=config_schema,
    )
