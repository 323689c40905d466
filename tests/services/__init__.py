"""Real services the tests run on 127.0.0.1: a synthetic Seldon/MLflow exporter and Prometheus.

The session fixtures `synthetic_exporter` and `live_prometheus` (tests/conftest.py) start one of
each; `SYNTHETIC_MODEL` is the model they serve from the start.
"""

SYNTHETIC_MODEL = "fraud-detector"
"""Served by the session exporter: `stable` (version 3, 90% declared) and `canary` (version 4, 10%)."""
"""Real services on 127.0.0.1 for integration tests: PostgreSQL, Azurite, MLflow roles, nginx.

`tests.services.processes` starts and stops them (plain functions and context managers);
`tests.services.plugin` wraps them in session-scoped pytest fixtures. Other test modules use the
stack with `pytest_plugins` (already registered in tests/conftest.py) and the `mlflow_stack`
fixture, which gives the proxied tracking URI, admin credentials and the Azurite details.
"""
