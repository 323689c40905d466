"""Real services the tests run on 127.0.0.1: a synthetic Seldon/MLflow exporter and Prometheus.

The session fixtures `synthetic_exporter` and `live_prometheus` (tests/conftest.py) start one of
each; `SYNTHETIC_MODEL` is the model they serve from the start.
"""

SYNTHETIC_MODEL = "fraud-detector"
"""Served by the session exporter: `stable` (version 3, 90% declared) and `canary` (version 4, 10%)."""
