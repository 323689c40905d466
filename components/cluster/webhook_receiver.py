"""Registry webhooks in the cluster: MLflow's signed deliveries become a reconcile of the models Stack.

In the automation namespace (Pod Security `restricted`):

- the receiver (`mlopsctl webhook serve`): a Deployment with 2 replicas spread over nodes, a
  PodDisruptionBudget, a Service, restricted pods; its signing secret is a Key Vault file (CSI,
  workload identity);
- its ServiceAccount may `patch` the one models Stack (RBAC `resourceNames`) and nothing else;
- with teams, the same receiver serves each team's `/hooks/<team>` and may patch the teams' Stacks
  too, each team's events only its own (`components.cluster.webhook_teams`);
- NetworkPolicies (`components.cluster.webhook_network`): only MLflow's pods reach the receiver,
  and the receiver reaches only DNS and the API server (443);
- the registration Job (`mlopsctl webhook ensure`), created after MLflow and the receiver are
  ready; it reads the signing secret and the MLflow admin password (webhook APIs are admin-only)
  from Key Vault. (The teams' webhooks are registered by `mlopsctl teams ensure`,
  components/cluster/teams_registration.py.)

In the MLflow namespace: egress from the MLflow servers to the receiver, and ingress from the
registration Job to the registry role (MLflow's namespace denies everything else by default).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final

import pulumi
import pulumi_kubernetes as k8s

from components.cluster.mlflow_admin_job import SECRETS_MOUNT, mlflow_admin_job
from components.cluster.pod_security import restricted_container, restricted_pod
from components.cluster.webhook_network import RECEIVER, RECEIVER_PORT, REGISTRAR, declare_network_policies, labels
from components.cluster.webhook_teams import (
    TeamHook,
    declare_team_rbac,
    receiver_base_url,
    team_secrets,
    team_serve_args,
)
from components.cluster.workload_identity import (
    KeyVault,
    PodIdentity,
    secret_provider_class,
    secrets_mount,
    secrets_volume,
    service_account,
    uses_identity,
)
from layout import cluster_layout
from layout.images import DIGEST_PULL_POLICY
from layout.mlflow_server import service_name
from rollout.webhooks import DEFAULT_TOLERANCE_SECONDS

UID: Final = 10001
"""The non-root user of images/mlopsctl."""


def receiver_url(namespace: str) -> str:
    """The URL MLflow delivers the single models Stack's events to (the Service listens on 80)."""
    return f"{receiver_base_url(namespace)}/webhook"


def serve_args(stack: str, tolerance_seconds: int, teams: Sequence[TeamHook] = ()) -> list[str]:
    args = ["webhook", "serve", "--port", str(RECEIVER_PORT)]
    args += ["--secret-file", f"{SECRETS_MOUNT}/{cluster_layout.WEBHOOK_SIGNING_SECRET}"]
    args += ["--stack-namespace", cluster_layout.MODELS_STACK_CR_NAMESPACE]
    args += ["--stack-name", cluster_layout.MODELS_STACK_CR_NAME]
    args += ["--tolerance-seconds", str(tolerance_seconds)]
    # The served models and their aliases: `models/Pulumi.<stack>.yaml` in the image, like the CronJob.
    return [*args, "--stack", stack, *team_serve_args(teams, SECRETS_MOUNT)]


def ensure_args(namespace: str, mlflow_namespace: str) -> list[str]:
    registry = f"http://{service_name('registry')}.{mlflow_namespace}.svc.cluster.local:"
    return [
        "webhook",
        "ensure",
        "--url",
        receiver_url(namespace),
        "--secret-file",
        f"{SECRETS_MOUNT}/{cluster_layout.WEBHOOK_SIGNING_SECRET}",
        "--tracking-uri",
        f"{registry}{cluster_layout.MLFLOW_SERVER_PORT}",
    ]


@dataclass(frozen=True)
class WebhookReceiverArgs:
    namespace: str
    mlflow_namespace: str
    stack: str
    """The models stack whose `rollout.models` (and their aliases) the receiver acts on; every
    other event is ignored."""
    image: pulumi.Input[str]
    identities: Mapping[str, PodIdentity]
    """Per `cluster_layout.WORKLOAD_SERVICE_ACCOUNTS` key (`webhook-receiver`, `webhook-registrar`):
    client id, and the federated credential and Key Vault grants its pods wait for."""
    tenant_id: pulumi.Input[str]
    key_vault_name: pulumi.Input[str]
    mlflow_username: str
    provider: k8s.Provider
    cluster: pulumi.Resource
    automation: pulumi.Resource
    """Creates the namespace and the models Stack the receiver patches."""
    mlflow: Sequence[pulumi.Resource]
    """The MLflow servers (Deployments): the registration Job runs once they are ready, and the
    policies in MLflow's namespace once it exists."""
    mlflow_selectors: Mapping[str, k8s.meta.v1.LabelSelectorArgs]
    """`MlflowStack.selectors`: MLflow's webhook senders and registry role, as MLflow labels them."""
    tolerance_seconds: int = DEFAULT_TOLERANCE_SECONDS
    zone_spread: bool = False
    node_pools: Sequence[pulumi.Resource] = ()
    """User node pools the pods run on."""
    image_pull_ready: Sequence[pulumi.Resource] = ()
    """The nodes' AcrPull grant: the pods run an image from the stack's registry."""
    teams: Sequence[TeamHook] = ()
    """The teams whose webhooks this receiver serves (`/hooks/<team>`); empty: single-tenant only."""


class WebhookReceiver(pulumi.ComponentResource):
    url: pulumi.Output[str]
    base_url: str
    """The receiver's in-cluster address; the teams' hooks are `<base>/hooks/<team>`."""
    ready: list[pulumi.Resource]
    """The Deployment (awaited until its pods are ready) and the Service: a registration waits for them."""

    def __init__(self, name: str, args: WebhookReceiverArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlops:serving:WebhookReceiver", name, None, opts)
        self._name, self._args = name, args
        ns = args.namespace
        base = [args.automation, *args.node_pools, *args.image_pull_ready]

        accounts, provider_classes = {}, {}
        vault = KeyVault(args.key_vault_name, args.tenant_id)
        for key in (RECEIVER, REGISTRAR):
            account = cluster_layout.workload_service_account(key)
            accounts[key] = service_account(
                f"{name}-{key}",
                name=account.service_account,
                namespace=ns,
                identity=args.identities[key],
                labels=labels(key),
                # The receiver calls the API server with its token; the registrar needs none.
                automount_token=key == RECEIVER,
                opts=self._opts([args.automation]),
            )
            provider_classes[key] = secret_provider_class(
                f"{name}-{key}-secrets",
                name=f"{key}-key-vault",
                namespace=ns,
                identity=args.identities[key],
                vault=vault,
                secrets=[*account.secrets, *team_secrets(args.teams)] if key == RECEIVER else account.secrets,
                opts=self._opts([args.automation]),
            )

        role = k8s.rbac.v1.Role(
            f"{name}-reconcile-role",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=f"{RECEIVER}-reconcile",
                namespace=cluster_layout.MODELS_STACK_CR_NAMESPACE,
                labels=labels(RECEIVER),
            ),
            rules=[
                k8s.rbac.v1.PolicyRuleArgs(
                    api_groups=["pulumi.com"],
                    resources=["stacks"],
                    resource_names=[cluster_layout.MODELS_STACK_CR_NAME],
                    verbs=["patch"],
                )
            ],
            opts=self._opts([args.automation]),
        )
        binding = k8s.rbac.v1.RoleBinding(
            f"{name}-reconcile-binding",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=f"{RECEIVER}-reconcile",
                namespace=cluster_layout.MODELS_STACK_CR_NAMESPACE,
                labels=labels(RECEIVER),
            ),
            role_ref=k8s.rbac.v1.RoleRefArgs(
                api_group="rbac.authorization.k8s.io", kind="Role", name=f"{RECEIVER}-reconcile"
            ),
            subjects=[k8s.rbac.v1.SubjectArgs(kind="ServiceAccount", name=RECEIVER, namespace=ns)],
            opts=self._opts([role, accounts[RECEIVER]]),
        )

        team_bindings = declare_team_rbac(
            name,
            args.teams,
            receiver_namespace=ns,
            service_account=accounts[RECEIVER],
            automation=args.automation,
            opts=self._opts,
        )
        deployment = self._receiver(
            [
                *base,
                accounts[RECEIVER],
                provider_classes[RECEIVER],
                binding,
                *team_bindings,
                *args.identities[RECEIVER].ready,
                *(resource for hook in args.teams for resource in hook.ready),
            ]
        )
        service = k8s.core.v1.Service(
            f"{name}-service",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=RECEIVER, namespace=ns, labels=labels(RECEIVER)),
            spec=k8s.core.v1.ServiceSpecArgs(
                selector=labels(RECEIVER),
                ports=[k8s.core.v1.ServicePortArgs(name="http", port=80, target_port="http", app_protocol="http")],
            ),
            opts=self._opts([args.automation]),
        )
        k8s.policy.v1.PodDisruptionBudget(
            f"{name}-pdb",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=RECEIVER, namespace=ns, labels=labels(RECEIVER)),
            spec=k8s.policy.v1.PodDisruptionBudgetSpecArgs(
                min_available=1, selector=k8s.meta.v1.LabelSelectorArgs(match_labels=labels(RECEIVER))
            ),
            opts=self._opts([args.automation]),
        )
        declare_network_policies(
            name,
            namespace=ns,
            mlflow_namespace=args.mlflow_namespace,
            mlflow_selectors=args.mlflow_selectors,
            automation=args.automation,
            mlflow=args.mlflow,
            opts=self._opts,
        )
        self._registrar(
            [
                *base,
                *args.mlflow,
                deployment,
                service,
                accounts[REGISTRAR],
                provider_classes[REGISTRAR],
                *args.identities[REGISTRAR].ready,
            ]
        )
        self.url = pulumi.Output.from_input(receiver_url(ns))
        self.base_url = receiver_base_url(ns)
        self.ready = [deployment, service]
        self.register_outputs({"url": self.url})

    def _opts(self, depends_on: Sequence[pulumi.Resource], **extra: object) -> pulumi.ResourceOptions:
        return pulumi.ResourceOptions(
            parent=self,
            provider=self._args.provider,
            depends_on=list(depends_on),
            deleted_with=self._args.cluster,
            **extra,  # type: ignore[arg-type]
        )

    def _receiver(self, depends_on: Sequence[pulumi.Resource]) -> k8s.apps.v1.Deployment:
        args = self._args
        probe = k8s.core.v1.ProbeArgs(
            http_get=k8s.core.v1.HTTPGetActionArgs(path="/healthz", port="http"), period_seconds=10, timeout_seconds=3
        )
        spread = [
            k8s.core.v1.TopologySpreadConstraintArgs(
                max_skew=1,
                topology_key=key,
                when_unsatisfiable=mode,
                label_selector=k8s.meta.v1.LabelSelectorArgs(match_labels=labels(RECEIVER)),
            )
            for key, mode in (
                ("kubernetes.io/hostname", "DoNotSchedule"),
                *((("topology.kubernetes.io/zone", "ScheduleAnyway"),) if args.zone_spread else ()),
            )
        ]
        return k8s.apps.v1.Deployment(
            f"{self._name}-deployment",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=RECEIVER, namespace=args.namespace, labels=labels(RECEIVER)),
            spec=k8s.apps.v1.DeploymentSpecArgs(
                replicas=2,
                revision_history_limit=5,
                selector=k8s.meta.v1.LabelSelectorArgs(match_labels=labels(RECEIVER)),
                strategy=k8s.apps.v1.DeploymentStrategyArgs(
                    type="RollingUpdate",
                    rolling_update=k8s.apps.v1.RollingUpdateDeploymentArgs(max_unavailable=0, max_surge=1),
                ),
                template=k8s.core.v1.PodTemplateSpecArgs(
                    metadata=k8s.meta.v1.ObjectMetaArgs(labels=uses_identity(labels(RECEIVER))),
                    spec=k8s.core.v1.PodSpecArgs(
                        service_account_name=RECEIVER,
                        automount_service_account_token=True,
                        security_context=restricted_pod(UID, group=UID),
                        termination_grace_period_seconds=20,
                        topology_spread_constraints=spread,
                        containers=[
                            k8s.core.v1.ContainerArgs(
                                name="receiver",
                                image=args.image,
                                image_pull_policy=DIGEST_PULL_POLICY,
                                args=serve_args(args.stack, args.tolerance_seconds, args.teams),
                                ports=[
                                    k8s.core.v1.ContainerPortArgs(
                                        name="http", container_port=RECEIVER_PORT, protocol="TCP"
                                    )
                                ],
                                readiness_probe=probe,
                                liveness_probe=probe,
                                resources=k8s.core.v1.ResourceRequirementsArgs(
                                    requests={"cpu": "50m", "memory": "128Mi"},
                                    limits={"cpu": "500m", "memory": "256Mi"},
                                ),
                                security_context=restricted_container(),
                                volume_mounts=_mounts(),
                            )
                        ],
                        volumes=_volumes(f"{RECEIVER}-key-vault"),
                    ),
                ),
            ),
            opts=self._opts(depends_on),
        )

    def _registrar(self, depends_on: Sequence[pulumi.Resource]) -> None:
        args = self._args
        mlflow_admin_job(
            f"{self._name}-ensure",
            name=f"{REGISTRAR}-ensure",
            namespace=args.namespace,
            labels=labels(REGISTRAR),
            service_account=REGISTRAR,
            secret_class=f"{REGISTRAR}-key-vault",
            container="ensure",
            image=args.image,
            args=ensure_args(args.namespace, args.mlflow_namespace),
            mlflow_username=args.mlflow_username,
            # A Job's template is immutable: a new URL, image or secret mount replaces (reruns) it.
            opts=self._opts(depends_on, replace_on_changes=["spec"], delete_before_replace=True),
        )


def _mounts() -> list[k8s.core.v1.VolumeMountArgs]:
    return [secrets_mount("secrets", SECRETS_MOUNT), k8s.core.v1.VolumeMountArgs(name="tmp", mount_path="/tmp")]


def _volumes(provider_class: str) -> list[k8s.core.v1.VolumeArgs]:
    return [
        secrets_volume("secrets", provider_class),
        k8s.core.v1.VolumeArgs(name="tmp", empty_dir=k8s.core.v1.EmptyDirVolumeSourceArgs(size_limit="64Mi")),
    ]
