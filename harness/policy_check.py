"""Run the CrossGuard pack against an evaluated program, offline, the way the Pulumi engine would.

The engine hands resource policies each resource's inputs and options, and stack policies every
resource with its parent and dependencies. Here the same `pulumi_policy` argument objects are
built from the mock engine's recording, so `policies/` runs unchanged; the stack's own resource
(`pulumi:pulumi:Stack`) carries the stack outputs, secrets wrapped in `pulumi_policy.Secret`.
Enforcement levels come from `policies/config/<stack>.json`, the file CI passes to
`--policy-pack-config`: a policy's own entry, else `all`, else mandatory.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema
from pulumi_policy import (
    EnforcementLevel,
    PolicyCustomTimeouts,
    PolicyProviderResource,
    PolicyResource,
    PolicyResourceOptions,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    Secret,
    StackValidationArgs,
)
from pulumi_policy.policy import _NotApplicableError

from harness.mock_engine import REPO_ROOT, Evaluation, RecordedResource
from policies.framework import Policy
from policies.pack import BY_NAME, POLICIES
from policies.stack import STACK_TYPE
from settings.problems import PROJECT

POLICY_CONFIG_DIR = REPO_ROOT / "policies" / "config"
# Turned on for the offline run only: here stack outputs keep their secret markers.
OFFLINE_POLICY_CONFIG = {"stack-credential-outputs-secret": {"secretnessVisible": True}}


@dataclass(frozen=True)
class Violation:
    policy: str
    resource: str
    """Name of the resource, or the stack's name for stack-level findings."""
    type: str
    urn: str
    level: str
    """`mandatory` or `advisory`."""
    severity: str
    message: str
    remediation: str

    def as_json(self) -> dict[str, str]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class PackConfig:
    """Enforcement level and configuration of every policy for one stack."""

    source: str
    levels: dict[str, EnforcementLevel] = field(default_factory=dict)
    default: EnforcementLevel = EnforcementLevel.MANDATORY
    properties: dict[str, dict[str, Any]] = field(default_factory=dict)

    def level(self, policy: str) -> EnforcementLevel:
        return self.levels.get(policy, self.default)

    def config(self, policy: str) -> dict[str, Any]:
        return {**self.properties.get(policy, {}), **OFFLINE_POLICY_CONFIG.get(policy, {})}


def _level(value: Any, where: str) -> EnforcementLevel:
    try:
        return EnforcementLevel(value)
    except ValueError:
        allowed = ", ".join(level.value for level in EnforcementLevel)
        raise ValueError(f"{where}: enforcement level {value!r} is not one of {allowed}") from None


def _check_properties(policy: Policy, settings: Mapping[str, Any], where: str) -> None:
    """Configuration must match the policy's config schema, as `pulumi policy validate-config` checks."""
    declared = policy.config_schema.properties if policy.config_schema else {}
    schema = {"type": "object", "properties": declared, "additionalProperties": False}
    problems = sorted(error.message for error in jsonschema.Draft7Validator(schema).iter_errors(dict(settings)))
    if problems:
        raise ValueError(f"{where}: {'; '.join(problems)}")


def parse_pack_config(document: Mapping[str, Any], source: str) -> PackConfig:
    """A `--policy-pack-config` document; unknown policy names are an error (a typo would disable nothing)."""
    levels: dict[str, EnforcementLevel] = {}
    properties: dict[str, dict[str, Any]] = {}
    default = EnforcementLevel.MANDATORY
    for name, entry in document.items():
        if name != "all" and name not in BY_NAME:
            raise ValueError(f"{source}: {name!r} is not a policy of the pack")
        settings = dict(entry) if isinstance(entry, Mapping) else {"enforcementLevel": entry}
        level = settings.pop("enforcementLevel", None)
        if name == "all":
            if settings:
                raise ValueError(f"{source}: 'all' takes only an enforcement level")
            default = _level(level, f"{source}: all") if level is not None else default
            continue
        if level is not None:
            levels[name] = _level(level, f"{source}: {name}")
        if settings:
            _check_properties(BY_NAME[name], settings, f"{source}: {name}")
            properties[name] = settings
    return PackConfig(source, levels, default, properties)


def load_pack_config(stack: str, config_dir: Path = POLICY_CONFIG_DIR) -> PackConfig:
    """`policies/config/<stack>.json`; a stack without one gets every policy mandatory."""
    path = config_dir / f"{stack}.json"
    if not path.exists():
        return PackConfig(f"no {path.name}: every policy mandatory")
    return parse_pack_config(json.loads(path.read_text()), str(path.relative_to(config_dir.parent.parent)))


def stack_urn(stack: str) -> str:
    return f"urn:pulumi:{stack}::{PROJECT}::{STACK_TYPE}::{PROJECT}-{stack}"


def _options(resource: RecordedResource) -> PolicyResourceOptions:
    return PolicyResourceOptions(
        protect=resource.protect,
        ignore_changes=list(resource.ignore_changes),
        delete_before_replace=None,
        aliases=[],
        custom_timeouts=PolicyCustomTimeouts(0, 0, 0),
        additional_secret_outputs=list(resource.additional_secret_outputs),
        parent=resource.parent or None,
    )


def _provider(resource: RecordedResource, by_urn: Mapping[str, RecordedResource]) -> PolicyProviderResource | None:
    """The explicit provider (a reference is `<urn>::<id>`); default providers are not recorded."""
    if not resource.provider:
        return None
    provider = by_urn.get(resource.provider.rsplit("::", 1)[0])
    if provider is None:
        return None
    return PolicyProviderResource(provider.type, provider.inputs, provider.urn, provider.name)


@dataclass
class PolicyInputs:
    """What the engine would hand the analyzer for one program run."""

    evaluation: Evaluation
    by_urn: dict[str, RecordedResource]
    options: dict[str, PolicyResourceOptions]
    providers: dict[str, PolicyProviderResource | None]
    stack_resources: list[PolicyResource]

    @classmethod
    def of(cls, evaluation: Evaluation) -> PolicyInputs:
        by_urn = evaluation.by_urn()
        options = {r.urn: _options(r) for r in evaluation.resources}
        providers = {r.urn: _provider(r, by_urn) for r in evaluation.resources}
        root = stack_urn(evaluation.stack)
        outputs = {name: Secret(out.value) if out.secret else out.value for name, out in evaluation.outputs.items()}
        stack = PolicyResource(
            STACK_TYPE,
            outputs,
            root,
            f"{PROJECT}-{evaluation.stack}",
            PolicyResourceOptions(False, [], None, [], PolicyCustomTimeouts(0, 0, 0), [], None),
            None,
            None,
            [],
            {},
        )
        resources = {
            r.urn: PolicyResource(r.type, r.inputs, r.urn, r.name, options[r.urn], providers[r.urn], None, [], {})
            for r in evaluation.resources
        }
        resources[root] = stack
        for recorded in evaluation.resources:
            resource = resources[recorded.urn]
            resource.parent = resources.get(recorded.parent) or (stack if recorded.parent else None)
            resource.dependencies = [resources[d] for d in recorded.dependencies if d in resources]
        return cls(evaluation, by_urn, options, providers, [stack, *(resources[r.urn] for r in evaluation.resources)])


@dataclass
class _Collector:
    """The `report_violation` callbacks of one policy run, turned into `Violation`s."""

    evaluation: Evaluation
    by_urn: Mapping[str, RecordedResource]
    policy: Policy
    level: str
    violations: list[Violation]

    def report(self, message: str, urn: str | None) -> None:
        target = self.by_urn.get(urn or "")
        stack = f"{PROJECT}-{self.evaluation.stack}"
        self.violations.append(
            Violation(
                policy=self.policy.name,
                resource=target.name if target else stack,
                type=target.type if target else STACK_TYPE,
                urn=target.urn if target else stack_urn(self.evaluation.stack),
                level=self.level,
                severity=self.policy.severity.value if self.policy.severity else "",
                message=message,
                remediation=self.policy.remediation_steps or "",
            )
        )

    def reporter_for(self, urn: str) -> Callable[[str, str | None], None]:
        """Resource policies report against the resource being validated, whatever urn they pass."""

        def report(message: str, _urn: str | None = None) -> None:
            self.report(message, urn)

        return report


def _validate(policy: Policy, args: Any, report: Callable[[str, str | None], None]) -> None:
    """One validation; `args.not_applicable(...)` ends it without a violation, as under the CLI."""
    try:
        policy.validate(args, report)
    except _NotApplicableError:
        return


def run_policies(evaluation: Evaluation, config: PackConfig, policies: list[Policy] | None = None) -> list[Violation]:
    """Every violation of `policies` (default: the whole pack) in the evaluated program."""
    inputs = PolicyInputs.of(evaluation)
    violations: list[Violation] = []
    for policy in POLICIES if policies is None else policies:
        level = config.level(policy.name)
        if level == EnforcementLevel.DISABLED:
            continue
        shown = "advisory" if level == EnforcementLevel.ADVISORY else "mandatory"
        collector = _Collector(evaluation, inputs.by_urn, policy, shown, violations)
        if isinstance(policy, ResourceValidationPolicy):
            for resource in evaluation.resources:
                args = ResourceValidationArgs(
                    resource.type,
                    resource.inputs,
                    resource.urn,
                    resource.name,
                    inputs.options[resource.urn],
                    inputs.providers[resource.urn],
                    config.config(policy.name),
                )
                _validate(policy, args, collector.reporter_for(resource.urn))
        else:
            _validate(policy, StackValidationArgs(inputs.stack_resources, config.config(policy.name)), collector.report)
    return violations


def mandatory(violations: list[Violation]) -> list[Violation]:
    return [v for v in violations if v.level == "mandatory"]
