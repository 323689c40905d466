"""The two loops that move model rollouts without a person.

1. Analysis: a CronJob runs `mlopsctl rollout advance` every few minutes. It reads Prometheus
   and writes decisions to the MLflow registry only; its service account has no Kubernetes
   permissions (no RoleBinding), and its MLflow password comes from Key Vault (CSI driver,
   workload identity), read from a file.
2. Reconciliation (optional): the Pulumi Kubernetes Operator runs the *models* project
   (`models/`, Stack CR with `repoDir: models`) every `pulumiOperatorResyncSeconds` even when Git
   has not changed (the backstop; a reconcile request makes it run at once), so a registry
   decision becomes declared traffic without a person running `pulumi up`. Its workspace runs as
   `models-deployer`: a Role in the models namespace for exactly the kinds model delivery
   declares (no ClusterRole beyond the operator's documented token review), an Azure identity
   that may only read two Key Vault secrets, and the restricted Pod Security profile. It reads the
   registry as its own MLflow user, `models-reader`, with READ on the managed models only (kept by
   the Job of components/cluster/models_reader.py): the MLflow admin password never reaches the
   workspace. The Stack itself (its spec, its credentials as files): components.cluster.models_stack.

The operator's metrics (`stacks_failing`) are scraped by a PodMonitor declared here, next to the
operator: the platform alerts when a models Stack fails (observability.alerts.stack_alerts; that it
stalls comes from the Stack's condition, through kube-state-metrics). The chart serves them on
`http-metrics` (8383) over HTTPS with TokenReview/SubjectAccessReview authorization by default
(`controller.metricsSecure`), but chart 2.9.0 grants the operator neither review (only the kustomize install's
`metrics_auth_role.yaml` does) and its own ServiceMonitor scrapes plain HTTP: with the defaults no
scrape succeeds. The metrics (Stack names, counts) are served in plain HTTP inside the cluster.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as kubernetes

from components.cluster.models_stack import (
    MANAGE_VERBS,
    MODEL_DELIVERY_RULES,
    SECRETS_MOUNT,
    ModelsStackSpec,
    OperatorArgs,
    models_stack,
)
from components.cluster.pod_security import restricted_container, restricted_pod
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
from layout.cluster_layout import MLFLOW_ADMIN_PASSWORD, ROLLOUT_HOOK_SIGNING_KEY
from layout.images import DIGEST_PULL_POLICY

ANALYZER = "rollout-analyzer"
DEPLOYER = cluster_layout.workload_service_account("models-deployer").service_account
DEPLOYER_CREDENTIALS = "models-deployer-credentials"
"""The SecretProviderClass (Key Vault → files in the workspace pod) of the models deployer."""
OPERATOR_CHART = "oci://ghcr.io/pulumi/helm-charts/pulumi-kubernetes-operator"
OPERATOR_RELEASE = "pulumi-kubernetes-operator"
OPERATOR_POD_LABELS = {
    "app.kubernetes.io/name": "pulumi-kubernetes-operator",
    "app.kubernetes.io/instance": OPERATOR_RELEASE,
}
"""The chart's selector labels (`pulumi-kubernetes-operator.selectorLabels`: chart name, release name)."""
OPERATOR_METRICS_PORT = "http-metrics"


def operator_pod_monitor_spec(namespace: str) -> dict[str, object]:
    """The operator pod's metrics port, its labels kept: `stacks_failing` carries the Stack's own
    `namespace` and `name`, which the target's `namespace` label would otherwise rename."""
    return {
        "selector": {"matchLabels": dict(OPERATOR_POD_LABELS)},
        "namespaceSelector": {"matchNames": [namespace]},
        "podMetricsEndpoints": [
            {
                "port": OPERATOR_METRICS_PORT,
                "path": "/metrics",
                "scheme": "http",
                "interval": "30s",
                "honorLabels": True,
            }
        ],
    }


def analysis_command(stack: str) -> list[str]:
    return ["mlopsctl", "rollout", "advance", "--stack", stack, "--json"]


@dataclass(frozen=True)
class RolloutAutomationArgs:
    namespace: str
    stack: str
    schedule: str
    image: pulumi.Output[str]
    """The `mlopsctl` image by digest, from `PlatformImages.refs` (the CronJob waits for the build)."""
    analyzer_identity: PodIdentity
    """The `rollout-analyzer` identity (the CronJob's pods wait for its federated credential and
    Key Vault grant)."""
    tenant_id: pulumi.Input[str]
    key_vault_name: pulumi.Input[str]
    tracking_uri: str | None
    mlflow_username: str
    prometheus_url: pulumi.Input[str] | None
    models_namespace: str
    provider: kubernetes.Provider
    cluster: pulumi.Resource
    node_pools: Sequence[pulumi.Resource]
    """User node pools: the CronJob's pods and the operator run there."""
    image_pull_ready: Sequence[pulumi.Resource] = ()
    """The nodes' pull grant on the registry `image` lives in (empty: a public image)."""
    operator: OperatorArgs | None = None


class RolloutAutomation(pulumi.ComponentResource):
    def __init__(self, name: str, args: RolloutAutomationArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlops:serving:RolloutAutomation", name, None, opts)
        k8s = pulumi.ResourceOptions(parent=self, provider=args.provider, deleted_with=args.cluster)
        namespace = kubernetes.core.v1.Namespace(
            f"{name}-namespace",
            metadata=kubernetes.meta.v1.ObjectMetaArgs(
                name=args.namespace,
                labels={"pod-security.kubernetes.io/enforce": "restricted"},
            ),
            opts=k8s,
        )
        in_namespace = pulumi.ResourceOptions(
            parent=self, provider=args.provider, depends_on=[namespace], deleted_with=args.cluster
        )
        vault = KeyVault(args.key_vault_name, args.tenant_id)
        analyzer = service_account(
            f"{name}-analyzer",
            name=ANALYZER,
            namespace=args.namespace,
            identity=args.analyzer_identity,
            opts=in_namespace,
        )
        secret_class = secret_provider_class(
            f"{name}-mlflow-credentials",
            name=f"{ANALYZER}-mlflow",
            namespace=args.namespace,
            identity=args.analyzer_identity,
            vault=vault,
            secrets=[MLFLOW_ADMIN_PASSWORD, ROLLOUT_HOOK_SIGNING_KEY],
            opts=in_namespace,
        )
        env = [
            kubernetes.core.v1.EnvVarArgs(name="MLFLOW_TRACKING_USERNAME", value=args.mlflow_username),
            kubernetes.core.v1.EnvVarArgs(
                name="MLFLOW_TRACKING_PASSWORD_FILE", value=f"{SECRETS_MOUNT}/{MLFLOW_ADMIN_PASSWORD}"
            ),
            # Event hooks of the rollouts are signed with this key (rollout.hooks).
            kubernetes.core.v1.EnvVarArgs(
                name="MLOPS_HOOK_SECRET_FILE", value=f"{SECRETS_MOUNT}/{ROLLOUT_HOOK_SIGNING_KEY}"
            ),
        ]
        if args.tracking_uri:
            env.append(kubernetes.core.v1.EnvVarArgs(name="MLFLOW_TRACKING_URI", value=args.tracking_uri))
        if args.prometheus_url is not None:
            env.append(kubernetes.core.v1.EnvVarArgs(name="PROMETHEUS_URL", value=args.prometheus_url))
        env.append(kubernetes.core.v1.EnvVarArgs(name="MODELS_NAMESPACE", value=args.models_namespace))
        labels = {"app.kubernetes.io/name": ANALYZER, "app.kubernetes.io/part-of": "mlops-platform"}
        kubernetes.batch.v1.CronJob(
            f"{name}-analysis",
            metadata=kubernetes.meta.v1.ObjectMetaArgs(name=ANALYZER, namespace=args.namespace, labels=labels),
            spec=kubernetes.batch.v1.CronJobSpecArgs(
                schedule=args.schedule,
                concurrency_policy="Forbid",
                starting_deadline_seconds=120,
                successful_jobs_history_limit=3,
                failed_jobs_history_limit=5,
                job_template=kubernetes.batch.v1.JobTemplateSpecArgs(
                    spec=kubernetes.batch.v1.JobSpecArgs(
                        backoff_limit=0,
                        active_deadline_seconds=600,
                        template=kubernetes.core.v1.PodTemplateSpecArgs(
                            metadata=kubernetes.meta.v1.ObjectMetaArgs(labels=uses_identity(labels)),
                            spec=kubernetes.core.v1.PodSpecArgs(
                                service_account_name=ANALYZER,
                                automount_service_account_token=False,
                                restart_policy="Never",
                                security_context=restricted_pod(10001),
                                containers=[
                                    kubernetes.core.v1.ContainerArgs(
                                        name="mlopsctl",
                                        image=args.image,
                                        image_pull_policy=DIGEST_PULL_POLICY,
                                        args=analysis_command(args.stack)[1:],
                                        env=env,
                                        resources=kubernetes.core.v1.ResourceRequirementsArgs(
                                            requests={"cpu": "100m", "memory": "256Mi"},
                                            limits={"cpu": "500m", "memory": "512Mi"},
                                        ),
                                        security_context=restricted_container(),
                                        volume_mounts=[
                                            secrets_mount("mlflow-credentials", SECRETS_MOUNT),
                                            kubernetes.core.v1.VolumeMountArgs(name="tmp", mount_path="/tmp"),
                                        ],
                                    )
                                ],
                                volumes=[
                                    secrets_volume("mlflow-credentials", f"{ANALYZER}-mlflow"),
                                    kubernetes.core.v1.VolumeArgs(
                                        name="tmp", empty_dir=kubernetes.core.v1.EmptyDirVolumeSourceArgs()
                                    ),
                                ],
                            ),
                        ),
                    )
                ),
            ),
            opts=pulumi.ResourceOptions(
                parent=self,
                provider=args.provider,
                depends_on=[
                    namespace,
                    analyzer,
                    secret_class,
                    *args.node_pools,
                    *args.image_pull_ready,
                    *args.analyzer_identity.ready,
                ],
                deleted_with=args.cluster,
            ),
        )
        self.operator = args.operator
        self.operator_release: pulumi.Resource | None = None
        """The operator's release once declared: teams' Stacks (components.cluster.team_tenancy) wait for it."""
        if args.operator is not None:
            self._operator(name, args, args.operator, namespace)
        self.register_outputs({})

    def _operator(
        self, name: str, args: RolloutAutomationArgs, operator: OperatorArgs, namespace: kubernetes.core.v1.Namespace
    ) -> None:
        def opts(*depends_on: pulumi.Resource) -> pulumi.ResourceOptions:
            return pulumi.ResourceOptions(
                parent=self, provider=args.provider, depends_on=list(depends_on), deleted_with=args.cluster
            )

        release = kubernetes.helm.v3.Release(
            f"{name}-pulumi-operator",
            name=OPERATOR_RELEASE,
            chart=OPERATOR_CHART,
            version=operator.chart_version,
            namespace=args.namespace,
            values={
                "resources": {"requests": {"cpu": "100m", "memory": "256Mi"}, "limits": {"cpu": "1", "memory": "1Gi"}},
                # Scrapable by the PodMonitor below (see the module docstring).
                "controller": {"metricsSecure": False},
            },
            # Like every platform release: a failed install or upgrade rolls back, and `up` waits
            # until the operator runs, so the Stack CR below is created for a working controller.
            atomic=True,
            opts=opts(namespace, *args.node_pools),
        )
        self.operator_release = release
        if operator.monitoring_crds is not None:
            kubernetes.apiextensions.CustomResource(
                f"{name}-pulumi-operator-metrics",
                api_version="monitoring.coreos.com/v1",
                kind="PodMonitor",
                metadata={"name": OPERATOR_RELEASE, "namespace": args.namespace},
                spec=operator_pod_monitor_spec(args.namespace),
                opts=opts(release, operator.monitoring_crds),
            )
        deployer = service_account(
            f"{name}-deployer",
            name=DEPLOYER,
            namespace=args.namespace,
            identity=operator.deployer_identity,
            # The operator's workspace pod calls the API server with its token.
            automount_token=None,
            opts=opts(namespace),
        )
        # Workspaces authenticate to the operator with TokenReview (the operator's documented need);
        # `system:auth-delegator` allows token and access reviews only.
        delegator = kubernetes.rbac.v1.ClusterRoleBinding(
            f"{name}-deployer-auth-delegator",
            metadata=kubernetes.meta.v1.ObjectMetaArgs(name=f"{DEPLOYER}:system:auth-delegator"),
            role_ref=kubernetes.rbac.v1.RoleRefArgs(
                api_group="rbac.authorization.k8s.io", kind="ClusterRole", name="system:auth-delegator"
            ),
            subjects=[kubernetes.rbac.v1.SubjectArgs(kind="ServiceAccount", name=DEPLOYER, namespace=args.namespace)],
            opts=opts(),
        )
        role = kubernetes.rbac.v1.Role(
            f"{name}-model-delivery",
            metadata=kubernetes.meta.v1.ObjectMetaArgs(name="model-delivery", namespace=operator.models_namespace),
            rules=[
                kubernetes.rbac.v1.PolicyRuleArgs(api_groups=[group], resources=list(kinds), verbs=list(MANAGE_VERBS))
                for group, kinds in MODEL_DELIVERY_RULES
            ],
            opts=opts(operator.models_namespace_ready),
        )
        binding = kubernetes.rbac.v1.RoleBinding(
            f"{name}-model-delivery",
            metadata=kubernetes.meta.v1.ObjectMetaArgs(name="model-delivery", namespace=operator.models_namespace),
            role_ref=kubernetes.rbac.v1.RoleRefArgs(
                api_group="rbac.authorization.k8s.io", kind="Role", name="model-delivery"
            ),
            subjects=[kubernetes.rbac.v1.SubjectArgs(kind="ServiceAccount", name=DEPLOYER, namespace=args.namespace)],
            opts=opts(role, operator.models_namespace_ready),
        )
        # The registry is read as the read-only models reader (components/cluster/models_reader.py),
        # never as the MLflow admin: the admin password is not in this class nor the identity's grants.
        secret_files = {
            cluster_layout.MODELS_READER_PASSWORD: "MLFLOW_TRACKING_PASSWORD_FILE",
            cluster_layout.MODELS_STACK_PASSPHRASE: "PULUMI_CONFIG_PASSPHRASE_FILE",
        }
        credentials = secret_provider_class(
            f"{name}-deployer-credentials",
            name=DEPLOYER_CREDENTIALS,
            namespace=args.namespace,
            identity=operator.deployer_identity,
            vault=KeyVault(args.key_vault_name, args.tenant_id),
            secrets=list(secret_files),
            opts=opts(namespace),
        )
        env_refs: dict[str, dict[str, object]] = {
            "MLFLOW_TRACKING_USERNAME": {"type": "Literal", "literal": {"value": cluster_layout.MODELS_READER_USER}},
            **{
                variable: {"type": "Literal", "literal": {"value": f"{SECRETS_MOUNT}/{secret}"}}
                for secret, variable in secret_files.items()
            },
        }
        models_stack(
            f"{name}-stack",
            ModelsStackSpec(
                cr_name=cluster_layout.MODELS_STACK_CR_NAME,
                namespace=cluster_layout.MODELS_STACK_CR_NAMESPACE,
                stack_name=operator.stack_name,
                service_account=DEPLOYER,
                credentials_class=DEPLOYER_CREDENTIALS,
                env_refs=env_refs,
            ),
            operator,
            opts(
                release,
                deployer,
                delegator,
                binding,
                credentials,
                *operator.deployer_identity.ready,
                *args.image_pull_ready,
            ),
        )
