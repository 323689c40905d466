"""The two loops that move model rollouts without a person.

1. Analysis: a CronJob runs `mlopsctl rollout advance` every few minutes. It reads Prometheus
   and writes decisions to the MLflow registry only; its service account has no Kubernetes
   permissions (no RoleBinding), and its MLflow password comes from Key Vault (CSI driver,
   workload identity), read from a file.
2. Reconciliation (optional): the Pulumi Kubernetes Operator re-runs this program for the stack
   every `pulumiOperatorResyncSeconds`, even when Git has not changed, so a registry decision
   becomes declared traffic without a person running `pulumi up`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as kubernetes

from components.cluster.pod_security import restricted_container, restricted_pod
from layout import cluster_layout
from layout.cluster_layout import MLFLOW_ADMIN_PASSWORD
from layout.images import DIGEST_PULL_POLICY
from layout.key_vault_csi import key_vault_provider_parameters

ANALYZER = "rollout-analyzer"
DEPLOYER = "pulumi-deployer"
SECRETS_MOUNT = "/mnt/secrets"
OPERATOR_CHART = "oci://ghcr.io/pulumi/helm-charts/pulumi-kubernetes-operator"
FEDERATED_TOKEN_FILE = "/var/run/secrets/azure/tokens/azure-identity-token"


def analysis_command(stack: str) -> list[str]:
    return ["mlopsctl", "rollout", "advance", "--stack", stack, "--json"]


@dataclass(frozen=True)
class OperatorArgs:
    chart_version: str
    resync_seconds: int
    project_repo: str
    branch: str
    backend_url: str
    stack_name: str
    deployer_client_id: str
    tenant_id: pulumi.Input[str]
    subscription_id: pulumi.Input[str]


@dataclass(frozen=True)
class RolloutAutomationArgs:
    namespace: str
    stack: str
    schedule: str
    image: pulumi.Output[str]
    """The `mlopsctl` image by digest, from `PlatformImages.refs` (the CronJob waits for the build)."""
    analyzer_client_id: pulumi.Input[str]
    tenant_id: pulumi.Input[str]
    key_vault_name: pulumi.Input[str]
    tracking_uri: str | None
    mlflow_username: str
    prometheus_url: pulumi.Input[str] | None
    provider: kubernetes.Provider
    cluster: pulumi.Resource
    node_pools: Sequence[pulumi.Resource]
    """User node pools: the CronJob's pods and the operator run there."""
    analyzer_identity_ready: Sequence[pulumi.Resource]
    """Federated credential and Key Vault grant of the analysis CronJob's identity."""
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
        analyzer = kubernetes.core.v1.ServiceAccount(
            f"{name}-analyzer",
            metadata=kubernetes.meta.v1.ObjectMetaArgs(
                name=ANALYZER,
                namespace=args.namespace,
                annotations={cluster_layout.WORKLOAD_IDENTITY_CLIENT_ID: args.analyzer_client_id},
            ),
            automount_service_account_token=False,
            opts=in_namespace,
        )
        secret_class = kubernetes.apiextensions.CustomResource(
            f"{name}-mlflow-credentials",
            api_version="secrets-store.csi.x-k8s.io/v1",
            kind="SecretProviderClass",
            metadata={"name": f"{ANALYZER}-mlflow", "namespace": args.namespace},
            spec={
                "provider": "azure",
                "parameters": pulumi.Output.all(args.analyzer_client_id, args.key_vault_name, args.tenant_id).apply(
                    lambda ids: key_vault_provider_parameters(ids[0], ids[1], ids[2], [MLFLOW_ADMIN_PASSWORD])
                ),
            },
            opts=in_namespace,
        )
        env = [
            kubernetes.core.v1.EnvVarArgs(name="MLFLOW_TRACKING_USERNAME", value=args.mlflow_username),
            kubernetes.core.v1.EnvVarArgs(
                name="MLFLOW_TRACKING_PASSWORD_FILE", value=f"{SECRETS_MOUNT}/{MLFLOW_ADMIN_PASSWORD}"
            ),
        ]
        if args.tracking_uri:
            env.append(kubernetes.core.v1.EnvVarArgs(name="MLFLOW_TRACKING_URI", value=args.tracking_uri))
        if args.prometheus_url is not None:
            env.append(kubernetes.core.v1.EnvVarArgs(name="PROMETHEUS_URL", value=args.prometheus_url))
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
                            metadata=kubernetes.meta.v1.ObjectMetaArgs(
                                labels={**labels, cluster_layout.WORKLOAD_IDENTITY_USE: "true"}
                            ),
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
                                            kubernetes.core.v1.VolumeMountArgs(
                                                name="mlflow-credentials", mount_path=SECRETS_MOUNT, read_only=True
                                            ),
                                            kubernetes.core.v1.VolumeMountArgs(name="tmp", mount_path="/tmp"),
                                        ],
                                    )
                                ],
                                volumes=[
                                    kubernetes.core.v1.VolumeArgs(
                                        name="mlflow-credentials",
                                        csi=kubernetes.core.v1.CSIVolumeSourceArgs(
                                            driver="secrets-store.csi.k8s.io",
                                            read_only=True,
                                            volume_attributes={"secretProviderClass": f"{ANALYZER}-mlflow"},
                                        ),
                                    ),
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
                    *args.analyzer_identity_ready,
                ],
                deleted_with=args.cluster,
            ),
        )
        if args.operator is not None:
            self._operator(name, args, args.operator, namespace)
        self.register_outputs({})

    def _operator(
        self, name: str, args: RolloutAutomationArgs, operator: OperatorArgs, namespace: kubernetes.core.v1.Namespace
    ) -> None:
        release = kubernetes.helm.v3.Release(
            f"{name}-pulumi-operator",
            name="pulumi-kubernetes-operator",
            chart=OPERATOR_CHART,
            version=operator.chart_version,
            namespace=args.namespace,
            values={"resources": {"requests": {"cpu": "100m", "memory": "256Mi"}, "limits": {"memory": "1Gi"}}},
            opts=pulumi.ResourceOptions(
                parent=self,
                provider=args.provider,
                depends_on=[namespace, *args.node_pools],
                deleted_with=args.cluster,
            ),
        )
        deployer = kubernetes.core.v1.ServiceAccount(
            f"{name}-deployer",
            metadata=kubernetes.meta.v1.ObjectMetaArgs(
                name=DEPLOYER,
                namespace=args.namespace,
                annotations={cluster_layout.WORKLOAD_IDENTITY_CLIENT_ID: operator.deployer_client_id},
            ),
            opts=pulumi.ResourceOptions(
                parent=self, provider=args.provider, depends_on=[namespace], deleted_with=args.cluster
            ),
        )
        # Workspaces authenticate to the operator with TokenReview (the operator's documented need).
        delegator = kubernetes.rbac.v1.ClusterRoleBinding(
            f"{name}-deployer-auth-delegator",
            metadata=kubernetes.meta.v1.ObjectMetaArgs(name=f"{DEPLOYER}:system:auth-delegator"),
            role_ref=kubernetes.rbac.v1.RoleRefArgs(
                api_group="rbac.authorization.k8s.io", kind="ClusterRole", name="system:auth-delegator"
            ),
            subjects=[kubernetes.rbac.v1.SubjectArgs(kind="ServiceAccount", name=DEPLOYER, namespace=args.namespace)],
            opts=pulumi.ResourceOptions(parent=self, provider=args.provider, deleted_with=args.cluster),
        )
        azure_env = {
            "ARM_USE_OIDC": "true",
            "ARM_CLIENT_ID": operator.deployer_client_id,
            "ARM_TENANT_ID": operator.tenant_id,
            "ARM_SUBSCRIPTION_ID": operator.subscription_id,
            "ARM_OIDC_TOKEN_FILE_PATH": FEDERATED_TOKEN_FILE,
        }
        kubernetes.apiextensions.CustomResource(
            f"{name}-stack",
            api_version="pulumi.com/v1",
            kind="Stack",
            metadata={
                "name": cluster_layout.MODELS_STACK_CR_NAME,
                "namespace": cluster_layout.MODELS_STACK_CR_NAMESPACE,
            },
            spec={
                "stack": operator.stack_name,
                "projectRepo": operator.project_repo,
                "branch": operator.branch,
                "backend": operator.backend_url,
                "serviceAccountName": DEPLOYER,
                "refresh": True,
                "resyncFrequencySeconds": operator.resync_seconds,
                # Re-run on the interval even when Git is unchanged: registry decisions are the change.
                "continueResyncOnCommitMatch": True,
                "destroyOnFinalize": False,
                "envRefs": {key: {"type": "Literal", "literal": {"value": value}} for key, value in azure_env.items()},
                "workspaceTemplate": {
                    "spec": {"podTemplate": {"metadata": {"labels": {cluster_layout.WORKLOAD_IDENTITY_USE: "true"}}}}
                },
            },
            opts=pulumi.ResourceOptions(
                parent=self,
                provider=args.provider,
                depends_on=[release, deployer, delegator],
                deleted_with=args.cluster,
            ),
        )
