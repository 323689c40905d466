"""What Prometheus knows about the Pulumi Kubernetes Operator's Stacks, and the PromQL that reads it.

Two sources, both per Stack (`namespace`, `name`: the Stack CR's own, kept by `honorLabels`):

- The operator's gauge `stacks_failing{namespace, name}` (PKO v2.9.0,
  operator/internal/controller/pulumi/metrics_stack.go): 1 when `status.lastUpdate.state` is
  failed, 0 when succeeded. It is the operator's only per-Stack metric: `stacks_reconciling` is
  declared there but never registered, and controller-runtime's reconcile counters carry only
  `controller` and `result`, so "no update attempted lately" cannot be told apart per Stack from
  them (with several Stacks, a healthy one's periodic resyncs would hide a stalled one's silence).
- The Stack's `Stalled` condition, exported by kube-state-metrics' custom-resource metrics
  (kube-state-metrics v2.20.0, the one kube-prometheus-stack 88.5.3 ships, through its chart's
  `customResourceState` values). PKO v2.9.0 sets `Stalled=True` when it stops trying: reason
  `UpdateFailed` once an update failed `maxUpdateFailures` (3) times in a row (`markStackResult`
  in stack_controller.go: "not retrying until the spec or source changes"), and `SpecInvalid`,
  `SourceUnavailable`, `WorkspaceFailed`… when it cannot even start (api/pulumi/v1/stack_types.go).
  kube-state-metrics turns the condition's `status` "True"/"False" into 1/0 (`toFloat64`,
  pkg/customresourcestate/registry_factory.go) and names the metric `kube_customresource_<name>`.

Each team's Stack is `<team>-<env>` (`layout.team_layout.stack_cr_name`) in the same namespace
as the single models Stack; `with_team` derives the `team` label from that name, so the rules do
not list the teams and adding one changes no rule.
"""

from __future__ import annotations

from typing import Any, Final

from observability.promql import matchers

STACK_FAILING_METRIC: Final = "stacks_failing"
STACK_CONDITION_METRIC_NAME: Final = "pulumi_stack_condition"
STACK_CONDITION_METRIC: Final = f"kube_customresource_{STACK_CONDITION_METRIC_NAME}"
"""`{namespace, name, condition, reason}`: 1 while the Stack's condition `condition` is True."""
STALLED_CONDITION: Final = "Stalled"
TEAM_LABEL: Final = "team"
"""The alert label naming the team whose Stack it is (Alertmanager routes on it); absent for the single Stack."""


def with_team(expr: str, environment: str) -> str:
    """`expr` with `team="<t>"` on series whose `name` is `<t>-<environment>` (a team's Stack);
    other series (the single `mlops-models` Stack) pass unchanged. PromQL anchors the regex."""
    return f'label_replace({expr}, "{TEAM_LABEL}", "$1", "name", "(.+)-{environment}")'


def stack_failing(namespace: str) -> str:
    """1 per Stack of `namespace` whose last update failed (the operator's gauge)."""
    return f"max by (namespace, name) ({STACK_FAILING_METRIC}{matchers({'namespace': namespace})})"


def stack_stalled(namespace: str) -> str:
    """1 per Stack of `namespace` the operator has stopped trying to update (its `Stalled` condition), by reason."""
    selector = matchers({"namespace": namespace, "condition": STALLED_CONDITION})
    return f"max by (namespace, name, reason) ({STACK_CONDITION_METRIC}{selector})"


def kube_state_metrics_values() -> dict[str, Any]:
    """kube-prometheus-stack's `kube-state-metrics` values exporting every Stack's conditions:
    the custom-resource config (kube-state-metrics chart 8.4.0 `customResourceState`) and the
    right to list and watch Stacks (`rbac.extraRules`; the chart adds the CRD rule itself)."""
    config = {
        "kind": "CustomResourceStateMetrics",
        "spec": {
            "resources": [
                {
                    "groupVersionKind": {"group": "pulumi.com", "version": "v1", "kind": "Stack"},
                    "labelsFromPath": {"namespace": ["metadata", "namespace"], "name": ["metadata", "name"]},
                    "metrics": [
                        {
                            "name": STACK_CONDITION_METRIC_NAME,
                            "help": "Status conditions of a Pulumi Kubernetes Operator Stack (1: True).",
                            "each": {
                                "type": "Gauge",
                                "gauge": {
                                    "path": ["status", "conditions"],
                                    "labelsFromPath": {"condition": ["type"], "reason": ["reason"]},
                                    "valueFrom": ["status"],
                                },
                            },
                        }
                    ],
                }
            ]
        },
    }
    return {
        "rbac": {"extraRules": [{"apiGroups": ["pulumi.com"], "resources": ["stacks"], "verbs": ["list", "watch"]}]},
        "customResourceState": {"enabled": True, "config": config},
    }
