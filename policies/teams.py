"""Team isolation, checked on what a stack declares (stack policies: each rule relates several resources).

A team's namespaces carry `mlops.platform/team: <team>` (`layout.team_layout.TEAM_LABEL`); a team's
models Stack names its MLflow workspace in the literal envRef `MLFLOW_WORKSPACE`; a team's blob
readers are the role assignments `team-<t>-{model-reader,job-runner}-container`
(components/azure/team_identities.py). From those:

- `team-namespace-walls`: every team namespace has a ResourceQuota and a NetworkPolicy;
- `team-stack-confined`: a team Stack's service account is bound (RoleBinding) in its team's serving
  namespace only, and cluster-wide to nothing but `system:auth-delegator` (the operator's token review);
- `team-reader-abac`: a team's blob reader assignment carries the version 2.0 condition on its own
  `workspaces/<team>/` prefix;
- `team-namespace-shared`: no namespace is declared twice, nor labelled for two teams.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterator, Mapping
from typing import Any, Final

from pulumi_policy import Severity, StackValidationArgs

from layout import azure_roles, resource_types, team_layout
from layout.storage_abac import CONDITION_VERSION, team_artifact_prefix
from policies.framework import get, stack_policy

NAMESPACE: Final = "kubernetes:core/v1:Namespace"
RESOURCE_QUOTA: Final = "kubernetes:core/v1:ResourceQuota"
NETWORK_POLICY: Final = "kubernetes:networking.k8s.io/v1:NetworkPolicy"
ROLE_BINDING: Final = "kubernetes:rbac.authorization.k8s.io/v1:RoleBinding"
CLUSTER_ROLE_BINDING: Final = "kubernetes:rbac.authorization.k8s.io/v1:ClusterRoleBinding"
STACK: Final = "kubernetes:pulumi.com/v1:Stack"
ROLE_ASSIGNMENT: Final = resource_types.ROLE_ASSIGNMENT
TEAM_READER_ASSIGNMENT: Final = re.compile(r"^team-(?P<team>[a-z0-9-]+)-(model-reader|job-runner)-container$")
ALLOWED_CLUSTER_ROLE: Final = "system:auth-delegator"
Finding = tuple[str, str | None]


def _team_namespaces(args: StackValidationArgs) -> dict[str, tuple[str, str]]:
    """Namespace name → (team, urn) for every namespace labelled with a team."""
    found = {}
    for resource in args.resources:
        if resource.resource_type == NAMESPACE:
            labels = get(resource.props, "metadata.labels", {})
            team = labels.get(team_layout.TEAM_LABEL) if isinstance(labels, Mapping) else None
            if team:
                found[str(get(resource.props, "metadata.name"))] = (str(team), resource.urn)
    return found


def _in_namespace(args: StackValidationArgs, type_token: str) -> set[str]:
    return {str(get(r.props, "metadata.namespace")) for r in args.resources if r.resource_type == type_token}


def _walls(args: StackValidationArgs) -> Iterator[Finding]:
    quotas, policies = _in_namespace(args, RESOURCE_QUOTA), _in_namespace(args, NETWORK_POLICY)
    for namespace, (team, urn) in sorted(_team_namespaces(args).items()):
        if namespace not in quotas:
            yield f"team {team}'s namespace {namespace} has no ResourceQuota", urn
        if namespace not in policies:
            yield f"team {team}'s namespace {namespace} has no NetworkPolicy", urn


def _stack_team(props: Mapping[str, Any]) -> str | None:
    """The team a Stack serves: its `MLFLOW_WORKSPACE` literal envRef (None: the platform's own Stack)."""
    refs = get(props, "spec.envRefs", {})
    value = get(refs.get("MLFLOW_WORKSPACE"), "literal.value") if isinstance(refs, Mapping) else None
    return str(value) if value else None


def _subjects(props: Mapping[str, Any]) -> set[tuple[str, str]]:
    return {
        (str(s.get("namespace")), str(s.get("name")))
        for s in props.get("subjects") or []
        if isinstance(s, Mapping) and s.get("kind") == "ServiceAccount"
    }


def _confined(args: StackValidationArgs) -> Iterator[Finding]:
    namespaces = _team_namespaces(args)
    serving = {
        team: name
        for name, (team, _) in namespaces.items()
        for r in args.resources
        if r.resource_type == NAMESPACE
        and get(r.props, "metadata.name") == name
        and (get(r.props, "metadata.labels", {}) or {}).get(team_layout.TEAM_NAMESPACE_KIND_LABEL) == "serving"
    }
    accounts = {}
    for resource in args.resources:
        team = _stack_team(resource.props) if resource.resource_type == STACK else None
        if team:
            account = (
                str(get(resource.props, "metadata.namespace")),
                str(get(resource.props, "spec.serviceAccountName")),
            )
            accounts[account] = team
    for resource in args.resources:
        if resource.resource_type not in (ROLE_BINDING, CLUSTER_ROLE_BINDING):
            continue
        for account in _subjects(resource.props) & accounts.keys():
            team = accounts[account]
            if resource.resource_type == CLUSTER_ROLE_BINDING:
                if get(resource.props, "roleRef.name") != ALLOWED_CLUSTER_ROLE:
                    yield f"team {team}'s Stack account {account[1]} is bound cluster-wide", resource.urn
            elif get(resource.props, "metadata.namespace") != serving.get(team):
                where = get(resource.props, "metadata.namespace")
                yield f"team {team}'s Stack account {account[1]} is bound in namespace {where}", resource.urn


def _abac(args: StackValidationArgs) -> Iterator[Finding]:
    for resource in args.resources:
        match = TEAM_READER_ASSIGNMENT.match(resource.name) if resource.resource_type == ROLE_ASSIGNMENT else None
        if match is None or not str(get(resource.props, "roleDefinitionId", "")).endswith(
            azure_roles.STORAGE_BLOB_DATA_READER
        ):
            continue
        team = match.group("team")
        condition = str(get(resource.props, "condition", ""))
        if f"'{team_artifact_prefix(team)}'" not in condition:
            yield f"team {team}'s blob reader has no condition on {team_artifact_prefix(team)}", resource.urn
        elif get(resource.props, "conditionVersion") != CONDITION_VERSION:
            yield f"team {team}'s blob reader condition is not version {CONDITION_VERSION}", resource.urn


def _shared(args: StackValidationArgs) -> Iterator[Finding]:
    declared: dict[str, list[Any]] = defaultdict(list)
    for resource in args.resources:
        if resource.resource_type == NAMESPACE:
            declared[str(get(resource.props, "metadata.name"))].append(resource)
    for name, resources in sorted(declared.items()):
        teams = {
            str((get(r.props, "metadata.labels", {}) or {}).get(team_layout.TEAM_LABEL, "")) for r in resources
        } - {""}
        if len(resources) > 1 and teams:
            yield f"namespace {name} is declared {len(resources)} times (teams {sorted(teams)})", resources[1].urn


POLICIES = [
    stack_policy(
        "team-namespace-walls",
        "Every team namespace has a ResourceQuota and a NetworkPolicy.",
        severity=Severity.HIGH,
        remediation="Declare team namespaces through components.cluster.team_tenancy.TeamTenancy, which adds both.",
        check=_walls,
        tags=("security", "teams"),
    ),
    stack_policy(
        "team-stack-confined",
        "A team's models Stack account is bound only in its team's serving namespace.",
        severity=Severity.CRITICAL,
        remediation="Bind the team Stack's service account with a RoleBinding in the team's namespace only "
        "(components.cluster.team_tenancy); cluster-wide, only system:auth-delegator.",
        check=_confined,
        tags=("security", "teams"),
    ),
    stack_policy(
        "team-reader-abac",
        "A team's blob reader is confined to the team's workspaces/<team>/ prefix by an ABAC condition.",
        severity=Severity.CRITICAL,
        remediation="Give the assignment condition=layout.storage_abac.team_blob_read_condition(...) and "
        "conditionVersion 2.0 (RoleGrant.condition).",
        check=_abac,
        tags=("security", "teams"),
    ),
    stack_policy(
        "team-namespace-shared",
        "No two teams share a namespace.",
        severity=Severity.CRITICAL,
        remediation="Give each team its own namespace (teams[].overrides.namespace); the settings refuse a "
        "shared one before anything is declared.",
        check=_shared,
        tags=("security", "teams"),
    ),
]
