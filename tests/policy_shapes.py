"""Kubernetes objects, Helm releases and SeldonDeployments as pulumi-kubernetes registers them.

The program does not declare in-cluster resources yet (they are being added in parallel), so the
policy tests build them here: `type` as pulumi-kubernetes registers it, inputs `apiVersion`,
`kind`, `metadata`, `spec` (Release: `chart`, `version`, `repositoryOpts`, `namespace`,
`values`). The compliant shapes are checked against the real schemas in tests, so they are
objects the API server would accept.
"""

from __future__ import annotations

import copy
from typing import Any

from layout import lineage, resource_types

DEPLOYMENT_TYPE = resource_types.DEPLOYMENT
JOB_TYPE = resource_types.JOB
RELEASE_TYPE = resource_types.HELM_RELEASE
SELDON_TYPE = resource_types.SELDON_DEPLOYMENT

_CONTAINER: dict[str, Any] = {
    "name": "mlflow",
    "image": "mlopsprodacr.azurecr.io/mlops/mlflow-server@sha256:" + "3f" * 32,
    "imagePullPolicy": "IfNotPresent",
    "ports": [{"name": "http", "containerPort": 5000}],
    "resources": {"requests": {"cpu": "250m", "memory": "512Mi"}, "limits": {"cpu": "1", "memory": "1Gi"}},
    # Plain values and non-secret references only (k8s-no-secret-env): secrets are mounted files.
    "env": [
        {"name": "PGPASSFILE", "value": "/tmp/pgpass"},
        {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
    ],
    "securityContext": {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
    },
    "readinessProbe": {"httpGet": {"path": "/health", "port": "http"}},
    "livenessProbe": {"httpGet": {"path": "/health", "port": "http"}, "periodSeconds": 20},
}

_DEPLOYMENT: dict[str, Any] = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "tracking", "namespace": "mlflow", "labels": {"app.kubernetes.io/name": "mlflow"}},
    "spec": {
        "replicas": 2,
        "selector": {"matchLabels": {"app.kubernetes.io/name": "mlflow"}},
        "template": {
            "metadata": {"labels": {"app.kubernetes.io/name": "mlflow"}},
            "spec": {
                "serviceAccountName": "mlflow-server",
                "securityContext": {
                    "runAsNonRoot": True,
                    "runAsUser": 10001,
                    "seccompProfile": {"type": "RuntimeDefault"},
                },
                "containers": [_CONTAINER],
            },
        },
    },
}

_JOB: dict[str, Any] = {
    "apiVersion": "batch/v1",
    "kind": "Job",
    "metadata": {"name": "mlflow-migrate", "namespace": "mlflow"},
    "spec": {
        "backoffLimit": 2,
        "template": {
            "spec": {
                "restartPolicy": "Never",
                "securityContext": {"runAsNonRoot": True, "runAsUser": 10001},
                "containers": [
                    {
                        **{k: v for k, v in _CONTAINER.items() if not k.endswith("Probe") and k != "ports"},
                        "name": "migrate",
                        "args": ["mlflow", "db", "upgrade"],
                    }
                ],
            }
        },
    },
}

_RELEASE: dict[str, Any] = {
    "name": "seldon-core-operator",
    "chart": "seldon-core-operator",
    "version": "1.17.1",
    "repositoryOpts": {"repo": "https://storage.googleapis.com/seldon-charts"},
    "namespace": "seldon-system",
    "createNamespace": False,
    "atomic": True,
    "values": {"istio": {"enabled": True, "gateway": "istio-system/platform-gateway"}},
}

# helm.v4.Chart registers a component with the chart's coordinates as inputs.
_CHART_V4: dict[str, Any] = {
    "chart": "istiod",
    "version": "1.30.3",
    "repositoryOpts": {"repo": "https://istio-release.storage.googleapis.com/charts"},
    "namespace": "istio-system",
    "values": {"pilot": {"autoscaleEnabled": True}},
}

_ARTIFACTS = "wasbs://mlflow-artifacts@mlopsprodarte2f6e9.blob.core.windows.net/1/models/m-abc/artifacts"


def _predictor(name: str, version: str, traffic: int) -> dict[str, Any]:
    return {
        "name": name,
        "traffic": traffic,
        "replicas": 2,
        "annotations": {
            lineage.REGISTERED_MODEL: "fraud-detector",
            lineage.MODEL_VERSION: version,
            lineage.RUN_ID: f"run{version}",
            lineage.SOURCE: f"models:/m-{version}",
            lineage.ARTIFACT_URI: f"{_ARTIFACTS}{version}",
            lineage.GIT_COMMIT: "0123456789abcdef0123456789abcdef01234567",
        },
        "graph": {
            "name": "model",
            "implementation": "MLFLOW_SERVER",
            "modelUri": f"{_ARTIFACTS}{version}",
            "envSecretRefName": "model-storage",
        },
    }


_SELDON: dict[str, Any] = {
    "apiVersion": "machinelearning.seldon.io/v1",
    "kind": "SeldonDeployment",
    "metadata": {"name": "fraud-detector", "namespace": "models"},
    "spec": {
        "protocol": "v2",
        "predictors": [_predictor("stable", "6", 90), _predictor("canary", "7", 10)],
    },
}

SHAPES: dict[str, tuple[str, dict[str, Any]]] = {
    "deployment": (DEPLOYMENT_TYPE, _DEPLOYMENT),
    "job": (JOB_TYPE, _JOB),
    "release": (RELEASE_TYPE, _RELEASE),
    "chart-v4": ("kubernetes:helm.sh/v4:Chart", _CHART_V4),
    "seldon": (SELDON_TYPE, _SELDON),
}


def shape(kind: str) -> tuple[str, dict[str, Any]]:
    """A fresh copy of a compliant resource: (type token, inputs)."""
    type_token, inputs = SHAPES[kind]
    return type_token, copy.deepcopy(inputs)
