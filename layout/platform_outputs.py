"""The outputs contract between the platform stack and the models stack (pure, no Pulumi).

The platform exports these keys (`layers/outputs.py`); the models program reads them through a
`StackReference` and turns them into a `PlatformContract` before it reads the registry or
declares anything. A missing or malformed key fails the models program with one message naming
the platform stack and every bad key. `examples/platform-outputs.<stack>.json` holds what the
platform exports for each committed stack (the offline preview of `models/` reads it; a test
checks it against the platform program's real outputs).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from layout import cluster_layout

# Output name → PlatformContract field; every one a non-empty string.
CONTRACT_OUTPUTS: Final[dict[str, str]] = {
    "environment": "environment",
    "domain": "domain",
    "modelsNamespace": "models_namespace",
    "modelGatewayHost": "gateway_host",
    "modelReaderClientId": "model_reader_client_id",
    "modelReaderServiceAccount": "model_reader_service_account",
    "storageAccountName": "storage_account",
    "artifactsDestination": "artifacts_destination",
    "mlflowInClusterUri": "mlflow_uri",
    "prometheusUrl": "prometheus_url",
}


class PlatformOutputsError(ValueError):
    """The platform stack does not export what the models stack needs."""


@dataclass(frozen=True)
class PlatformContract:
    """What model delivery needs from the platform, all plain values (never secrets)."""

    environment: str
    domain: str
    models_namespace: str
    """Namespace of the SeldonDeployments; the models stack may manage objects here only."""
    gateway_host: str
    """`models.<domain>`: the host model endpoints are served under by the platform gateway."""
    model_reader_client_id: str
    """Client id of the identity the storage initializer reads model artifacts with."""
    model_reader_service_account: str
    """The service account federated with that identity (the models stack creates it)."""
    storage_account: str
    artifacts_destination: str
    """`wasbs://<container>@<account>.blob.core.windows.net/`: MLflow's artifact root."""
    mlflow_uri: str
    """MLflow's in-cluster URL (registry role, which answers registry and tracking reads)."""
    prometheus_url: str


def mlflow_in_cluster_uri(mlflow_namespace: str) -> str:
    """The registry role's Service: it holds both stores, so registry and run/logged-model reads work."""
    return f"http://mlflow-registry.{mlflow_namespace}.svc.cluster.local:{cluster_layout.MLFLOW_SERVER_PORT}"


def contract_from_outputs(stack: str, outputs: Mapping[str, object]) -> PlatformContract:
    """Validate the platform stack's outputs; raises PlatformOutputsError naming every bad key."""
    problems = []
    values: dict[str, str] = {}
    for output, field in CONTRACT_OUTPUTS.items():
        value = outputs.get(output)
        if not isinstance(value, str) or not value:
            found = "nothing" if value is None else repr(value)
            problems.append(f"{output}: found {found}; expected a non-empty string")
        else:
            values[field] = value
    if problems:
        raise PlatformOutputsError(
            f"platform stack {stack} does not export what the models stack needs "
            f"(deploy the platform first, with this version of the program):\n  - " + "\n  - ".join(problems)
        )
    return PlatformContract(**values)


def load_example(path: Path) -> dict[str, object]:
    """An example of the platform's outputs (`examples/platform-outputs.<stack>.json`)."""
    document = json.loads(path.read_text())
    if not isinstance(document, dict):
        raise PlatformOutputsError(f"{path}: expected a JSON object of stack outputs")
    return document
