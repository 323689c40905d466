"""Settings of the model rollouts: which registered models are served, and how traffic moves.

Set as one structured key, `mlops-models:rollout`, in the models stack file
(`models/Pulumi.<stack>.yaml`; Pulumi.yaml's project config schema has no object type, so this
key is documented in the README only). The namespace, storage and the in-cluster MLflow and
Prometheus addresses come from the platform stack's outputs; `trackingUri` / `prometheusUrl`
only override them (e.g. a person previewing from outside the cluster):

    mlops-models:rollout:
      models:
        - name: fraud-detector
          strategy: canary
          steps: [10, 25, 50, 100]
"""

from __future__ import annotations

import itertools
import re
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, field_validator, model_validator
from pydantic.alias_generators import to_camel

Strategy = Literal["canary", "ab", "shadow", "single"]
_QUANTITY = re.compile(r"^[0-9]+(\.[0-9]+)?(m|Ki|Mi|Gi|Ti|k|M|G|T)?$")


def _quantity(value: str) -> str:
    if not _QUANTITY.fullmatch(value):
        raise ValueError("a Kubernetes quantity such as `500m`, `2` or `1Gi`")
    return value


Quantity = Annotated[str, AfterValidator(_quantity)]
Alias = Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_-]{0,255}$")]
ModelName = Annotated[str, StringConstraints(min_length=1, max_length=256, pattern=r"^[^/:%\s][^/:%]*$")]


class _Strict(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, frozen=True, extra="forbid")


class ModelResources(_Strict):
    """Requests (and equal limits) of the model server container."""

    cpu: Quantity = "500m"
    memory: Quantity = "1Gi"


class AnalysisSettings(_Strict):
    """Health gates the rollout analysis applies to a canary over `window`."""

    window: Annotated[str, StringConstraints(pattern=r"^[1-9][0-9]*[smh]$")] = "10m"
    min_requests: int = Field(default=100, ge=1)
    max_error_rate: float = Field(default=0.01, ge=0, le=1)
    max_p95_latency_seconds: float = Field(default=0.5, gt=0)
    max_p95_ratio_to_stable: float = Field(default=1.5, ge=1)


class ModelRolloutSettings(_Strict):
    """One registered model served by a SeldonDeployment."""

    name: ModelName
    strategy: Strategy = "canary"
    steps: list[int] = Field(default_factory=lambda: [10, 25, 50, 100], min_length=1, max_length=20)
    ab_weight: int = Field(default=50, ge=1, le=99, description="Percent of traffic to the candidate with `ab`.")
    stable_alias: Alias = "champion"
    canary_alias: Alias = "challenger"
    replicas: int = Field(default=1, ge=1, le=100)
    resources: ModelResources = Field(default_factory=ModelResources)
    analysis: AnalysisSettings = Field(default_factory=AnalysisSettings)

    @field_validator("steps")
    @classmethod
    def _increasing_percentages(cls, steps: list[int]) -> list[int]:
        if any(not 1 <= step <= 100 for step in steps):
            raise ValueError("percentages from 1 to 100")
        if any(b <= a for a, b in itertools.pairwise(steps)):
            raise ValueError("strictly increasing percentages")
        return steps

    @model_validator(mode="after")
    def _distinct_aliases(self) -> ModelRolloutSettings:
        if self.stable_alias == self.canary_alias:
            raise ValueError(f"stableAlias and canaryAlias must differ (both {self.stable_alias!r})")
        return self


class RolloutSettings(_Strict):
    tracking_uri: Annotated[str, StringConstraints(pattern=r"^https?://[^\s]+$")] | None = None
    prometheus_url: Annotated[str, StringConstraints(pattern=r"^https?://[^\s]+$")] | None = None
    storage_secret: Annotated[str, StringConstraints(pattern=r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")] = (
        "model-storage-rclone"
    )
    models: list[ModelRolloutSettings] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique_models(self) -> RolloutSettings:
        names = [model.name for model in self.models]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"each registered model once; listed more than once: {duplicates}")
        return self
