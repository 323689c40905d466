"""Shared fixtures: the real program evaluated per committed stack under the mock engine."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from mlopsctl.mock_engine import Evaluation, evaluate, stack_config

# Real services on 127.0.0.1 (PostgreSQL, Azurite, MLflow, nginx) as session fixtures.
pytest_plugins = ("tests.services.plugin",)

STACKS = ("dev", "prod")


@pytest.fixture(scope="session")
def evaluations() -> dict[str, Evaluation]:
    """Each committed stack evaluated once per session; tests must not mutate the result."""
    results = {stack: evaluate(stack) for stack in STACKS}
    for stack, result in results.items():
        if result.error is not None:
            raise AssertionError(f"stack {stack} failed to evaluate: {result.error!r}")
    return results


@pytest.fixture(scope="session")
def dev(evaluations: dict[str, Evaluation]) -> Evaluation:
    return evaluations["dev"]


@pytest.fixture(scope="session")
def prod(evaluations: dict[str, Evaluation]) -> Evaluation:
    return evaluations["prod"]


@pytest.fixture(params=STACKS)
def stack(request: pytest.FixtureRequest, evaluations: dict[str, Evaluation]) -> Evaluation:
    """Parametrises a test over every committed stack."""
    return evaluations[request.param]


def evaluate_with(stack: str, change: Callable[[dict[str, str]], None]) -> Evaluation:
    """Evaluate `stack` with its committed configuration changed by `change` (engine text values)."""
    config, secret_keys = stack_config(stack)
    change(config)
    return evaluate(stack, config, secret_keys)
