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
    step_interval: Annotated[str, StringConstraints(pattern=r"^[1-9][0-9]*[smh]$")] = Field(
        default="5m",
        description="A canary stays at least this long at a step (counted from the decision that set it) "
        "before the analysis advances or promotes it; rollbacks and gates are not delayed. Keeps the step "
        "pace independent of how often the analysis runs.",
    )
    min_requests: int = Field(default=100, ge=1)
    max_error_rate: float = Field(default=0.01, ge=0, le=1)
    max_p95_latency_seconds: float = Field(default=0.5, gt=0)
    max_p95_ratio_to_stable: float = Field(default=1.5, ge=1)
    max_error_rate_above_stable: float = Field(
        default=0.01,
        ge=0,
        le=1,
        description="Shadow and mirror analysis: how much the candidate's error rate may exceed the stable's.",
    )


HEADER_NAME = r"^[a-z0-9][a-z0-9-]{0,127}$"
COOKIE_NAME = r"^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,128}$"
Duration = Annotated[str, StringConstraints(pattern=r"^[1-9][0-9]*[smhd]$")]
HookEvent = Literal["pre-rollout", "step", "promotion", "rollback"]
HOOK_EVENTS: tuple[HookEvent, ...] = ("pre-rollout", "step", "promotion", "rollback")
AbMetric = Literal["error_ratio", "latency_p50", "latency_p95", "latency_p99"]


class RouteMatch(_Strict):
    """One condition that sends a request to the candidate: a header or a cookie.

    `header` with `exact` or `regex`; or `cookie` with `value` (the cookie must be set to it).
    """

    header: Annotated[str, StringConstraints(pattern=HEADER_NAME)] | None = None
    cookie: Annotated[str, StringConstraints(pattern=COOKIE_NAME)] | None = None
    exact: Annotated[str, StringConstraints(min_length=1, max_length=256)] | None = None
    regex: Annotated[str, StringConstraints(min_length=1, max_length=256)] | None = None
    value: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9._~+/=-]{1,256}$")] | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> RouteMatch:
        if (self.header is None) == (self.cookie is None):
            raise ValueError("set exactly one of `header` or `cookie`")
        if self.header is not None and (self.exact is None) == (self.regex is None):
            raise ValueError(f"header {self.header!r}: set exactly one of `exact` or `regex`")
        if self.header is not None and self.value is not None:
            raise ValueError(f"header {self.header!r}: `value` is for cookies; use `exact` or `regex`")
        if self.cookie is not None and (self.value is None or self.exact or self.regex):
            raise ValueError(f"cookie {self.cookie!r}: set `value` (and not `exact`/`regex`)")
        if self.regex is not None:
            try:
                re.compile(self.regex)
            except re.error as error:
                raise ValueError(f"regex {self.regex!r} does not compile: {error}") from error
        return self


class StickySettings(_Strict):
    """Sticky canary: a client that landed on the candidate keeps landing there (a cookie)."""

    cookie: Annotated[str, StringConstraints(pattern=COOKIE_NAME)] = "mlops-canary"
    max_age_seconds: int = Field(default=3600, ge=60, le=7 * 86400)


class MirrorSettings(_Strict):
    """Mirror phase: a share of the traffic is copied to the candidate (responses dropped) and
    analysed against the stable before any user traffic shifts. With `shadow` it is the share mirrored."""

    percent: int = Field(default=100, ge=1, le=100)


class ApprovalSettings(_Strict):
    """Manual gates: the analysis waits at each until `mlopsctl rollout approve MODEL` records an approval."""

    before_first_step: bool = False
    before_promotion: bool = False


HOOK_MAX_SECONDS = 120
"""The longest one hook may take, every attempt timing out, backoff included: the analysis run
(one CronJob tick) stays short."""


class HookSettings(_Strict):
    """An HTTP endpoint receiving a signed POST on rollout events."""

    url: Annotated[str, StringConstraints(pattern=r"^https?://[^\s]+$")]
    events: list[HookEvent] = Field(default_factory=lambda: list(HOOK_EVENTS), min_length=1)
    timeout_seconds: float = Field(default=10, gt=0, le=60)
    retries: int = Field(
        default=2,
        ge=0,
        le=5,
        description="Further attempts after a connection error, a timeout or a 5xx answer (never after "
        "a 4xx), each with the same delivery id, timestamp and signature.",
    )
    retry_backoff_seconds: float = Field(
        default=1.0, ge=0.1, le=30, description="Wait before the first retry; doubled before each next one."
    )

    @field_validator("events")
    @classmethod
    def _distinct(cls, events: list[HookEvent]) -> list[HookEvent]:
        if len(set(events)) != len(events):
            raise ValueError("each event once")
        return events

    @property
    def worst_case_seconds(self) -> float:
        """Every attempt timing out, plus the backoff between them."""
        backoff = sum(self.retry_backoff_seconds * float(1 << k) for k in range(self.retries))
        return (self.retries + 1) * self.timeout_seconds + backoff

    @model_validator(mode="after")
    def _bounded(self) -> HookSettings:
        if self.worst_case_seconds > HOOK_MAX_SECONDS:
            raise ValueError(
                f"timeoutSeconds, retries and retryBackoffSeconds allow {self.worst_case_seconds:.0f} s for one "
                f"hook (every attempt timing out); at most {HOOK_MAX_SECONDS} s keeps an analysis run short"
            )
        return self


class AbSettings(_Strict):
    """A/B analysis: run for `duration`, then compare `metric` (lower is better) of candidate and stable."""

    duration: Duration = "1h"
    metric: AbMetric = "error_ratio"
    max_ratio_to_stable: float = Field(
        default=1.0, ge=0, description="Promote when candidate metric <= this x the stable's; else roll back."
    )


class AutoscalingSettings(_Strict):
    """Replicas follow load: a scaler per predictor (KEDA through Seldon's `kedaSpec`), at least one target.

    `minReplicas`/`maxReplicas` are the model's at 100 % of its traffic; a predictor with a smaller
    share (a canary, a shadow on a mirrored share) gets a proportional minimum (see
    `rollout/autoscaling.py`). Targets are per replica: the average CPU use of the `model`
    container in percent of its request, and/or requests per second.
    """

    min_replicas: int = Field(default=1, ge=1, le=100)
    max_replicas: int = Field(ge=1, le=100)
    target_cpu_percent: int | None = Field(
        default=None, ge=10, le=100, description="Average CPU of the `model` container, % of its request."
    )
    target_requests_per_second: float | None = Field(
        default=None, gt=0, le=100_000, description="Prediction requests per second per replica (Seldon executor)."
    )
    scale_down_stabilization_seconds: int = Field(
        default=300,
        ge=0,
        le=3600,
        description="The highest recommendation of this long wins when scaling down: a dip shorter than it "
        "does not remove pods (HPA `behavior.scaleDown.stabilizationWindowSeconds`).",
    )
    polling_interval_seconds: int = Field(
        default=15, ge=5, le=300, description="How often KEDA reads the request rate from Prometheus."
    )

    @model_validator(mode="after")
    def _bounds_and_target(self) -> AutoscalingSettings:
        if self.min_replicas > self.max_replicas:
            raise ValueError(f"minReplicas ({self.min_replicas}) is above maxReplicas ({self.max_replicas})")
        if self.target_cpu_percent is None and self.target_requests_per_second is None:
            raise ValueError("set a target: targetCpuPercent and/or targetRequestsPerSecond")
        return self


class ModelRolloutSettings(_Strict):
    """One registered model served by a SeldonDeployment."""

    name: ModelName
    strategy: Strategy = "canary"
    steps: list[int] = Field(default_factory=lambda: [10, 25, 50, 100], min_length=1, max_length=20)
    ab_weight: int = Field(default=50, ge=1, le=99, description="Percent of traffic to the candidate with `ab`.")
    stable_alias: Alias = "champion"
    canary_alias: Alias = "challenger"
    replicas: int = Field(default=1, ge=1, le=100, description="Fixed replicas per predictor (without `autoscaling`).")
    autoscaling: AutoscalingSettings | None = None
    resources: ModelResources = Field(default_factory=ModelResources)
    analysis: AnalysisSettings = Field(default_factory=AnalysisSettings)
    match: list[RouteMatch] = Field(
        default_factory=list,
        max_length=10,
        description="`ab` only: requests matching any of these go to the candidate, all others to the stable.",
    )
    sticky: StickySettings | None = None
    mirror: MirrorSettings | None = None
    approval: ApprovalSettings = Field(default_factory=ApprovalSettings)
    hooks: list[HookSettings] = Field(default_factory=list, max_length=10)
    ab: AbSettings = Field(default_factory=AbSettings)

    @property
    def holds_before_traffic(self) -> bool:
        """The candidate gets no user traffic until pre-rollout hooks, mirror analysis and the first
        gate have passed (the analysis then marks the rollout started)."""
        return (
            self.mirror is not None
            or self.approval.before_first_step
            or any("pre-rollout" in hook.events for hook in self.hooks)
        )

    @model_validator(mode="after")
    def _replicas_or_autoscaling(self) -> ModelRolloutSettings:
        if self.autoscaling is not None and "replicas" in self.model_fields_set:
            raise ValueError("`replicas` is fixed, `autoscaling` lets load decide: set one of them")
        return self

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

    @model_validator(mode="after")
    def _strategy_features(self) -> ModelRolloutSettings:
        if self.match and self.strategy != "ab":
            raise ValueError(f"`match` routes requests with strategy `ab` only (strategy is {self.strategy!r})")
        if self.sticky is not None and self.strategy not in ("canary", "ab"):
            raise ValueError(f"`sticky` needs strategy `canary` or `ab` (strategy is {self.strategy!r})")
        if self.sticky is not None and self.match:
            raise ValueError("`sticky` and `match` exclude each other: with `match` the request decides")
        if self.mirror is not None and self.strategy == "single":
            raise ValueError("`mirror` needs a candidate: strategy `single` serves the stable only")
        return self


class RolloutSettings(_Strict):
    tracking_uri: Annotated[str, StringConstraints(pattern=r"^https?://[^\s]+$")] | None = None
    prometheus_url: Annotated[str, StringConstraints(pattern=r"^https?://[^\s]+$")] | None = None
    storage_secret: Annotated[str, StringConstraints(pattern=r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")] = (
        "model-storage-rclone"
    )
    models: list[ModelRolloutSettings] = Field(default_factory=list)
    max_replicas_per_model: int = Field(
        default=20,
        ge=1,
        le=100,
        description="Ceiling of any model's `autoscaling.maxReplicas` (per predictor) in this stack. A team's "
        "stack is also held to the team's quota (its `maxReplicas`, `models`, CPU, memory and pods) at plan time.",
    )

    @model_validator(mode="after")
    def _within_ceiling(self) -> RolloutSettings:
        over = [
            f"{m.name} ({m.autoscaling.max_replicas})"
            for m in self.models
            if m.autoscaling is not None and m.autoscaling.max_replicas > self.max_replicas_per_model
        ]
        if over:
            raise ValueError(
                f"autoscaling.maxReplicas above maxReplicasPerModel ({self.max_replicas_per_model}): {', '.join(over)}"
            )
        return self

    @model_validator(mode="after")
    def _unique_models(self) -> RolloutSettings:
        names = [model.name for model in self.models]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"each registered model once; listed more than once: {duplicates}")
        return self
