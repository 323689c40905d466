"""The typed settings of a models stack (`models/Pulumi.<stack>.yaml`, project `mlops-models`).

Model delivery is its own Pulumi project: it reads the platform stack's outputs (namespace,
identities, storage, MLflow and Prometheus addresses) through a `StackReference`, so its own
configuration is only *which* platform stack it delivers to and *which* registered models it
serves, and how their traffic moves (`rollout`). Bad values fail with every bad key named
before the program reads the platform, the registry, or declares anything.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Final

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, TypeAdapter
from pydantic.alias_generators import to_camel

from settings.combinations import CombinationCheck
from settings.loader import load_model
from settings.problems import MODELS_PROJECT
from settings.rollout import RolloutSettings
from settings.teams import TeamName

# `<organization>/<project>/<stack>`: Pulumi's fully qualified stack name (DIY backends use the
# literal organization `organization`).
StackName = Annotated[
    str,
    StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$"),
]


_TEAM_NAME: Final = TypeAdapter(TeamName)


def _optional_team(value: str) -> str:
    """Empty, or a team name as the platform's `teams` setting takes it (`settings.teams.TeamName`)."""
    return _TEAM_NAME.validate_python(value) if value else value


class ModelsSettings(BaseModel):
    """Validated settings of one models stack. Built only by `load_models_settings`."""

    model_config = ConfigDict(alias_generator=to_camel, frozen=True, extra="forbid")

    platform_stack: StackName = Field(
        description="Fully qualified name of the platform stack whose outputs this stack reads "
        "(`<organization>/mlops-platform/<stack>`; `organization/mlops-platform/<stack>` on a DIY backend)."
    )
    team: Annotated[str, AfterValidator(_optional_team)] = Field(
        default="",
        description="The team whose models this stack delivers (an entry of the platform's `teams`): its "
        "namespace, reader identity and MLflow workspace come from the platform's `teams` output, and the "
        "registry is read in the team's workspace only. Empty: the platform's single models namespace.",
    )
    rollout: RolloutSettings = Field(
        default_factory=RolloutSettings,
        description="Model rollouts: the served registered models and how their traffic moves (see README).",
    )


MODELS_COMBINATION_CHECKS: tuple[CombinationCheck, ...] = ()


def load_models_settings(raw: Mapping[str, object]) -> ModelsSettings:
    """Validate `raw` (stack-file keys without the `mlops-models:` namespace); raises `SettingsError`."""
    return load_model(raw, ModelsSettings, MODELS_COMBINATION_CHECKS, MODELS_PROJECT)
