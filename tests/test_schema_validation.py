"""The schema harness itself: it accepts valid objects and names what is wrong in invalid ones.

Our own schemas (schemas/) are checked here on every run; the agreement with the full upstream
definitions runs where they are at hand (MLOPS_UPSTREAM_SCHEMAS; tests/test_schema_agreement.py).
"""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any

import pytest

from harness.schema_validation import (
    CHART_KEYS,
    REPO_SCHEMAS_DIR,
    chart_defaults,
    crd_schemas,
    helm_value_problems,
    validate_object,
)

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


def test_custom_kinds_use_our_crd_subsets() -> None:
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


# --- our CRD subsets: strict on every custom kind the platform declares ----------------------------

_SDEP: dict[str, Any] = {
    "apiVersion": "machinelearning.seldon.io/v1",
    "kind": "SeldonDeployment",
    "metadata": {"name": "fd", "namespace": "models", "labels": {"mlops.io/strategy": "canary"}},
    "spec": {
        "name": "fd",
        "protocol": "v2",
        "predictors": [
            {
                "name": "stable",
                "replicas": 1,
                "traffic": 100,
                "annotations": {"version": "3"},
                "labels": {"version": "3"},
                "componentSpecs": [
                    {
                        "metadata": {"labels": {"azure.workload.identity/use": "true"}},
                        "spec": {"serviceAccountName": "models", "containers": [{"name": "model"}]},
                    }
                ],
                "graph": {"name": "model", "type": "MODEL", "implementation": "MLFLOW_SERVER", "children": []},
            }
        ],
    },
}
_VIRTUAL_SERVICE: dict[str, Any] = {
    "apiVersion": "networking.istio.io/v1",
    "kind": "VirtualService",
    "metadata": {"name": "fd-routing", "namespace": "models"},
    "spec": {
        "hosts": ["models.example.com"],
        "gateways": ["istio-system/platform"],
        "http": [
            {
                "name": "http-default",
                "match": [{"uri": {"prefix": "/seldon/models/fd/"}, "headers": {"x-group": {"exact": "b"}}}],
                "rewrite": {"uri": "/"},
                "route": [{"destination": {"host": "fd-stable", "port": {"number": 8000}}, "weight": 100}],
                "mirror": {"host": "fd-canary", "port": {"number": 8000}},
                "mirrorPercentage": {"value": 10.0},
            }
        ],
    },
}
_GATEWAY: dict[str, Any] = {
    "apiVersion": "networking.istio.io/v1",
    "kind": "Gateway",
    "metadata": {"name": "platform", "namespace": "istio-system"},
    "spec": {
        "selector": {"istio": "ingressgateway"},
        "servers": [
            {
                "port": {"number": 443, "name": "https", "protocol": "HTTPS"},
                "hosts": ["*.example.com"],
                "tls": {"mode": "SIMPLE", "credentialName": "tls", "minProtocolVersion": "TLSV1_2"},
            }
        ],
    },
}
_PEER_AUTHENTICATION: dict[str, Any] = {
    "apiVersion": "security.istio.io/v1",
    "kind": "PeerAuthentication",
    "metadata": {"name": "default", "namespace": "models"},
    "spec": {"mtls": {"mode": "STRICT"}},
}
_POD_MONITOR: dict[str, Any] = {
    "apiVersion": "monitoring.coreos.com/v1",
    "kind": "PodMonitor",
    "metadata": {"name": "executors", "namespace": "monitoring"},
    "spec": {
        "selector": {"matchLabels": {"app": "x"}},
        "podMetricsEndpoints": [{"port": "metrics", "path": "/prometheus", "interval": "30s", "scheme": "http"}],
    },
}
_PROMETHEUS_RULE: dict[str, Any] = {
    "apiVersion": "monitoring.coreos.com/v1",
    "kind": "PrometheusRule",
    "metadata": {"name": "rules", "namespace": "monitoring"},
    "spec": {"groups": [{"name": "g", "rules": [{"alert": "Down", "expr": "up == 0", "for": "5m"}]}]},
}
_SECRET_PROVIDER_CLASS: dict[str, Any] = {
    "apiVersion": "secrets-store.csi.x-k8s.io/v1",
    "kind": "SecretProviderClass",
    "metadata": {"name": "kv", "namespace": "mlflow"},
    "spec": {
        "provider": "azure",
        "parameters": {"keyvaultName": "kv", "objects": "array: []"},
        "secretObjects": [{"secretName": "s", "type": "Opaque", "data": [{"key": "k", "objectName": "o"}]}],
    },
}
_STACK: dict[str, Any] = {
    "apiVersion": "pulumi.com/v1",
    "kind": "Stack",
    "metadata": {"name": "models", "namespace": "pulumi"},
    "spec": {
        "stack": "organization/mlops-models/dev",
        "resyncFrequencySeconds": 600,
        "envRefs": {"A": {"type": "Literal", "literal": {"value": "b"}}},
        "workspaceTemplate": {
            "spec": {
                "securityProfile": "restricted",
                "podTemplate": {"spec": {"containers": [{"name": "pulumi", "volumeMounts": []}]}},
            }
        },
    },
}
_CERTIFICATE: dict[str, Any] = {
    "apiVersion": "cert-manager.io/v1",
    "kind": "Certificate",
    "metadata": {"name": "gw", "namespace": "istio-system"},
    "spec": {"secretName": "gw", "issuerRef": {"name": "le"}, "privateKey": {"algorithm": "ECDSA"}},
}

# (valid object, path to change, value, what the problem must name): an unknown key, a wrong type
# and a value outside upstream's enum (or pattern) for every custom kind.
_BAD_FIELDS = [
    (_SDEP, ("spec", "predictors", 0, "trafic"), 10, "trafic"),
    (_SDEP, ("spec", "predictors", 0, "traffic"), "100", "traffic"),
    (_SDEP, ("spec", "protocol"), "v3", "protocol"),
    (_VIRTUAL_SERVICE, ("spec", "http", 0, "mirrorPercent"), 10, "mirrorPercent"),
    (_VIRTUAL_SERVICE, ("spec", "http", 0, "route", 0, "weight"), "100", "weight"),
    (_VIRTUAL_SERVICE, ("spec", "http", 0, "match", 0, "uri"), {"prefix": "/", "exact": "/"}, "uri"),
    (_GATEWAY, ("spec", "servers", 0, "tls", "credentialname"), "x", "credentialname"),
    (_GATEWAY, ("spec", "servers", 0, "port", "number"), "443", "number"),
    (_GATEWAY, ("spec", "servers", 0, "tls", "mode"), "STRICT", "mode"),
    (_PEER_AUTHENTICATION, ("spec", "mtls", "mod"), "STRICT", "mod"),
    (_PEER_AUTHENTICATION, ("spec", "mtls"), "STRICT", "mtls"),
    (_PEER_AUTHENTICATION, ("spec", "mtls", "mode"), "ISTIO_MUTUAL", "mode"),
    (_POD_MONITOR, ("spec", "podMetricsEndpoints", 0, "targetPort"), 8000, "targetPort"),
    (_POD_MONITOR, ("spec", "namespaceSelector"), {"matchNames": "models"}, "matchNames"),
    (_POD_MONITOR, ("spec", "podMetricsEndpoints", 0, "scheme"), "grpc", "scheme"),
    (_POD_MONITOR, ("spec", "podMetricsEndpoints", 0, "interval"), "30 seconds", "interval"),
    (_PROMETHEUS_RULE, ("spec", "groups", 0, "rules", 0, "keepFiring"), "5m", "keepFiring"),
    (_PROMETHEUS_RULE, ("spec", "groups", 0, "rules", 0, "labels"), {"severity": 1}, "severity"),
    (_PROMETHEUS_RULE, ("spec", "groups", 0, "rules", 0, "for"), "five minutes", "for"),
    (_SECRET_PROVIDER_CLASS, ("spec", "secretObject"), [], "secretObject"),
    (_SECRET_PROVIDER_CLASS, ("spec", "parameters", "usePodIdentity"), False, "usePodIdentity"),
    (_STACK, ("spec", "resyncFrequency"), 600, "resyncFrequency"),
    (_STACK, ("spec", "refresh"), "true", "refresh"),
    (_STACK, ("spec", "envRefs", "A", "literal"), {}, "value"),
    (_CERTIFICATE, ("spec", "privateKey", "algorithm"), "DSA", "algorithm"),
]


def _with(obj: dict[str, Any], path: tuple[str | int, ...], value: object) -> dict[str, Any]:
    changed = copy.deepcopy(obj)
    node: Any = changed
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value
    return changed


@pytest.mark.parametrize(
    "obj",
    [
        _SDEP,
        _VIRTUAL_SERVICE,
        _GATEWAY,
        _PEER_AUTHENTICATION,
        _POD_MONITOR,
        _PROMETHEUS_RULE,
        _SECRET_PROVIDER_CLASS,
        _STACK,
        _CERTIFICATE,
    ],
    ids=lambda o: o["kind"],
)
def test_our_subsets_accept_what_the_platform_writes(obj: dict[str, Any]) -> None:
    assert (obj["apiVersion"], obj["kind"]) in crd_schemas()
    assert validate_object(obj, VERSION) == []


@pytest.mark.parametrize(
    ("obj", "path", "value", "named"), _BAD_FIELDS, ids=[f"{o['kind']}-{p[-1]}" for o, p, _, _ in _BAD_FIELDS]
)
def test_our_subsets_refuse_unknown_keys_wrong_types_and_values_outside_the_enum(
    obj: dict[str, Any], path: tuple[str | int, ...], value: object, named: str
) -> None:
    problems = validate_object(_with(obj, path, value), VERSION)
    assert problems and any(named in p for p in problems), problems


@pytest.mark.parametrize(
    ("obj", "pod_spec_path"),
    [
        (_SDEP, ("spec", "predictors", 0, "componentSpecs", 0, "spec")),
        (_STACK, ("spec", "workspaceTemplate", "spec", "podTemplate", "spec")),
    ],
    ids=["SeldonDeployment", "Stack"],
)
def test_embedded_pod_templates_are_checked_by_the_core_podspec(
    obj: dict[str, Any], pod_spec_path: tuple[str | int, ...]
) -> None:
    container = (*pod_spec_path, "containers", 0)
    # A misspelt container field, a wrong type and a missing required field, none typed by us.
    assert "imagePullPolcy" in validate_object(_with(obj, (*container, "imagePullPolcy"), "Always"), VERSION)[0]
    probe = {"httpGet": {"path": "/ready", "port": 9000}, "failureThreshold": "ten"}
    assert any(
        "failureThreshold" in p for p in validate_object(_with(obj, (*container, "startupProbe"), probe), VERSION)
    )
    assert any(
        "containers" in p for p in validate_object(_with(obj, pod_spec_path, {"serviceAccountName": "x"}), VERSION)
    )
    # The version matters: `resizePolicy` exists from Kubernetes 1.27, so 1.26 refuses it.
    resize = _with(obj, (*container, "resizePolicy"), [{"resourceName": "cpu", "restartPolicy": "NotRequired"}])
    assert validate_object(resize, VERSION) == []
    assert any("resizePolicy" in p for p in validate_object(resize, "1.26.0"))


def test_metadata_of_custom_kinds_is_a_core_object_meta() -> None:
    problems = validate_object(_with(_GATEWAY, ("metadata", "label"), {"a": "b"}), VERSION)
    assert problems and "label" in problems[0]


@pytest.mark.parametrize(("chart", "version"), sorted(CHART_KEYS))
def test_a_value_path_not_in_our_list_of_the_charts_keys_is_refused(chart: str, version: str) -> None:
    defaults = chart_defaults(chart, version)
    assert defaults, f"{chart} {version}: our key list is empty"
    assert helm_value_problems({"notAValueOfThisChart": True}, defaults) == [
        "notAValueOfThisChart: not a value of the chart"
    ]
    # One level down, below every listed mapping: its keys are listed, not free-form.
    for key, default in defaults.items():
        if isinstance(default, dict) and default:
            assert helm_value_problems({key: {"notAKey": 1}}, defaults) == [f"{key}.notAKey: not a value of the chart"]


def test_helm_values_keep_the_type_of_the_charts_default_and_free_form_stays_free() -> None:
    defaults = chart_defaults("kube-prometheus-stack", "88.5.3")
    assert helm_value_problems({"grafana": {"enabled": "false"}}, defaults) == [
        "grafana.enabled: the chart's default is a boolean, got string"
    ]
    assert helm_value_problems({"prometheus": {"prometheusSpec": {"replicas": 2.0}}}, defaults) == []
    assert helm_value_problems({"grafana": "off"}, defaults) == ["grafana: the chart expects a mapping here, got str"]
    # Upstream's `storageSpec: {}`: anything goes below.
    assert helm_value_problems({"prometheus": {"prometheusSpec": {"storageSpec": {"anything": 1}}}}, defaults) == []


def test_the_repository_does_not_refer_to_a_folder_beside_it() -> None:
    """A clone has nothing beside it: no file of the project may name the team's reference folder."""
    root = REPO_SCHEMAS_DIR.parent
    beside = "/".join(("..", "shared"))
    offenders = []
    for folder, subfolders, files in os.walk(root):
        subfolders[:] = [d for d in subfolders if not d.startswith(".") and d not in _NOT_PROJECT_FILES]
        for name in files:
            path = Path(folder, name)
            if path.suffix in _TEXT_SUFFIXES and beside in path.read_text(encoding="utf-8", errors="ignore"):
                offenders.append(str(path.relative_to(root)))
    assert offenders == []


_NOT_PROJECT_FILES = {"node_modules", "__pycache__", "venv"}
_TEXT_SUFFIXES = {".py", ".md", ".yaml", ".yml", ".json", ".toml", ".txt", ".sh", ".cfg", ".ini", ""}
