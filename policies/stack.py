"""Stack-wide rules over every resource at once: credential-like stack outputs must be secret."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from pulumi_policy import PolicyConfigSchema, Secret, Severity, StackValidationArgs

from layout import resource_types
from policies.framework import stack_policy

STACK_TYPE = resource_types.STACK

# Output names that say "credential" (camelCase split into lower-case words, then joined).
CREDENTIAL_NAME = re.compile(
    r"kubeconfig|password|passwd|secret|token|credential|connectionstring|sastoken|"
    r"(access|private|account|primary|secondary|shared|admin|api|storage)key"
)
# Values that are credentials whatever the output is called.
CREDENTIAL_VALUE = re.compile(
    r"client-key-data|-----BEGIN [A-Z ]*PRIVATE KEY-----|AccountKey=|[a-z][a-z0-9+.-]*://[^/\s:@]+:[^/\s@]+@|[?&]sig="
)


def credential_reason(name: str, value: Any) -> str | None:
    """Why an output looks like a credential, or None."""
    if CREDENTIAL_NAME.search(name.lower()):
        return "its name says it is a credential"
    if isinstance(value, str) and CREDENTIAL_VALUE.search(value):
        return "its value holds a credential (key, password in a URI, SAS signature)"
    if isinstance(value, dict):
        for key, item in value.items():
            reason = credential_reason(f"{name}.{key}", item)
            if reason:
                return reason
    if isinstance(value, list):
        for item in value:
            reason = credential_reason(name, item)
            if reason:
                return reason
    return None


def _credential_outputs(args: StackValidationArgs) -> Iterator[tuple[str, str | None]]:
    if not args.get_config().get("secretnessVisible", False):
        # The Python analyzer unwraps secrets before stack policies see them, so under the Pulumi
        # CLI secretness cannot be observed; `mlopsctl preview` passes it and turns this on.
        args.not_applicable("secretness of stack outputs is not visible to this analyzer")
        return
    for resource in args.resources:
        if resource.resource_type != STACK_TYPE:
            continue
        for name, value in resource.props.items():
            if isinstance(value, Secret) or value is None:
                continue
            reason = credential_reason(name, value)
            if reason:
                yield f"stack output {name} is not secret but {reason}", resource.urn


POLICIES = [
    stack_policy(
        "stack-credential-outputs-secret",
        "Stack outputs that are or contain credentials are secret.",
        severity=Severity.CRITICAL,
        remediation="Export the value with pulumi.Output.secret(...) (or keep it in Key Vault and export its name).",
        check=_credential_outputs,
        tags=("security", "outputs"),
        config_schema=PolicyConfigSchema(properties={"secretnessVisible": {"type": "boolean", "default": False}}),
    ),
]
