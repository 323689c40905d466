"""The schema harness itself: it accepts valid objects and names what is wrong in invalid ones."""

from __future__ import annotations

import pytest

from harness.schema_validation import chart_defaults, crd_schemas, helm_value_problems, validate_object

VERSION = "1.34.2"


def _deployment(**container_extra: object) -> dict[str, object]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "tracking", "namespace": "mlflow"},
        "spec": {
            "selector": {"matchLabels": {"app": "tracking"}},
            "template": {
                "metadata": {"labels": {"app": "tracking"}},
                "spec": {"containers": [{"name": "mlflow", "image": "mlflow:3", **container_extra}]},
            },
        },
    }


def test_core_kinds_are_validated_strictly() -> None:
    assert validate_object(_deployment(), VERSION) == []
    problems = validate_object(_deployment(imagePullPolicy="Always", livenesProbe={}), VERSION)
    assert len(problems) == 1 and "livenesProbe" in problems[0]


def test_custom_kinds_use_the_shared_crds() -> None:
    assert ("machinelearning.seldon.io/v1", "SeldonDeployment") in crd_schemas()
    sdep = {
        "apiVersion": "machinelearning.seldon.io/v1",
        "kind": "SeldonDeployment",
        "metadata": {"name": "fraud-detector"},
        "spec": {
            "predictors": [
                {
                    "name": "stable",
                    "traffic": 100,
                    "graph": {"name": "model", "implementation": "MLFLOW_SERVER", "modelUri": "wasbs://x"},
                }
            ]
        },
    }
    assert validate_object(sdep, VERSION) == []
    sdep["spec"]["predictors"][0]["trafic"] = 10  # type: ignore[index]
    problems = validate_object(sdep, VERSION)
    assert problems and "trafic" in problems[0]


def test_unknown_kinds_are_reported() -> None:
    assert "no schema" in validate_object({"apiVersion": "example.com/v1", "kind": "Widget"}, VERSION)[0]


def test_helm_values_must_exist_in_the_chart() -> None:
    defaults = chart_defaults("kube-prometheus-stack", "88.5.3")
    assert helm_value_problems({"prometheus": {"prometheusSpec": {"retention": "15d"}}}, defaults) == []
    assert helm_value_problems({"grafana": {"adminPasword": "x"}}, defaults) == [
        "grafana.adminPasword: not a value of the chart"
    ]
    istiod = chart_defaults("istiod", "1.30.3")
    assert "autoscaleEnabled" in istiod and "_internal_defaults_do_not_set" not in istiod


def test_unpinned_chart_has_no_defaults() -> None:
    with pytest.raises(LookupError, match="no default values"):
        chart_defaults("kube-prometheus-stack", "latest")


def test_istio_objects_validate_although_their_crds_omit_apiversion_and_kind() -> None:
    gateway = {
        "apiVersion": "networking.istio.io/v1",
        "kind": "Gateway",
        "metadata": {"name": "platform-gateway", "namespace": "istio-system"},
        "spec": {
            "selector": {"istio": "ingressgateway"},
            "servers": [{"port": {"number": 80, "name": "http", "protocol": "HTTP"}, "hosts": ["*"]}],
        },
    }
    assert validate_object(gateway, VERSION) == []
    gateway["spec"]["server"] = []  # type: ignore[index]
    problems = validate_object(gateway, VERSION)
    assert len(problems) == 1 and "server" in problems[0]
