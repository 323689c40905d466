"""Real services on 127.0.0.1 for integration tests: PostgreSQL, Azurite, MLflow roles, nginx.

`tests.services.processes` starts and stops them (plain functions and context managers);
`tests.services.plugin` wraps them in session-scoped pytest fixtures. Other test modules use the
stack with `pytest_plugins` (already registered in tests/conftest.py) and the `mlflow_stack`
fixture, which gives the proxied tracking URI, admin credentials and the Azurite details.
"""
