"""The pure rollout planner: (registry snapshot, model settings) → desired SeldonDeployment.

No I/O and no Pulumi here: the same inputs always give the same plan, so plans are unit- and
property-tested, shown by the offline preview, and explained by the snapshot they came from.

Registry state drives the plan. The stable alias (`champion`) is the version in production; the
canary alias (`challenger`), when set and different, is the candidate. Its traffic share is:
- `canary`: the integer in the candidate's `mlops.rollout.weight` tag (written by the rollout
  analysis), else the first step; it must be one of the steps;
- `ab`: the fixed `abWeight`, or, with `match`, 0 (the routing sends matching requests to it);
- `shadow`: 0, with the candidate as a shadow predictor receiving a mirror of the traffic;
- `single`: no candidate is served.

A model that holds before traffic (`mirror`, a first-step approval gate or a pre-rollout hook)
gives a candidate that has not *started* no user traffic: weight 0, mirrored when `mirror` is
set. The analysis starts it (weight tag for `canary`, `mlops.rollout.started_at` otherwise) once
the hooks answered 2xx, the mirror analysis is healthy and the gate is approved.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from layout import cluster_layout, lineage, model_serving
from layout.images import DIGEST_PULL_POLICY
from observability.alerts import DeclaredPredictor
from rollout import autoscaling
from rollout.snapshot import ModelState, RegistrySnapshot, SnapshotError, VersionInfo
from settings.rollout import ModelRolloutSettings, RouteMatch, StickySettings

WEIGHT_TAG = "mlops.rollout.weight"
STATUS_TAG = "mlops.rollout.status"
REASON_TAG = "mlops.rollout.reason"
DECIDED_AT_TAG = "mlops.rollout.decided_at"
STARTED_TAG = "mlops.rollout.started_at"
STEP_AT_TAG = "mlops.rollout.step_at"
"""When the analysis set the candidate's current weight (not read by the plan: the analysis's dwell)."""
APPROVAL_TAG_PREFIX = "mlops.rollout.approved."
"""`mlops.rollout.approved.first-step` / `.promotion` on the candidate version: who approved, when."""
GATES = ("first-step", "promotion")

PLAN_TAGS: tuple[str, ...] = (WEIGHT_TAG, STARTED_TAG)
"""The version tags the plan depends on (on the candidate): the one source of truth for which tag
changes need a reconcile. The registry webhook receiver asks for one on exactly these; every other
tag (status, reason, decision time, approvals, the lease, anything users set) never changes what is
served. `tests/test_rollout_planner.py` proves it by property."""

STABLE, CANARY, SHADOW = "stable", "canary", "shadow"
MAX_DEPLOYMENT_NAME = 40
"""Seldon derives Deployment and Service names from the SeldonDeployment name plus the predictor
name and suffixes; 40 characters keeps every derived name within Kubernetes' 63."""

SERVING_IMPLEMENTATION = model_serving.IMPLEMENTATION
RCLONE_REMOTE = model_serving.RCLONE_REMOTE
MODEL_NODE = "model"
"""The graph node of every predictor: the MLServer model name (`/v2/models/model/infer`)."""


class PlanError(ValueError):
    """The registry state or settings of a model cannot be turned into a deployment."""


@dataclass(frozen=True)
class PredictorPlan:
    name: str
    version: VersionInfo
    traffic: int
    shadow: bool = False
    scaling: autoscaling.PredictorScaling | None = None
    """Its own scaler (the model has `autoscaling`), else the model's fixed `replicas`."""


@dataclass(frozen=True)
class RoutePlan:
    """How requests reach the predictors beyond the weights (rendered by `rollout.routing`)."""

    candidate: str | None = None
    """The candidate's predictor name, when one is served."""
    candidate_version: str | None = None
    match: tuple[RouteMatch, ...] = ()
    """Requests matching any of these go to the candidate (header/cookie A/B)."""
    sticky: StickySettings | None = None
    """Clients sent to the candidate get a cookie that keeps them there."""
    mirror_percent: int | None = None
    """Share of the stable's traffic copied to the candidate (responses dropped)."""


@dataclass(frozen=True)
class DeploymentPlan:
    model: str
    deployment: str
    strategy: str
    predictors: tuple[PredictorPlan, ...]
    replicas: int
    cpu: str
    memory: str
    route: RoutePlan = RoutePlan()
    phase: str = "stable"
    """`stable` (no candidate), `pending` (candidate waiting to start), `running` (candidate served)."""

    @property
    def weights(self) -> dict[str, int]:
        return {p.name: p.traffic for p in self.predictors}

    @property
    def versions(self) -> dict[str, str]:
        return {p.name: p.version.version for p in self.predictors}


def deployment_name(model: str) -> str:
    """A DNS-1123 label from a registered model name: lower case, runs of other characters → `-`."""
    slug = re.sub(r"[^a-z0-9]+", "-", model.lower()).strip("-")[:MAX_DEPLOYMENT_NAME].strip("-")
    if not slug:
        raise PlanError(f"model {model!r}: its name has no letters or digits to derive a deployment name from")
    return slug


def deployment_names(models: Iterable[str]) -> dict[str, str]:
    """Deployment name per model; two models that map to one name are an error naming both."""
    names: dict[str, str] = {}
    owners: dict[str, str] = {}
    for model in models:
        name = deployment_name(model)
        if name in owners:
            raise PlanError(f"models {owners[name]!r} and {model!r} both map to deployment name {name!r}; rename one")
        owners[name] = model
        names[model] = name
    return names


def canary_weight(model: str, candidate: VersionInfo, steps: list[int]) -> int:
    """The candidate's weight tag if present (it must be one of the steps), else the first step."""
    raw = candidate.tags.get(WEIGHT_TAG)
    if raw is None:
        return steps[0]
    try:
        weight = int(raw.strip())
    except ValueError:
        weight = -1
    if weight not in steps:
        raise PlanError(
            f"model {model!r} version {candidate.version}: tag {WEIGHT_TAG}={raw!r} is not one of the steps {steps}"
        )
    return weight


def started(candidate: VersionInfo) -> bool:
    """Whether the analysis has started the candidate's rollout (it then gets user traffic)."""
    return WEIGHT_TAG in candidate.tags or STARTED_TAG in candidate.tags


def approved(candidate: VersionInfo, gate: str) -> bool:
    return bool(candidate.tags.get(APPROVAL_TAG_PREFIX + gate))


def plan_model(state: ModelState, settings: ModelRolloutSettings, deployment: str) -> DeploymentPlan:
    model = settings.name
    try:
        stable = state.aliased(settings.stable_alias)
        candidate = state.aliased(settings.canary_alias)
    except SnapshotError as error:
        raise PlanError(str(error)) from error
    if stable is None:
        raise PlanError(
            f"model {model!r}: alias {settings.stable_alias!r} is not set; point it at the version to serve"
        )
    for role, version in (("stable", stable), ("candidate", candidate)):
        if version is not None and version.status != "READY":
            raise PlanError(f"model {model!r}: {role} version {version.version} is {version.status}, not READY")
    if candidate is not None and candidate.version == stable.version:
        candidate = None

    predictors: tuple[PredictorPlan, ...]
    route, phase = RoutePlan(), "running"
    mirror = settings.mirror.percent if settings.mirror is not None else None
    if candidate is None or settings.strategy == "single":
        predictors, phase = (PredictorPlan(STABLE, stable, 100),), "stable"
    elif settings.strategy == "shadow":
        predictors = (PredictorPlan(STABLE, stable, 100), PredictorPlan(SHADOW, candidate, mirror or 0, shadow=True))
        route = RoutePlan(SHADOW, candidate.version, mirror_percent=mirror or 100)
        phase = "running" if started(candidate) or not settings.holds_before_traffic else "pending"
    elif settings.holds_before_traffic and not started(candidate):
        # Deployed and warm, no user traffic: mirrored if asked, until the analysis starts it.
        predictors = (
            PredictorPlan(STABLE, stable, 100),
            PredictorPlan(CANARY, candidate, mirror or 0, shadow=mirror is not None),
        )
        route, phase = RoutePlan(CANARY, candidate.version, mirror_percent=mirror), "pending"
    elif settings.strategy == "canary":
        weight = canary_weight(model, candidate, settings.steps)
        predictors = (PredictorPlan(STABLE, stable, 100 - weight), PredictorPlan(CANARY, candidate, weight))
        route = RoutePlan(CANARY, candidate.version, sticky=settings.sticky)
    elif settings.strategy == "ab":
        weight = 0 if settings.match else settings.ab_weight
        predictors = (PredictorPlan(STABLE, stable, 100 - weight), PredictorPlan(CANARY, candidate, weight))
        route = RoutePlan(CANARY, candidate.version, match=tuple(settings.match), sticky=settings.sticky)
    else:
        raise PlanError(f"model {model!r}: unknown strategy {settings.strategy!r}")
    if settings.autoscaling is not None:
        predictors = _with_scaling(predictors, settings, route, phase)
    return DeploymentPlan(
        model=model,
        deployment=deployment,
        strategy=settings.strategy,
        predictors=predictors,
        replicas=settings.replicas,
        cpu=settings.resources.cpu,
        memory=settings.resources.memory,
        route=route,
        phase=phase,
    )


def _with_scaling(
    predictors: tuple[PredictorPlan, ...], settings: ModelRolloutSettings, route: RoutePlan, phase: str
) -> tuple[PredictorPlan, ...]:
    """Each predictor's scaler (`rollout.autoscaling`): minimum by share, the stable pre-scaled at the
    last canary step, a shadow sized by the mirrored share."""
    assert settings.autoscaling is not None
    candidate_share = max((p.traffic for p in predictors if p.name != STABLE and not p.shadow), default=0)
    pre_scale = settings.strategy == "canary" and phase == "running" and candidate_share == settings.steps[-1]
    scaled = []
    for p in predictors:
        share = (route.mirror_percent or 0) if p.shadow else p.traffic
        scaling = autoscaling.predictor_scaling(
            settings.autoscaling, role=p.name, share_percent=share, pre_scale=pre_scale
        )
        scaled.append(PredictorPlan(p.name, p.version, p.traffic, p.shadow, scaling))
    return tuple(scaled)


def plan_rollouts(snapshot: RegistrySnapshot, models: list[ModelRolloutSettings]) -> list[DeploymentPlan]:
    """Plans for every configured model; every problem of every model is reported at once."""
    names = deployment_names(m.name for m in models)
    plans, problems = [], []
    for settings in models:
        state = snapshot.models.get(settings.name)
        if state is None:
            problems.append(f"model {settings.name!r} is not in the registry snapshot of {snapshot.tracking_uri}")
            continue
        try:
            plans.append(plan_model(state, settings, names[settings.name]))
        except PlanError as error:
            problems.append(str(error))
    if problems:
        raise PlanError("cannot plan the model rollouts:\n  - " + "\n  - ".join(problems))
    return plans


def declared_predictors(plans: Iterable[DeploymentPlan], namespace: str) -> list[DeclaredPredictor]:
    """What the plans declare, for the declared-traffic recording rules and the no-traffic alert."""
    return [
        DeclaredPredictor(namespace, plan.deployment, p.name, 0 if p.shadow else p.traffic, p.version.version)
        for plan in plans
        for p in plan.predictors
    ]


# --- serving locations ---------------------------------------------------------------------------

_WASBS = re.compile(
    r"^wasbs://(?P<container>[a-z0-9-]+)@(?P<account>[a-z0-9]+)\.blob\.core\.windows\.net/(?P<path>.*)$"
)


def physical_artifact_uri(download_uri: str, artifacts_destination: str) -> str:
    """`mlflow-artifacts:/<path>` → `<artifacts destination>/<path>`; physical URIs pass through.

    `models:/` and `runs:/` are indirections through the registry and are refused: serving must
    not depend on the tracking server being up.
    """
    if download_uri.startswith("mlflow-artifacts:"):
        path = re.sub(r"^mlflow-artifacts:(//[^/]*)?/*", "", download_uri)
        return artifacts_destination.rstrip("/") + "/" + path
    if _WASBS.match(download_uri):
        return download_uri
    raise PlanError(f"artifact URI {download_uri!r} is not in the platform's artifact store ({artifacts_destination})")


def rclone_model_uri(physical_uri: str) -> str:
    """The form Seldon's rclone storage initializer downloads: `azureblob:<container>/<path>`."""
    match = _WASBS.match(physical_uri)
    if match is None:
        raise PlanError(f"{physical_uri!r} is not a wasbs:// blob location")
    return f"{RCLONE_REMOTE}:{match['container']}/{match['path']}"


def lineage_annotations(model: str, version: VersionInfo, physical_uri: str) -> dict[str, str]:
    annotations = {
        lineage.REGISTERED_MODEL: model,
        lineage.MODEL_VERSION: version.version,
        lineage.RUN_ID: version.run_id or "",
        lineage.SOURCE: version.source,
        lineage.ARTIFACT_URI: physical_uri,
    }
    if version.git_commit:
        annotations[lineage.GIT_COMMIT] = version.git_commit
    return annotations


def seldon_deployment(
    plan: DeploymentPlan,
    *,
    namespace: str,
    artifacts_destination: str,
    storage_secret: str,
    service_account: str,
    extra_labels: Mapping[str, str] | None = None,
    model_server_image: object = None,
    storage_initializer_image: object = None,
    prometheus_url: str | None = None,
) -> dict[str, Any]:
    """The SeldonDeployment manifest (machinelearning.seldon.io/v1) for one plan.

    Protocol v2: the operator runs MLServer with the MLflow runtime in the `model` container and
    the storage initializer as its init container (layout/model_serving.py has their command and
    env). `model_server_image` and `storage_initializer_image` (the platform's images, usually
    unresolved digest references) are set per graph node when given: the operator prefers them
    to its chart defaults, and a new image then rolls the predictors.

    An autoscaled predictor has no `replicas` but a `kedaSpec` (`rollout.autoscaling`): the
    operator creates its KEDA ScaledObject, reading the request rate from `prometheus_url`.
    """
    model_container: dict[str, Any] = {
        "name": MODEL_NODE,
        "resources": {
            "requests": {"cpu": plan.cpu, "memory": plan.memory},
            "limits": {"cpu": plan.cpu, "memory": plan.memory},
        },
        "startupProbe": model_serving.model_startup_probe(MODEL_NODE),
    }
    if model_server_image is not None:
        model_container["image"] = model_server_image
        model_container["imagePullPolicy"] = DIGEST_PULL_POLICY
    predictors = []
    for predictor in plan.predictors:
        physical = physical_artifact_uri(predictor.version.download_uri, artifacts_destination)
        spec: dict[str, Any] = {
            "name": predictor.name,
            "traffic": predictor.traffic,
            # `version` becomes the executor's `predictor_version` metric label (dashboards, alerts).
            "annotations": {
                **lineage_annotations(plan.model, predictor.version, physical),
                "version": predictor.version.version,
            },
            "labels": {"version": predictor.version.version},
            "componentSpecs": [
                {
                    # The workload-identity webhook gives every container, the storage initializer
                    # included, a token for the read-only model identity.
                    "metadata": {"labels": {cluster_layout.WORKLOAD_IDENTITY_USE: "true"}},
                    "spec": {
                        "serviceAccountName": service_account,
                        "containers": [dict(model_container)],
                    },
                }
            ],
            "graph": {
                "name": MODEL_NODE,
                "type": "MODEL",
                "implementation": SERVING_IMPLEMENTATION,
                "modelUri": rclone_model_uri(physical),
                "envSecretRefName": storage_secret,
                "children": [],
            },
        }
        if predictor.scaling is None:
            spec = {"name": spec.pop("name"), "replicas": plan.replicas, **spec}
        else:
            if predictor.scaling.target_requests_per_second is not None and not prometheus_url:
                raise PlanError(f"model {plan.model!r}: a request-rate target needs the Prometheus address")
            spec["componentSpecs"][0]["kedaSpec"] = autoscaling.keda_spec(
                predictor.scaling,
                prometheus_url=prometheus_url or "",
                namespace=namespace,
                deployment=plan.deployment,
                predictor=predictor.name,
                container=MODEL_NODE,
            )
        if storage_initializer_image is not None:
            spec["graph"]["storageInitializerImage"] = storage_initializer_image
        if predictor.shadow:
            spec["shadow"] = True
        predictors.append(spec)
    return {
        "apiVersion": "machinelearning.seldon.io/v1",
        "kind": "SeldonDeployment",
        "metadata": {
            "name": plan.deployment,
            "namespace": namespace,
            "labels": {
                "app.kubernetes.io/managed-by": "pulumi",
                "mlops.io/strategy": plan.strategy,
                **(extra_labels or {}),
            },
            "annotations": {lineage.REGISTERED_MODEL: plan.model},
        },
        "spec": {"name": plan.deployment, "protocol": model_serving.PROTOCOL, "predictors": predictors},
    }
