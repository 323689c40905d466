"""One ML team's corner of the cluster: its namespaces, their limits and walls, and its models Stack.

Declared once per entry of the `teams` setting (`team-<name>`), every child named after the team
only: adding or removing a team changes nothing of any other team.

- Serving namespace (`team.namespace`): the models namespace's Pod Security labels (enforce
  `privileged`, warn and audit `baseline`: why, see `components.cluster.seldon_core`), sidecar
  injection and strict mTLS like the single models namespace. The storage initializer's service
  account `model-storage-reader` there is the team's models stack's (as in the models namespace),
  annotated with the team's own `<t>-model-reader` identity from the `teams` output (blob reads
  under `workspaces/<t>/` only).
- Jobs namespace (`<namespace>-jobs`): MLflow Projects jobs, as `components.cluster.mlflow_projects`
  declares them (restricted profile), with the team's `<t>-job-runner` identity.
- In both: a ResourceQuota and a LimitRange from the team's quota (the LimitRange's defaults let a
  pod without requests be admitted under the quota), and NetworkPolicies: deny all ingress, then
  admit the Istio gateway (serving only), the monitoring namespace and the namespace's own pods.
- The models Stack `<t>-<env>` (PKO, in the automation namespace like the single Stack: the
  operator and MLflow's `allow-automation` policy already reach it there), run as
  `<t>-models-deployer`, whose Kubernetes rights are the model-delivery Role bound in the team's
  serving namespace only, plus the operator's documented token review; it reads MLflow as
  `<t>-reader` in workspace `<t>` (`MLFLOW_WORKSPACE`) with the team's own stack passphrase.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from components.cluster.mlflow_projects import MlflowProjects, MlflowProjectsArgs
from components.cluster.models_stack import (
    MANAGE_VERBS,
    MODEL_DELIVERY_RULES,
    SECRETS_MOUNT,
    ModelsStackSpec,
    OperatorArgs,
    literal_env_refs,
    models_stack,
)
from components.cluster.seldon_core import MODELS_POD_SECURITY
from components.cluster.workload_identity import KeyVault, PodIdentity, secret_provider_class, service_account
from layout import cluster_layout, team_layout
from settings.teams import Team

LIMIT_DEFAULTS = {"cpu": "500m", "memory": "512Mi"}
LIMIT_DEFAULT_REQUESTS = {"cpu": "100m", "memory": "128Mi"}


def team_labels(team: str, kind: str) -> dict[str, str]:
    return {team_layout.TEAM_LABEL: team, team_layout.TEAM_NAMESPACE_KIND_LABEL: kind}


def quota_hard(team: Team) -> dict[str, str]:
    """The ResourceQuota's `hard` of one team namespace."""
    return {"requests.cpu": team.quota.cpu, "requests.memory": team.quota.memory, "pods": str(team.quota.pods)}


def namespace_peer(namespace: str) -> k8s.networking.v1.NetworkPolicyPeerArgs:
    return k8s.networking.v1.NetworkPolicyPeerArgs(
        namespace_selector=k8s.meta.v1.LabelSelectorArgs(match_labels={"kubernetes.io/metadata.name": namespace})
    )


def admitted_namespaces(namespace: str, serving: bool) -> list[str]:
    """Whose pods may open connections into a team namespace: the gateway (serving only), monitoring, itself."""
    sources = [cluster_layout.ISTIO_NAMESPACE] if serving else []
    return [*sources, cluster_layout.MONITORING_NAMESPACE, namespace]


@dataclass(frozen=True)
class TeamStackArgs:
    operator: OperatorArgs
    """The platform's operator settings (chart, repo, backend, workspace image)."""
    environment: str
    platform_stack_name: str
    """The single models stack's name (`<org>/mlops-models/<env>`), whose project the team's shares."""
    identity: PodIdentity
    """The team's `<t>-deployer` identity."""
    operator_ready: Sequence[pulumi.Resource]
    """The operator release: the Stack CR waits for a working controller."""
    image_pull_ready: Sequence[pulumi.Resource] = ()


@dataclass(frozen=True)
class TeamTenancyArgs:
    team: Team
    provider: k8s.Provider
    cluster: pulumi.Resource
    istio_crds: pulumi.Resource
    job_identity: PodIdentity
    key_vault_name: pulumi.Input[str]
    tenant_id: pulumi.Input[str]
    secrets_written: Sequence[pulumi.Resource]
    """The team's Key Vault secrets: the Stack's secret class mounts two of them."""
    stack: TeamStackArgs | None = None
    """The team's models Stack (None: no operator on this platform)."""


class TeamTenancy(pulumi.ComponentResource):
    namespace: str
    jobs_namespace: str
    stack_name: str | None
    """The team's models stack (`<org>/mlops-models/<t>-<env>`), or None without the operator."""

    def __init__(self, name: str, args: TeamTenancyArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlops:cluster:TeamTenancy", name, None, opts)
        team = args.team

        def child(*depends_on: pulumi.Resource) -> pulumi.ResourceOptions:
            return pulumi.ResourceOptions(
                parent=self, provider=args.provider, deleted_with=args.cluster, depends_on=list(depends_on)
            )

        serving = k8s.core.v1.Namespace(
            f"{name}-namespace",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=team.namespace,
                labels={"istio-injection": "enabled", **MODELS_POD_SECURITY, **team_labels(team.name, "serving")},
            ),
            opts=child(),
        )
        k8s.apiextensions.CustomResource(
            f"{name}-strict-mtls",
            api_version="security.istio.io/v1",
            kind="PeerAuthentication",
            metadata=k8s.meta.v1.ObjectMetaArgs(name="default", namespace=team.namespace),
            spec={"mtls": {"mode": "STRICT"}},
            opts=child(serving, args.istio_crds),
        )
        jobs = MlflowProjects(
            f"{name}-jobs",
            MlflowProjectsArgs(
                namespace=team.jobs_namespace,
                identity=args.job_identity,
                resource_prefix=f"{name}-jobs",
                deleted_with=args.cluster,
                labels=team_labels(team.name, "jobs"),
            ),
            opts=pulumi.ResourceOptions(parent=self, providers=[args.provider]),
        )
        self._walls(name, team, "serving", team.namespace, child(serving))
        self._walls(name, team, "jobs", team.jobs_namespace, child(jobs))
        self.namespace = team.namespace
        self.jobs_namespace = team.jobs_namespace
        self.stack_name = None
        if args.stack is not None:
            self.stack_name = self._models_stack(name, args, args.stack, serving)
        self.register_outputs({"namespace": self.namespace, "jobsNamespace": self.jobs_namespace})

    def _walls(self, name: str, team: Team, kind: str, namespace: str, opts: pulumi.ResourceOptions) -> None:
        """Quota, limit defaults and NetworkPolicies of one team namespace."""
        k8s.core.v1.ResourceQuota(
            f"{name}-{kind}-quota",
            metadata=k8s.meta.v1.ObjectMetaArgs(name="team-quota", namespace=namespace),
            spec=k8s.core.v1.ResourceQuotaSpecArgs(hard=quota_hard(team)),
            opts=opts,
        )
        k8s.core.v1.LimitRange(
            f"{name}-{kind}-limits",
            metadata=k8s.meta.v1.ObjectMetaArgs(name="team-limits", namespace=namespace),
            spec=k8s.core.v1.LimitRangeSpecArgs(
                limits=[
                    k8s.core.v1.LimitRangeItemArgs(
                        type="Container",
                        default=dict(LIMIT_DEFAULTS),
                        default_request=dict(LIMIT_DEFAULT_REQUESTS),
                    )
                ]
            ),
            opts=opts,
        )

        def policy(suffix: str, ingress: list[k8s.networking.v1.NetworkPolicyIngressRuleArgs] | None) -> None:
            k8s.networking.v1.NetworkPolicy(
                f"{name}-{kind}-netpol-{suffix}",
                metadata=k8s.meta.v1.ObjectMetaArgs(name=suffix, namespace=namespace),
                spec=k8s.networking.v1.NetworkPolicySpecArgs(
                    pod_selector=k8s.meta.v1.LabelSelectorArgs(match_labels={}),
                    policy_types=["Ingress"],
                    ingress=ingress,
                ),
                opts=opts,
            )

        policy("default-deny", None)
        for source in admitted_namespaces(namespace, kind == "serving"):
            suffix = "allow-same-namespace" if source == namespace else f"allow-{source}"
            policy(suffix, [k8s.networking.v1.NetworkPolicyIngressRuleArgs(from_=[namespace_peer(source)])])

    def _models_stack(
        self,
        name: str,
        args: TeamTenancyArgs,
        stack: TeamStackArgs,
        serving: k8s.core.v1.Namespace,
    ) -> str:
        team = args.team
        automation = cluster_layout.AUTOMATION_NAMESPACE
        account = team_layout.deployer_service_account(team.name)

        def opts(*depends_on: pulumi.Resource) -> pulumi.ResourceOptions:
            return pulumi.ResourceOptions(
                parent=self, provider=args.provider, deleted_with=args.cluster, depends_on=list(depends_on)
            )

        deployer = service_account(
            f"{name}-deployer",
            name=account,
            namespace=automation,
            identity=stack.identity,
            automount_token=None,
            opts=opts(),
        )
        delegator = k8s.rbac.v1.ClusterRoleBinding(
            f"{name}-deployer-auth-delegator",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=f"{account}:system:auth-delegator"),
            role_ref=k8s.rbac.v1.RoleRefArgs(
                api_group="rbac.authorization.k8s.io", kind="ClusterRole", name="system:auth-delegator"
            ),
            subjects=[k8s.rbac.v1.SubjectArgs(kind="ServiceAccount", name=account, namespace=automation)],
            opts=opts(),
        )
        role = k8s.rbac.v1.Role(
            f"{name}-model-delivery",
            metadata=k8s.meta.v1.ObjectMetaArgs(name="model-delivery", namespace=team.namespace),
            rules=[
                k8s.rbac.v1.PolicyRuleArgs(api_groups=[group], resources=list(kinds), verbs=list(MANAGE_VERBS))
                for group, kinds in MODEL_DELIVERY_RULES
            ],
            opts=opts(serving),
        )
        binding = k8s.rbac.v1.RoleBinding(
            f"{name}-model-delivery",
            metadata=k8s.meta.v1.ObjectMetaArgs(name="model-delivery", namespace=team.namespace),
            role_ref=k8s.rbac.v1.RoleRefArgs(api_group="rbac.authorization.k8s.io", kind="Role", name="model-delivery"),
            subjects=[k8s.rbac.v1.SubjectArgs(kind="ServiceAccount", name=account, namespace=automation)],
            opts=opts(role, serving),
        )
        reader_password = team_layout.reader_password(team.name)
        passphrase = team_layout.stack_passphrase(team.name)
        credentials_class = f"{account}-credentials"
        credentials = secret_provider_class(
            f"{name}-deployer-credentials",
            name=credentials_class,
            namespace=automation,
            identity=stack.identity,
            vault=KeyVault(args.key_vault_name, args.tenant_id),
            secrets=[reader_password, passphrase],
            opts=opts(*args.secrets_written),
        )
        stack_name = team_layout.models_stack_name(stack.platform_stack_name, team.name, stack.environment)
        models_stack(
            f"{name}-stack",
            ModelsStackSpec(
                cr_name=team_layout.stack_cr_name(team.name, stack.environment),
                namespace=automation,
                stack_name=stack_name,
                service_account=account,
                credentials_class=credentials_class,
                env_refs=literal_env_refs(
                    {
                        "MLFLOW_TRACKING_USERNAME": team.reader_user,
                        "MLFLOW_TRACKING_PASSWORD_FILE": f"{SECRETS_MOUNT}/{reader_password}",
                        "PULUMI_CONFIG_PASSPHRASE_FILE": f"{SECRETS_MOUNT}/{passphrase}",
                        "MLFLOW_WORKSPACE": team.workspace,
                    }
                ),
            ),
            stack.operator,
            opts(
                *stack.operator_ready,
                deployer,
                delegator,
                binding,
                credentials,
                *stack.identity.ready,
                *stack.image_pull_ready,
            ),
        )
        return stack_name
