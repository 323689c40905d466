"""Real services the tests run on 127.0.0.1: a synthetic Seldon/MLflow exporter and Prometheus."""
