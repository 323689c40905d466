"""SeldonDeployments for the registered models, and their routing, as the rollout plans say.

Each predictor gets a PodDisruptionBudget (`maxUnavailable: 1`, never blocking a drain), and an
autoscaled one a KEDA scaler through its SeldonDeployment (`rollout.autoscaling`).

Each model also gets an Istio VirtualService on the platform gateway (`rollout.routing`): header
and cookie A/B, the sticky canary cookie and mirroring, on the per-predictor Services Seldon
creates; it is declared after its SeldonDeployment.

Plans are computed before this component exists (from a registry snapshot, by the pure planner),
so when the registry cannot be read the program has already failed and nothing here is
declared — existing deployments are never deleted because of a registry outage.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_kubernetes as kubernetes

from components.cluster.workload_identity import PodIdentity
from components.cluster.workload_identity import service_account as identity_service_account
from layout import cluster_layout, model_serving
from layout.cluster_layout import public_host
from observability import alerts
from rollout.autoscaling import disruption_budget, predictor_deployment_name
from rollout.planner import MODEL_NODE, DeploymentPlan, declared_predictors, seldon_deployment
from rollout.routing import virtual_service

MODEL_READER_SERVICE_ACCOUNT = "model-storage-reader"


def endpoint_url(domain: str, namespace: str, deployment: str) -> str:
    """The V2 inference endpoint of a SeldonDeployment through the platform's Istio gateway."""
    path = model_serving.inference_path(MODEL_NODE)
    return f"https://{public_host('models', domain)}/seldon/{namespace}/{deployment}{path}"


def rclone_remote_config(account: str) -> dict[str, str]:
    """Storage-initializer configuration: no credential in it, the pod's workload identity reads."""
    return model_serving.storage_remote_env(account)


@dataclass(frozen=True)
class ModelRolloutArgs:
    plans: Sequence[DeploymentPlan]
    namespace: str
    domain: str
    storage_account: str
    artifacts_destination: str
    storage_secret: str
    reader_identity: PodIdentity
    """The storage initializer's identity; `ready` (federated credential and blob grant) when
    declared in the same program, empty for the models stack, which reads it from a platform stack
    that is already deployed."""
    provider: kubernetes.Provider
    cluster: pulumi.Resource | None = None
    """In-cluster objects go with the cluster (`deleted_with`) when it is in the same program."""
    depends_on: Sequence[pulumi.Resource] = field(default_factory=tuple)
    reader_service_account: str = MODEL_READER_SERVICE_ACCOUNT
    """The service account federated with the reader identity (the platform's `modelReaderServiceAccount`)."""
    model_server_image: pulumi.Input[str] | None = None
    """The platform's model server image (images/model-server) set on every predictor's `model`
    container; None leaves it to the operator's `predictor_servers.MLFLOW_SERVER.protocols.v2`."""
    storage_initializer_image: pulumi.Input[str] | None = None
    """The platform's storage initializer (images/storage-initializer) set on every graph node;
    None leaves it to the operator's `storageInitializer.image`."""
    image_pull_ready: Sequence[pulumi.Resource] = ()
    """The nodes' pull grant on the registry the serving images live in (empty: public images)."""
    prometheus_url: str | None = None
    """The in-cluster Prometheus the predictors' KEDA triggers read the request rate from."""


class ModelRollout(pulumi.ComponentResource):
    served: dict[str, dict[str, object]]
    """Per registered model: deployment, strategy, endpoint, versions and weights per predictor."""

    def __init__(self, name: str, args: ModelRolloutArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlops:serving:ModelRollout", name, None, opts)
        k8s = pulumi.ResourceOptions(
            parent=self, provider=args.provider, depends_on=list(args.depends_on), deleted_with=args.cluster
        )
        service_account = identity_service_account(
            f"{name}-reader",
            name=args.reader_service_account,
            namespace=args.namespace,
            identity=args.reader_identity,
            opts=k8s,
        )
        storage_config = kubernetes.core.v1.Secret(
            f"{name}-storage-config",
            metadata=kubernetes.meta.v1.ObjectMetaArgs(name=args.storage_secret, namespace=args.namespace),
            type="Opaque",
            string_data=rclone_remote_config(args.storage_account),
            opts=k8s,
        )
        # The declared traffic share of every predictor, as recording rules: the platform's alerts
        # (namespace-wide) compare it with the traffic observed.
        predictors = declared_predictors(args.plans, args.namespace)
        if predictors:
            kubernetes.apiextensions.CustomResource(
                f"{name}-declared-traffic",
                api_version="monitoring.coreos.com/v1",
                kind="PrometheusRule",
                metadata={"name": "mlops-declared-traffic", "namespace": args.namespace},
                spec={
                    "groups": [{"name": "mlops-declared-traffic", "rules": alerts.declared_traffic_rules(predictors)}]
                },
                opts=k8s,
            )
        self.served = {}
        for plan in args.plans:
            manifest = seldon_deployment(
                plan,
                namespace=args.namespace,
                artifacts_destination=args.artifacts_destination,
                storage_secret=args.storage_secret,
                service_account=args.reader_service_account,
                model_server_image=args.model_server_image,
                storage_initializer_image=args.storage_initializer_image,
                prometheus_url=args.prometheus_url,
            )
            deployment = kubernetes.apiextensions.CustomResource(
                f"{name}-{plan.deployment}",
                api_version=manifest["apiVersion"],
                kind=manifest["kind"],
                metadata=manifest["metadata"],
                spec=manifest["spec"],
                opts=pulumi.ResourceOptions(
                    parent=self,
                    provider=args.provider,
                    depends_on=[
                        *args.depends_on,
                        *args.reader_identity.ready,
                        *args.image_pull_ready,
                        service_account,
                        storage_config,
                    ],
                    deleted_with=args.cluster,
                ),
            )
            for predictor in plan.predictors:
                budget = disruption_budget(
                    args.namespace,
                    plan.deployment,
                    predictor_deployment_name(plan.deployment, predictor.name, MODEL_NODE),
                )
                # Its pods come from the SeldonDeployment: declared after it.
                kubernetes.policy.v1.PodDisruptionBudget(
                    f"{name}-{plan.deployment}-{predictor.name}-disruption",
                    metadata=budget["metadata"],
                    spec=budget["spec"],
                    opts=pulumi.ResourceOptions(
                        parent=self,
                        provider=args.provider,
                        depends_on=[*args.depends_on, deployment],
                        deleted_with=args.cluster,
                    ),
                )
            routing = virtual_service(
                plan,
                namespace=args.namespace,
                host=public_host("models", args.domain),
                gateway=cluster_layout.PLATFORM_GATEWAY,
            )
            # Routes name the Services Seldon creates for the predictors: after the SeldonDeployment.
            kubernetes.apiextensions.CustomResource(
                f"{name}-{plan.deployment}-routing",
                api_version=routing["apiVersion"],
                kind=routing["kind"],
                metadata=routing["metadata"],
                spec=routing["spec"],
                opts=pulumi.ResourceOptions(
                    parent=self,
                    provider=args.provider,
                    depends_on=[*args.depends_on, deployment],
                    deleted_with=args.cluster,
                ),
            )
            self.served[plan.model] = {
                "deployment": plan.deployment,
                "strategy": plan.strategy,
                "endpoint": endpoint_url(args.domain, args.namespace, plan.deployment),
                "versions": plan.versions,
                "weights": plan.weights,
            }
        self.register_outputs({"served": self.served})
