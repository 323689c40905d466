"""The `teams` setting: the ML teams one platform serves, each isolated in its own MLflow workspace.

One entry onboards a team. Its `name` is used verbatim as the MLflow workspace, the default
Kubernetes namespace of its serving, the prefix of its MLflow users (`<name>-automation`,
`<name>-reader`) and of its models Stack (`<name>-<environment>`), so it must be valid for all of
them at once: a DNS label of 2-63 characters (MLflow 3.17.2's `WorkspaceNameValidator`: pattern
`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`, 2-63 characters, `workspaces`, `api`, `ajax-api`,
`static-files` reserved) that is not MLflow's shared `default` workspace nor a Kubernetes
system namespace.

Groups are Entra object ids (GUIDs), never display names: names are neither unique nor stable.

`validate_teams` turns the raw list (as a stack file holds it) into typed teams or the problems
in the same form as every other bad key (`settings.problems.Problem`), so the lead can wire it
into `PlatformSettings` without changing how errors read.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Annotated, Final

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, TypeAdapter, ValidationError
from pydantic.alias_generators import to_camel

from settings.labels import Dns1123Label
from settings.problems import Problem

TEAMS_KEY: Final = "teams"
RESERVED_TEAM_NAMES: Final = frozenset(
    {
        "default",  # MLflow's shared workspace: every client without a workspace lands there
        "workspaces",  # MLflow 3.17.2 WorkspaceNameValidator._RESERVED
        "api",
        "ajax-api",
        "static-files",
        "kube-system",
        "kube-public",
        "kube-node-lease",
    }
)
AUTOMATION_SUFFIX: Final = "-automation"
READER_SUFFIX: Final = "-reader"
JOBS_SUFFIX: Final = "-jobs"
MAX_NAME_LENGTH: Final = 63 - len(AUTOMATION_SUFFIX)
"""MLflow user names are free-form, but `<name>-automation` is also a Kubernetes Secret and Key
Vault secret name in the cluster: keep it a DNS label too."""


def _team_name(value: str) -> str:
    if not re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", value):
        raise ValueError("a DNS label: lowercase letters, digits and inner hyphens (MLflow workspace pattern)")
    if value in RESERVED_TEAM_NAMES:
        raise ValueError(f"a name other than the reserved {sorted(RESERVED_TEAM_NAMES)}")
    if value.startswith("kube-"):
        raise ValueError("a name not starting with `kube-` (Kubernetes system namespaces)")
    return value


TeamName = Annotated[
    str,
    StringConstraints(min_length=2, max_length=MAX_NAME_LENGTH),
    AfterValidator(_team_name),
]


def _object_id(value: str) -> str:
    if not re.fullmatch(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}", value):
        raise ValueError("an Entra group object id (GUID such as 0b6f7a52-3c1d-4e8f-9a21-5d4c3b2a1f00), not a name")
    return value.lower()


def _quantity(value: str) -> str:
    if not re.fullmatch(r"[0-9]+(\.[0-9]+)?(m|Ki|Mi|Gi)?", value):
        raise ValueError("a Kubernetes quantity such as `4`, `500m`, `16Gi`")
    return value


EntraObjectId = Annotated[str, AfterValidator(_object_id)]
Quantity = Annotated[str, AfterValidator(_quantity)]


class TeamQuota(BaseModel):
    """The team's share of the cluster: its namespace's ResourceQuota and the replica ceiling of its models."""

    model_config = ConfigDict(alias_generator=to_camel, frozen=True, extra="forbid")

    cpu: Quantity = Field(default="8", description="Total CPU requests in the team's namespace (`requests.cpu`).")
    memory: Quantity = Field(
        default="32Gi", description="Total memory requests in the team's namespace (`requests.memory`)."
    )
    pods: int = Field(default=50, ge=1, le=1000, description="Pods in the team's namespace.")
    max_replicas: int = Field(default=10, ge=1, le=100, description="Replicas one model may scale to.")
    models: int = Field(default=20, ge=1, le=500, description="Served models in the team's models stack.")


class TeamOverrides(BaseModel):
    """Per-team departures from the platform defaults (all optional)."""

    model_config = ConfigDict(alias_generator=to_camel, frozen=True, extra="forbid")

    namespace: Dns1123Label | None = Field(
        default=None, description="Kubernetes namespace of the team's serving (default: the team name)."
    )
    webhook: bool = Field(
        default=True,
        description="Register the team's registry webhook (off: the team's Stack reconciles on its resync only).",
    )


class Team(BaseModel):
    """One ML team: its MLflow workspace, Entra groups, quota and overrides."""

    model_config = ConfigDict(alias_generator=to_camel, frozen=True, extra="forbid")

    name: TeamName = Field(
        description="The team's MLflow workspace and namespace: a DNS label of 2-52 characters, not `default`."
    )
    admin_groups: list[EntraObjectId] = Field(
        min_length=1,
        description="Entra object ids of the groups that administer the team (namespace writer).",
    )
    member_groups: list[EntraObjectId] = Field(
        default_factory=list, description="Entra object ids of the groups of the team's members (namespace reader)."
    )
    quota: TeamQuota = Field(default_factory=TeamQuota, description="The team's share of the cluster.")
    overrides: TeamOverrides = Field(default_factory=TeamOverrides, description="Per-team overrides.")

    @property
    def workspace(self) -> str:
        return self.name

    @property
    def namespace(self) -> str:
        return self.overrides.namespace or self.name

    @property
    def automation_user(self) -> str:
        return self.name + AUTOMATION_SUFFIX

    @property
    def reader_user(self) -> str:
        return self.name + READER_SUFFIX

    @property
    def jobs_namespace(self) -> str:
        """The namespace of the team's MLflow Projects jobs (`<namespace>-jobs`)."""
        return self.namespace + JOBS_SUFFIX

    def stack_name(self, environment: str) -> str:
        """The team's models Stack (`<team>-<env>`)."""
        return f"{self.name}-{environment}"


def jobs_namespace(team: Team) -> str:
    return team.jobs_namespace


_TEAMS: Final = TypeAdapter(list[Team])
_DESCRIPTION: Final = "a list of teams, each `{name, adminGroups, memberGroups?, quota?, overrides?}`"


def _duplicates(teams: Sequence[Team]) -> list[Problem]:
    """Two teams may not share a name, nor a namespace (isolation is per namespace)."""
    problems = []
    seen_names: dict[str, int] = {}
    seen_namespaces: dict[str, int] = {}
    for index, team in enumerate(teams):
        where = f"{TEAMS_KEY}[{index}] ({team.name})"
        if team.name in seen_names:
            problems.append(
                Problem(f"{where}.name", repr(team.name), f"a name no other team has (teams[{seen_names[team.name]}])")
            )
        elif team.namespace in seen_namespaces:
            first = seen_namespaces[team.namespace]
            problems.append(
                Problem(
                    f"{where}.overrides.namespace", repr(team.namespace), f"a namespace of its own (teams[{first}])"
                )
            )
        seen_names.setdefault(team.name, index)
        seen_namespaces.setdefault(team.namespace, index)
    return problems


def validate_teams(raw: object) -> tuple[list[Team], list[Problem]]:
    """The typed teams of a raw `teams` value, or every problem in it (then the list is empty)."""
    # The loader imports the settings model, which holds `teams`: imported here, not at the top.
    from settings.loader import _field_problems  # noqa: PLC0415

    if raw is None:
        return [], []
    try:
        teams = _TEAMS.validate_python(raw)
    except ValidationError as error:
        return [], _field_problems(TEAMS_KEY, _DESCRIPTION, error, raw)
    problems = _duplicates(teams)
    return ([] if problems else teams), problems
