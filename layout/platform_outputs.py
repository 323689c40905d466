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
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Final

from layout import cluster_layout
from layout.images import is_digest_reference

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
IMAGES_OUTPUT: Final = "platformImages"
# Image name in the `platformImages` output → PlatformContract field; every one a digest reference.
CONTRACT_IMAGES: Final[dict[str, str]] = {
    "model-server": "model_server_image",
    "storage-initializer": "storage_initializer_image",
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
    model_server_image: str
    """`<registry>/mlops/model-server@sha256:...`: the model server every predictor runs."""
    storage_initializer_image: str
    """`<registry>/mlops/storage-initializer@sha256:...`: the init container of every graph node."""
    team: str = ""
    """The team whose models stack this is (`teams` output), empty for the single models namespace."""
    team_quota: TeamQuotaContract | None = None
    """The team's quota (`teams.<team>.quota`): what its models may request at most."""


@dataclass(frozen=True)
class TeamQuotaContract:
    """A team's quota as the platform exports it (`settings.teams.TeamQuota`; quantities as written there)."""

    cpu: str
    """`requests.cpu` of the team's ResourceQuota."""
    memory: str
    """`requests.memory` of the team's ResourceQuota."""
    pods: int
    max_replicas: int
    """Replicas one model may scale to (per predictor)."""
    models: int
    """Served models in the team's models stack."""


def mlflow_in_cluster_uri(mlflow_namespace: str) -> str:
    """The registry role's Service: it holds both stores, so registry and run/logged-model reads work."""
    return f"http://mlflow-registry.{mlflow_namespace}.svc.cluster.local:{cluster_layout.MLFLOW_SERVER_PORT}"


def contract_from_outputs(stack: str, outputs: Mapping[str, object]) -> PlatformContract:
    """Validate the platform stack's outputs; raises PlatformOutputsError naming every bad key."""
    problems = []
    values: dict[str, Any] = {}  # field → a non-empty string, checked below
    for output, field in CONTRACT_OUTPUTS.items():
        value = outputs.get(output)
        if not isinstance(value, str) or not value:
            found = "nothing" if value is None else repr(value)
            problems.append(f"{output}: found {found}; expected a non-empty string")
        else:
            values[field] = value
    images = outputs.get(IMAGES_OUTPUT)
    images = images if isinstance(images, Mapping) else {}
    for name, field in CONTRACT_IMAGES.items():
        image = images.get(name)
        if not is_digest_reference(image):
            found = "nothing" if image is None else repr(image)
            expected = "`<registry>/<repository>@sha256:<digest>`"
            problems.append(f"{IMAGES_OUTPUT}.{name}: found {found}; expected {expected}")
        else:
            values[field] = str(image)
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


TEAMS_OUTPUT: Final = "teams"
"""Per team (stacks with teams only): what the team's people and its models stack use (docs/teams.md)."""


def team_artifact_location(artifacts_destination: str, team: str) -> str:
    """Where MLflow stores the team's proxied artifacts: `<destination>workspaces/<team>/`
    (MLflow 3.17.2 prefixes every workspace's artifacts, `layout.storage_abac`)."""
    return f"{artifacts_destination.rstrip('/')}/workspaces/{team}/"


def team_outputs(
    *,
    team: str,
    namespace: str,
    jobs_namespace: str,
    domain: str,
    mlflow_namespace: str,
    artifacts_destination: str,
    reader_client_id: str,
    stack_name: str | None,
    stack_cr_name: str | None,
    quota: TeamQuotaContract,
) -> dict[str, object]:
    """One team's entry of the `teams` output (plain values, never a password: Key Vault secret names)."""
    return {
        "namespace": namespace,
        "jobsNamespace": jobs_namespace,
        "mlflowWorkspace": team,
        "mlflowTrackingUri": f"https://{cluster_layout.public_host('mlflow', domain)}",
        "mlflowInClusterUri": mlflow_in_cluster_uri(mlflow_namespace),
        "artifactLocation": team_artifact_location(artifacts_destination, team),
        "readerClientId": reader_client_id,
        "readerServiceAccount": cluster_layout.workload_service_account("model-reader").service_account,
        "automationUser": f"{team}-automation",
        "automationUserVaultEntry": f"{team}-automation-password",
        "readerUser": f"{team}-reader",
        "stackName": stack_name,
        "stackCrName": stack_cr_name,
        "endpointBase": f"https://{cluster_layout.public_host('models', domain)}/seldon/{namespace}/",
        "quota": {
            "cpu": quota.cpu,
            "memory": quota.memory,
            "pods": quota.pods,
            "maxReplicas": quota.max_replicas,
            "models": quota.models,
        },
    }


_QUOTA_QUANTITIES: Final = ("cpu", "memory")
_QUOTA_COUNTS: Final = ("pods", "maxReplicas", "models")


def _count(value: object) -> int | None:
    """A whole number; a StackReference hands numbers over as floats (protobuf `Struct` numbers are doubles)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return int(value) if float(value).is_integer() and value >= 1 else None


def _team_quota(stack: str, team: str, raw: object) -> TeamQuotaContract:
    """`teams.<team>.quota` → TeamQuotaContract; a platform deployed before quotas were exported lacks it."""
    where = f"platform stack {stack}: {TEAMS_OUTPUT}.{team}.quota"
    if not isinstance(raw, Mapping):
        raise PlatformOutputsError(f"{where} is {raw!r}; deploy the platform with this version of the program")
    quantities = {key: raw.get(key) for key in _QUOTA_QUANTITIES}
    counts = {key: _count(raw.get(key)) for key in _QUOTA_COUNTS}
    bad = [k for k, v in quantities.items() if not isinstance(v, str) or not v] + [
        k for k, v in counts.items() if v is None
    ]
    if bad:
        raise PlatformOutputsError(f"{where}: {', '.join(bad)} missing or malformed in {dict(raw)!r}")
    return TeamQuotaContract(
        cpu=str(quantities["cpu"]),
        memory=str(quantities["memory"]),
        pods=counts["pods"] or 0,
        max_replicas=counts["maxReplicas"] or 0,
        models=counts["models"] or 0,
    )


def team_contract(stack: str, contract: PlatformContract, teams: object, team: str) -> PlatformContract:
    """`contract` narrowed to one team: its namespace and reader identity from the `teams` output.

    Raises PlatformOutputsError naming the platform stack and the team when the platform does not
    declare the team (a models stack for a team the platform has not onboarded)."""
    entry = teams.get(team) if isinstance(teams, Mapping) else None
    if not isinstance(entry, Mapping):
        known = sorted(teams) if isinstance(teams, Mapping) else []
        raise PlatformOutputsError(
            f"platform stack {stack} declares no team {team!r} (its `{TEAMS_OUTPUT}` output has {known}): "
            "add the team to the platform's `teams` and deploy the platform first"
        )
    fields = {"namespace": "models_namespace", "readerClientId": "model_reader_client_id"}
    fields["readerServiceAccount"] = "model_reader_service_account"
    values = {}
    for key, field in fields.items():
        value = entry.get(key)
        if not isinstance(value, str) or not value:
            raise PlatformOutputsError(f"platform stack {stack}: {TEAMS_OUTPUT}.{team}.{key} is {value!r}")
        values[field] = value
    quota = _team_quota(stack, team, entry.get("quota"))
    return replace(contract, team=team, team_quota=quota, **values)
