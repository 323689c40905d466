"""The models layer: what the models project (`models/`) reads and declares.

Order, each step before any resource is declared:
1. `read_platform`: the platform stack's outputs through a `StackReference` (a read, not a
   declaration), validated into a `PlatformContract`; a missing output names the stack and keys.
2. `plan`: one registry snapshot (a few batched calls per model) and the pure plan; registry
   unreachable → `RegistryError` naming the registry and the models, nothing declared, so no
   SeldonDeployment is ever deleted by an outage. A team's plans beyond its quota → `QuotaError`.
3. `declare`: a Kubernetes provider confined to the models namespace and the `ModelRollout`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

import pulumi
import pulumi_kubernetes as kubernetes
from pulumi.runtime.sync_await import _sync_await

from components.cluster.workload_identity import PodIdentity
from components.serving.model_rollout import ModelRollout, ModelRolloutArgs
from layout.platform_outputs import (
    CONTRACT_OUTPUTS,
    IMAGES_OUTPUT,
    TEAMS_OUTPUT,
    PlatformContract,
    contract_from_outputs,
    team_contract,
)
from rollout.planner import DeploymentPlan, plan_rollouts
from rollout.quota import check_team_quota
from rollout.registry_reader import WORKSPACE_ENV
from rollout.source import registry_snapshot
from settings.models import ModelsSettings


def read_platform(settings: ModelsSettings) -> PlatformContract:
    """The platform's outputs contract, resolved now (the registry read and the plan need plain values)."""
    reference = pulumi.StackReference("platform", stack_name=settings.platform_stack)
    outputs: dict[str, object] = {}
    for name in (*CONTRACT_OUTPUTS, IMAGES_OUTPUT, *((TEAMS_OUTPUT,) if settings.team else ())):
        details = _sync_await(reference.get_output_details(name))
        outputs[name] = details.value if details.value is not None else details.secret_value
    contract = contract_from_outputs(settings.platform_stack, outputs)
    if settings.team:
        # A team's models stack: the team's namespace and reader identity, nothing of another team's.
        return team_contract(settings.platform_stack, contract, outputs.get(TEAMS_OUTPUT), settings.team)
    return contract


def plan(
    settings: ModelsSettings, platform: PlatformContract, environ: Mapping[str, str] | None = None
) -> list[DeploymentPlan]:
    """Read the registry (or the snapshot file of an offline preview) and plan every rollout; a team's
    stack reads the team's MLflow workspace whatever the environment says, and its plans must fit the
    team's quota at their largest (`rollout.quota`)."""
    if settings.team:
        environ = {**(os.environ if environ is None else environ), WORKSPACE_ENV: settings.team}
    snapshot = registry_snapshot(settings.rollout, platform.mlflow_uri, environ)
    plans = plan_rollouts(snapshot, settings.rollout.models)
    if platform.team_quota is not None:
        # The ResourceQuota would refuse pods only at run time: refuse the plan now, nothing declared.
        check_team_quota(platform.team, plans, platform.team_quota)
    return plans


def declare(settings: ModelsSettings, platform: PlatformContract, plans: Sequence[DeploymentPlan]) -> ModelRollout:
    """Declare model delivery through a provider that can only reach the models namespace.

    The provider uses the ambient credentials: in the operator's workspace pod its service
    account (rights in the models namespace only); for a person, their kubeconfig.
    """
    provider = kubernetes.Provider(
        "models-cluster",
        namespace=platform.models_namespace,
        enable_server_side_apply=True,
        delete_unreachable=False,
    )
    return ModelRollout(
        "models",
        ModelRolloutArgs(
            plans=plans,
            namespace=platform.models_namespace,
            domain=platform.domain,
            storage_account=platform.storage_account,
            artifacts_destination=platform.artifacts_destination,
            storage_secret=settings.rollout.storage_secret,
            reader_identity=PodIdentity(platform.model_reader_client_id),
            reader_service_account=platform.model_reader_service_account,
            model_server_image=platform.model_server_image,
            storage_initializer_image=platform.storage_initializer_image,
            prometheus_url=platform.prometheus_url,
            provider=provider,
            cluster=provider,
        ),
    )


def export(rollout: ModelRollout, platform: PlatformContract) -> None:
    pulumi.export("modelsNamespace", platform.models_namespace)
    pulumi.export("models", rollout.served)
