"""PostgreSQL connections at maximum scale fit the server: PgBouncer, its sizing and the arithmetic."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from harness.mock_engine import Evaluation
from layout.mlflow_server import PGBOUNCER_PORT, POSTGRES_PORT
from settings.capacity import MlflowScale, connection_budget, max_connections, user_connections
from tests.conftest import assert_refused, evaluate_with
from tests.services.stack import committed_settings

P = "mlops-platform:"


@pytest.mark.parametrize(
    ("sku", "expected"),
    [
        # Azure's "Limits in Azure Database for PostgreSQL flexible server" table.
        ("Standard_B1ms", 50),
        ("Standard_B2s", 429),
        ("Standard_B2ms", 859),
        ("Standard_B4ms", 1718),
        ("Standard_B12ms", 5000),
        ("Standard_D2ds_v5", 859),
        ("Standard_D4ds_v5", 1718),
        ("Standard_D4s_v3", 1718),
        ("Standard_D8ads_v5", 3437),
        ("Standard_D16ds_v5", 5000),
        ("Standard_E2ds_v5", 1718),
        ("Standard_E4ds_v5", 3437),
        ("Standard_E8ds_v5", 5000),
    ],
)
def test_max_connections_follow_azures_table(sku: str, expected: int) -> None:
    assert max_connections(sku) == expected
    assert user_connections(sku) == expected - 15


def _scale(stack: str) -> MlflowScale:
    s = committed_settings(stack)
    return MlflowScale(
        workers=s.mlflow_workers,
        pool_size=s.mlflow_db_pool_size,
        max_overflow=s.mlflow_db_max_overflow,
        max_replicas={
            "tracking": s.mlflow_tracking_max_replicas,
            "registry": s.mlflow_registry_max_replicas,
            "artifacts": s.mlflow_artifacts_replicas,
        },
    )


def test_dev_connects_directly_within_a_burstable_server() -> None:
    # (2+1 pods x 2 workers x 3 engines x 10) x 2 roles + (1+1) x 2 x 1 x 10 = 400 clients.
    scale = _scale("dev")
    assert scale.client_connections == 400
    budget = connection_budget(scale, user_connections("Standard_B2ms") or 0, None, None)
    assert (budget.server_demand, budget.server_limit) == (411, 844) and budget.fits


def test_prod_needs_pgbouncer_and_fits_with_it() -> None:
    # (9+1)x4x3x10 + (6+1)x4x3x10 + (3+1)x4x1x10 = 1200 + 840 + 160.
    scale = _scale("prod")
    assert scale.client_connections == 2200
    limit = user_connections("Standard_D4ds_v5") or 0
    pooled = connection_budget(scale, limit, 50, 5000)
    assert (pooled.clients, pooled.server_demand, pooled.server_limit) == (2200, 161, 1703) and pooled.fits
    direct = connection_budget(scale, limit, None, None)
    assert direct.server_demand == 2211 and not direct.fits


def _set(**values: str) -> Callable[[dict[str, str]], None]:
    def change(config: dict[str, str]) -> None:
        for key, value in values.items():
            config[P + key] = value

    return change


OVER_THE_LIMIT = [
    pytest.param(
        "dev",
        _set(postgresPgbouncer="true"),
        ["postgresPgbouncer"],
        "GeneralPurpose and MemoryOptimized only",
        id="pgbouncer-on-burstable",
    ),
    pytest.param(
        "prod",
        _set(postgresPgbouncer="false"),
        ["postgresSkuName"],
        "found Standard_D4ds_v5 (accepts 1703 connections) with 2211 needed",
        id="prod-without-pgbouncer",
    ),
    pytest.param(
        "dev",
        _set(mlflowWorkers="8"),
        ["postgresSkuName"],
        "with 1611 needed at maximum scale (mlflowWorkers, mlflowDbPoolSize",
        id="dev-workers-over-burstable",
    ),
    pytest.param(
        "prod",
        _set(postgresPgbouncerMaxClientConnections="2000"),
        ["postgresPgbouncerMaxClientConnections"],
        "2000 while MLflow may open 2200 connections",
        id="pgbouncer-clients",
    ),
    pytest.param(
        "prod",
        _set(postgresPgbouncerPoolSize="600"),
        ["postgresPgbouncerPoolSize"],
        "1811 server connections with the migration Job and headroom, over the 1703",
        id="pgbouncer-pool",
    ),
    pytest.param(
        "prod",
        _set(mlflowTrackingMaxReplicas="40", mlflowDbMaxOverflow="30"),
        ["postgresPgbouncerMaxClientConnections"],
        "while MLflow may open 20720 connections",
        id="replicas-times-pool",
    ),
]


@pytest.mark.parametrize(("stack", "change", "keys", "explanation"), OVER_THE_LIMIT)
def test_a_combination_over_the_servers_limit_is_refused(
    stack: str, change: Callable[[dict[str, str]], None], keys: list[str], explanation: str
) -> None:
    assert_refused(evaluate_with(stack, change), keys, explanation)


def test_a_larger_server_admits_what_a_smaller_one_refuses() -> None:
    evaluation = evaluate_with("prod", _set(postgresPgbouncer="false", postgresSkuName="Standard_D16ds_v5"))
    assert evaluation.error is None


def _parameters(evaluation: Evaluation) -> dict[str, str]:
    return {
        r.inputs["configurationName"]: r.inputs["value"]
        for r in evaluation.of_type("azure-native:dbforpostgresql:Configuration")
    }


def test_prod_server_runs_pgbouncer_sized_by_settings(prod: Evaluation, dev: Evaluation) -> None:
    parameters = _parameters(prod)
    assert parameters["pgbouncer.enabled"] == "true"
    assert parameters["pgbouncer.pool_mode"] == "TRANSACTION"
    assert parameters["pgbouncer.default_pool_size"] == "50"
    assert parameters["pgbouncer.max_client_conn"] == "5000"
    assert not any(name.startswith("pgbouncer.") for name in _parameters(dev))


def _containers(evaluation: Evaluation, kind: str, name: str) -> list[dict[str, Any]]:
    (resource,) = [
        r
        for r in evaluation.of_type(f"kubernetes:{'batch' if kind == 'Job' else 'apps'}/v1:{kind}")
        if r.inputs["metadata"]["name"] == name
    ]
    spec = resource.inputs["spec"]["template"]["spec"]
    return [*spec.get("initContainers", []), *spec["containers"]]


def _store_ports(args: list[str]) -> set[int]:
    uris = [a for a in args if a.startswith("postgresql+psycopg2://")]
    assert uris, args
    return {int(uri.split("@", 1)[1].split("/", 1)[0].rsplit(":", 1)[1]) for uri in uris}


@pytest.mark.parametrize(("stack_name", "server_port"), [("dev", POSTGRES_PORT), ("prod", PGBOUNCER_PORT)])
def test_servers_use_pgbouncer_and_migrations_go_direct(
    stack_name: str, server_port: int, evaluations: dict[str, Evaluation]
) -> None:
    evaluation = evaluations[stack_name]
    for role in ("tracking", "registry"):
        (container,) = _containers(evaluation, "Deployment", f"mlflow-{role}")
        assert _store_ports(container["command"]) == {server_port}
    for container in _containers(evaluation, "Job", "mlflow-migrate"):
        assert _store_ports(container["command"]) == {POSTGRES_PORT}
    auth = next(
        r for r in evaluation.of_type("kubernetes:core/v1:ConfigMap") if "basic_auth.ini" in r.inputs.get("data", {})
    )
    assert f":{server_port}/mlflow_auth" in auth.inputs["data"]["basic_auth.ini"]
    egress = next(
        r
        for r in evaluation.of_type("kubernetes:networking.k8s.io/v1:NetworkPolicy")
        if r.inputs["metadata"]["name"] == "allow-server-egress"
    )
    ports = {p["port"] for rule in egress.inputs["spec"]["egress"] for p in rule.get("ports", [])}
    assert {POSTGRES_PORT, PGBOUNCER_PORT} <= ports
