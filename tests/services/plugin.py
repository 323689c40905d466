"""Session-scoped fixtures over tests/services: registered in tests/conftest.py (`pytest_plugins`).

`mlflow_stack` starts PostgreSQL, Azurite, the migrations, the three MLflow roles and nginx once
per session (about a minute on two cores) and stops them at the end; tests that never ask for it
pay nothing. Use it from any test module:

    def test_something(mlflow_stack: MlflowDeployment, monkeypatch) -> None:
        monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", mlflow_stack.admin_username)
        monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", mlflow_stack.admin_password)
        client = mlflow.MlflowClient(mlflow_stack.tracking_uri)
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.services.processes import temporary_directory
from tests.services.stack import MlflowDeployment, mlflow_deployment


@pytest.fixture(scope="session")
def mlflow_stack() -> Iterator[MlflowDeployment]:
    """The MLflow deployment of the dev stack on 127.0.0.1 behind one proxied URL."""
    with temporary_directory("mlops-mlflow-") as workdir, mlflow_deployment(workdir, "dev") as deployment:
        yield deployment
