"""Pure observability logic: PromQL, alert rules, Grafana dashboards (no Pulumi)."""
