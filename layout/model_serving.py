"""What a predictor pod runs: the storage initializer's command and env, the model server's env.

Pure facts, used by the SeldonDeployment builder (rollout/planner.py), the Seldon operator's chart
values (components/cluster/seldon_core.py) *and* tests/test_serving_e2e.py, which runs the same
rclone command and starts MLServer with the same env on 127.0.0.1. Each function says which
Seldon Core v1.17.1 source it mirrors; the pod's values are the operator's, not ours to choose.
"""

from __future__ import annotations

from typing import Any, Final

from layout import lineage

PROTOCOL: Final = "v2"
"""SeldonDeployment `spec.protocol`: MLServer and the V2 (Open Inference) protocol."""
IMPLEMENTATION: Final = "MLFLOW_SERVER"
"""Graph-node `implementation`: on protocol v2 the operator runs `mlserver_mlflow.MLflowRuntime`."""
MODEL_MOUNT: Final = "/mnt/models"
"""Where the operator mounts the model folder (`DefaultModelLocalMountPath`, model_initializer_injector.go)."""

STORAGE_INITIALIZER_ENTRYPOINT: Final = ("rclone", "copy")
"""ENTRYPOINT of images/storage-initializer (and of Seldon's own rclone-storage-initializer)."""
RCLONE_REMOTE: Final = lineage.AZURE_BLOB_REMOTE
"""The rclone remote of every modelUri (`azureblob:<container>/<path>`)."""

MLSERVER_HTTP_PORT: Final = 9000
MLSERVER_GRPC_PORT: Final = 9500
MLSERVER_METRICS_PORT: Final = 6000
MLSERVER_METRICS_ENDPOINT: Final = "/prometheus"
MLFLOW_RUNTIME: Final = "mlserver_mlflow.MLflowRuntime"
"""`MLServerMLFlowImplementation` in operator/controllers/mlserver.go."""


def initializer_args(model_uri: str, mount: str = MODEL_MOUNT) -> tuple[str, ...]:
    """The init container's args: `[<modelUri>, /mnt/models]` (InjectModelInitializer, v1.17.1)."""
    return (model_uri, mount)


def initializer_command(model_uri: str, mount: str = MODEL_MOUNT) -> tuple[str, ...]:
    """What the init container executes: the image's ENTRYPOINT followed by the operator's args."""
    return (*STORAGE_INITIALIZER_ENTRYPOINT, *initializer_args(model_uri, mount))


def storage_remote_env(account: str) -> dict[str, str]:
    """The rclone remote of the storage initializer, configured by env only, with no credential.

    `env_auth` makes rclone (>= 1.63) authenticate with the workload-identity token the Azure
    webhook mounts into every container of a pod labelled for workload identity.
    """
    remote = RCLONE_REMOTE.upper()
    return {
        f"RCLONE_CONFIG_{remote}_TYPE": "azureblob",
        f"RCLONE_CONFIG_{remote}_ACCOUNT": account,
        f"RCLONE_CONFIG_{remote}_ENV_AUTH": "true",
    }


def mlserver_env(
    node: str,
    namespace: str,
    *,
    model_uri: str = MODEL_MOUNT,
    http_port: int = MLSERVER_HTTP_PORT,
    grpc_port: int = MLSERVER_GRPC_PORT,
    metrics_port: int = MLSERVER_METRICS_PORT,
    metrics_endpoint: str = MLSERVER_METRICS_ENDPOINT,
) -> dict[str, str]:
    """The env the Seldon Core v1.17.1 operator gives the MLServer container of graph node `node`.

    Mirrors operator/controllers/mlserver.go `getMLServerEnvVars` (ports, runtime, model name,
    version and URI, and TEMPO_RUNTIME_OPTIONS, which MLServer ignores for MLflow models) and the
    metrics env of seldondeployment_controller.go (the metrics port and `executor.prometheus.path`).
    The operator sets no command, so the image's `mlserver start /mnt/models` runs with it.
    Ports and `model_uri` are parameters only so a test can run the same env on free local ports
    and a temporary folder; the defaults are the pod's values.
    """
    return {
        "MLSERVER_HTTP_PORT": str(http_port),
        "MLSERVER_GRPC_PORT": str(grpc_port),
        "MLSERVER_MODEL_IMPLEMENTATION": MLFLOW_RUNTIME,
        "MLSERVER_MODEL_NAME": node,
        "MLSERVER_MODEL_VERSION": "v1",
        "MLSERVER_MODEL_URI": model_uri,
        "TEMPO_RUNTIME_OPTIONS": (
            '{"k8s_options": {"defaultRuntime": "tempo.seldon.SeldonKubernetesRuntime", '
            f'"namespace": "{namespace}"}}}}'
        ),
        "MLSERVER_METRICS_PORT": str(metrics_port),
        "MLSERVER_METRICS_ENDPOINT": metrics_endpoint,
    }


def model_ready_path(node: str) -> str:
    """The V2 readiness of one model. MLServer's `/v2/health/ready` answers 200 even when the
    model failed to load; `/v2/models/<node>/ready` answers 200 only once it is loaded."""
    return f"/v2/models/{node}/ready"


def model_startup_probe(node: str) -> dict[str, Any]:
    """A startup probe on the model's own readiness, for the MLServer container of `node`.

    The operator replaces the *handler* of any readiness or liveness probe on an MLServer
    container with `/v2/health/ready` / `/v2/health/live` (mergeMLServerContainer, mlserver.go),
    so the CRD cannot make readiness honest. It leaves a startup probe alone, and Kubernetes runs
    neither readiness nor liveness before the startup probe succeeds: the pod never becomes
    Ready (gets no traffic) until the model is loaded, and a model that cannot load restarts the
    container after `failureThreshold x periodSeconds` (5 minutes) instead of serving 500s.
    """
    return {
        "httpGet": {"path": model_ready_path(node), "port": "http", "scheme": "HTTP"},
        "periodSeconds": 5,
        "failureThreshold": 60,
        "timeoutSeconds": 5,
    }


def inference_path(node: str) -> str:
    """Where a V2 inference request for graph node `node` goes (`POST`)."""
    return f"/v2/models/{node}/infer"
