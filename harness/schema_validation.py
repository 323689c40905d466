"""Validate what the program declares in Kubernetes against schemas the repository carries.

- Core kinds: the upstream OpenAPI schemas shipped by `kubernetes-validate`, strict (an unknown
  field is an error, as `kubectl apply --validate=strict` would say), at the cluster's version.
- Custom kinds: our own CRD subsets in `schemas/` (`*.crd-subset.yaml`: SeldonDeployment, Istio,
  Prometheus operator, SecretProviderClass, Pulumi operator Stack, cert-manager), written from the
  upstream definitions with only the fields the platform uses; see schemas/README.md. The API
  server silently *prunes* unknown fields of structural schemas, which hides typos, so objects are
  checked as if every object schema without `x-kubernetes-preserve-unknown-fields` had
  `additionalProperties: false`. A node marked `x-mlops-core-schema: <definition>` (an embedded pod
  template, every object's `metadata`) is checked by kubernetes-validate's core definition of that
  name at the cluster's version instead of a hand-written copy.
- Helm values: every path the program sets must be listed in our list of the pinned chart's keys
  (`schemas/<chart>-<version>.values-subset.yaml`, with upstream's defaults); below a default that
  is empty, a list or null anything goes (free-form upstream); a scalar must keep the default's type.
- Strict mode (`upstream=DIR`, `mlopsctl preview --upstream-schemas DIR` or MLOPS_UPSTREAM_SCHEMAS):
  additionally validates against the full upstream CRDs (`*crd*.yaml` in DIR) and chart default
  values (UPSTREAM_CHART_VALUES names the files) fetched as schemas/README.md describes.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Iterator, Mapping
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import yaml
from kubernetes_validate import utils as kv_utils
from packaging.version import Version
from referencing import Registry, Resource

from harness.mock_engine import REPO_ROOT, Evaluation, RecordedResource

REPO_SCHEMAS_DIR = REPO_ROOT / "schemas"
"""Our own schemas: the fields of each custom kind and the keys of each pinned chart the platform uses."""
UPSTREAM_SCHEMAS_ENV = "MLOPS_UPSTREAM_SCHEMAS"
"""A directory of full upstream CRDs and chart values: when set, validate against them too."""
CORE_SCHEMA_MARKER = "x-mlops-core-schema"
"""In our CRD subsets: check this node with the named kubernetes-validate core definition."""
OBJECT_META = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
_CORE_DEFINITIONS_ID = "https://kubernetes.io/api/_definitions.json"

# Pulumi resource types that are not Kubernetes objects themselves.
_NOT_OBJECTS = ("pulumi:providers:kubernetes", "kubernetes:helm.sh/v3:Release", "kubernetes:yaml")

# Upstream CRDs are megabytes of YAML: libyaml's safe loader parses them ten times faster.
_YamlLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

CHART_KEYS: dict[tuple[str, str], str] = {
    ("base", "1.30.3"): "istio-base-1.30.3.values-subset.yaml",
    ("istiod", "1.30.3"): "istio-istiod-1.30.3.values-subset.yaml",
    ("gateway", "1.30.3"): "istio-gateway-1.30.3.values-subset.yaml",
    ("seldon-core-operator", "1.17.1"): "seldon-core-operator-1.17.1.values-subset.yaml",
    ("kube-prometheus-stack", "88.5.3"): "kube-prometheus-stack-88.5.3.values-subset.yaml",
    ("pulumi-kubernetes-operator", "2.9.0"): "pulumi-kubernetes-operator-2.9.0.values-subset.yaml",
    ("cert-manager", "v1.19.1"): "cert-manager-v1.19.1.values-subset.yaml",
}
"""(chart, version) → our list of the chart's keys the platform sets, in REPO_SCHEMAS_DIR."""

UPSTREAM_CHART_VALUES: dict[tuple[str, str], str] = {
    ("base", "1.30.3"): "istio-base-1.30.3.values.yaml",
    ("istiod", "1.30.3"): "istio-istio-discovery-1.30.3.values.yaml",
    ("gateway", "1.30.3"): "istio-gateway-1.30.3.values.yaml",
    ("seldon-core-operator", "1.17.1"): "seldon-core-operator-1.17.1.values.yaml",
    ("kube-prometheus-stack", "88.5.3"): "kube-prometheus-stack-88.5.3.values.yaml",
    ("pulumi-kubernetes-operator", "2.9.0"): "pulumi-operator-2.9.0.values.yaml",
    ("cert-manager", "v1.19.1"): "cert-manager-v1.19.1.values.yaml",
}
"""(chart, version) → the file name `helm show values` output is saved as in an upstream directory."""


def upstream_dir_from_env() -> Path | None:
    """The strict-mode directory named by MLOPS_UPSTREAM_SCHEMAS, or None when it is unset or empty."""
    value = os.environ.get(UPSTREAM_SCHEMAS_ENV, "")
    return Path(value) if value else None


def check_upstream_dir(directory: Path) -> None:
    """Refuse a strict-mode directory that is missing or holds no CRD file (a typo would check nothing)."""
    if not directory.is_dir():
        raise ValueError(f"upstream schemas directory {directory} does not exist")
    if not any(directory.glob("*crd*.yaml")):
        raise ValueError(f"upstream schemas directory {directory} has no *crd*.yaml file (see schemas/README.md)")


def _strict(schema: Any) -> Any:
    """Close every object schema that lists its properties and does not preserve unknown fields."""
    if isinstance(schema, dict):
        closed = {key: _strict(value) for key, value in schema.items()}
        if (
            "properties" in closed
            and "additionalProperties" not in closed
            and not closed.get("x-kubernetes-preserve-unknown-fields")
        ):
            closed["additionalProperties"] = False
        return closed
    if isinstance(schema, list):
        return [_strict(item) for item in schema]
    return schema


def _resolve_core_markers(schema: Any) -> Any:
    """Replace each `x-mlops-core-schema: <name>` node by a reference to that core definition."""
    if isinstance(schema, dict):
        if CORE_SCHEMA_MARKER in schema:
            return {"$ref": f"{_CORE_DEFINITIONS_ID}#/$defs/{schema[CORE_SCHEMA_MARKER]}"}
        return {key: _resolve_core_markers(value) for key, value in schema.items()}
    if isinstance(schema, list):
        return [_resolve_core_markers(item) for item in schema]
    return schema


@cache
def load_crds(directory: Path, pattern: str) -> dict[tuple[str, str], dict[str, Any]]:
    """(apiVersion, kind) → strict openAPIV3Schema, from the CRD files matching `pattern` in `directory`.

    Every kind's `metadata` is checked as a core ObjectMeta (CRDs leave it open or list a copy).
    """
    schemas: dict[tuple[str, str], dict[str, Any]] = {}
    for path in sorted(directory.glob(pattern)):
        for document in yaml.load_all(path.read_text(), Loader=_YamlLoader):
            if not isinstance(document, dict) or document.get("kind") != "CustomResourceDefinition":
                continue
            spec = document["spec"]
            for version in spec["versions"]:
                schema = copy.deepcopy(version["schema"]["openAPIV3Schema"])
                # Istio's CRDs list only spec/status: every object has these three all the same.
                properties = schema.setdefault("properties", {})
                properties["metadata"] = {CORE_SCHEMA_MARKER: OBJECT_META}
                properties.setdefault("apiVersion", {"type": "string"})
                properties.setdefault("kind", {"type": "string"})
                key = (f"{spec['group']}/{version['name']}", spec["names"]["kind"])
                schemas[key] = _resolve_core_markers(_strict(schema))
    return schemas


def crd_schemas() -> dict[tuple[str, str], dict[str, Any]]:
    """Our CRD subsets (schemas/*.crd-subset.yaml), strict, core markers resolved."""
    return load_crds(REPO_SCHEMAS_DIR, "*.crd-subset.yaml")


def upstream_crd_schemas(directory: Path) -> dict[tuple[str, str], dict[str, Any]]:
    """The full upstream CRDs of a strict-mode directory (every `*crd*.yaml` in it), made strict."""
    return load_crds(directory, "*crd*.yaml")


def core_schema_version(kubernetes_version: str) -> str:
    """kubernetes-validate's schema set for a cluster version: the newest not newer than it."""
    wanted = Version(kv_utils.major_minor(kubernetes_version.removeprefix("v")))
    candidates = [v for v in kv_utils.all_versions() if Version(kv_utils.major_minor(v)) <= wanted]
    if not candidates:
        raise kv_utils.VersionNotSupportedError(kubernetes_version)
    return str(candidates[-1])


@cache
def core_definitions(kubernetes_version: str) -> Registry[Any]:
    """kubernetes-validate's strict core definitions (`_definitions.json`) as a reference registry."""
    schema_dir = f"v{core_schema_version(kubernetes_version)}-local-strict"
    contents = kv_utils.schema_contents(f"kubernetes-json-schema/{schema_dir}/_definitions.json", kubernetes_version)
    return Resource.from_contents(contents) @ Registry()


@cache
def _crd_validator(directory: Path | None, api_version: str, kind: str, kubernetes_version: str) -> Any:
    """A validator for one kind from ours (directory None) or an upstream directory; None when absent."""
    schemas = crd_schemas() if directory is None else upstream_crd_schemas(directory)
    schema = schemas.get((api_version, kind))
    if schema is None:
        return None
    return jsonschema.Draft202012Validator(schema, registry=core_definitions(kubernetes_version))


def _path(error: jsonschema.ValidationError) -> str:
    return ".".join(str(part) for part in error.absolute_path) or "(root)"


def _errors(validator: Any, obj: Mapping[str, Any], suffix: str = "") -> list[str]:
    errors = sorted(validator.iter_errors(dict(obj)), key=str)
    return [f"{_path(e)}: {e.message}{suffix}" for e in errors]


def validate_object(obj: Mapping[str, Any], kubernetes_version: str, upstream: Path | None = None) -> list[str]:
    """Problems of one Kubernetes object; empty when it is valid.

    A custom kind is checked against our subset and, with `upstream`, against the full upstream CRD.
    """
    api_version, kind = obj.get("apiVersion"), obj.get("kind")
    if not isinstance(api_version, str) or not isinstance(kind, str):
        return ["apiVersion and kind are required"]
    ours = _crd_validator(None, api_version, kind, kubernetes_version)
    if ours is not None:
        problems = _errors(ours, obj)
        if upstream is not None:
            full = _crd_validator(upstream, api_version, kind, kubernetes_version)
            if full is None:
                problems.append(f"no upstream CRD for {api_version} {kind} in {upstream}")
            else:
                problems += _errors(full, obj, " (upstream CRD)")
        return problems
    try:
        kubernetes_validate.validate(dict(obj), kubernetes_version, strict=True)
    except kv_utils.ValidationError as error:
        return [f"{_path(error)}: {error.message}"]
    except kv_utils.SchemaNotFoundError:
        return [
            f"no schema for {api_version} {kind} (neither Kubernetes {kubernetes_version} "
            f"nor a CRD subset in {REPO_SCHEMAS_DIR.name}/)"
        ]
    return []


def kubernetes_objects(evaluation: Evaluation) -> Iterator[tuple[RecordedResource, dict[str, Any]]]:
    """Every Kubernetes object the program declares, as the manifest the provider would apply."""
    for resource in evaluation.resources:
        if not resource.type.startswith("kubernetes:") or resource.type.startswith(_NOT_OBJECTS):
            continue
        yield resource, dict(resource.inputs)


def helm_releases(evaluation: Evaluation) -> list[RecordedResource]:
    return evaluation.of_type("kubernetes:helm.sh/v3:Release")


def _load_values(path: Path) -> dict[str, Any]:
    """A values file; Istio's `_internal_defaults_do_not_set` unwrapped (user values go at top level)."""
    values = yaml.load(path.read_text(), Loader=_YamlLoader) or {}
    internal = values.pop("_internal_defaults_do_not_set", None)
    if isinstance(internal, dict):
        values = {**internal, **values}
    return dict(values)


@cache
def chart_defaults(chart: str, version: str) -> dict[str, Any]:
    """Our list of the pinned chart's keys the platform sets, with upstream's defaults."""
    filename = CHART_KEYS.get((chart, version))
    if filename is None:
        raise LookupError(f"no default values on file for chart {chart} {version}; pinned charts: {sorted(CHART_KEYS)}")
    return _load_values(REPO_SCHEMAS_DIR / filename)


@cache
def upstream_chart_defaults(directory: Path, chart: str, version: str) -> dict[str, Any]:
    """The chart's full default values from a strict-mode directory."""
    filename = UPSTREAM_CHART_VALUES.get((chart, version))
    path = directory / filename if filename else None
    if path is None or not path.is_file():
        raise LookupError(f"no upstream default values for chart {chart} {version} in {directory}")
    return _load_values(path)


def _kind(value: Any) -> str | None:
    """The scalar kind a Helm value must keep: a number is a number whether 1 or 1.0."""
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    return None


def helm_value_problems(values: Mapping[str, Any], defaults: Mapping[str, Any], prefix: str = "") -> list[str]:
    """Paths set in `values` that the chart does not have, or that change a listed scalar's type."""
    problems = []
    for key, value in values.items():
        path = f"{prefix}{key}"
        if key not in defaults:
            problems.append(f"{path}: not a value of the chart")
            continue
        default = defaults[key]
        if isinstance(default, dict) and default:
            if isinstance(value, dict):
                problems.extend(helm_value_problems(value, default, path + "."))
            elif value is not None:
                problems.append(f"{path}: the chart expects a mapping here, got {type(value).__name__}")
            continue
        expected, given = _kind(default), _kind(value)
        if expected is not None and value is not None and given != expected:
            problems.append(f"{path}: the chart's default is a {expected}, got {given or type(value).__name__}")
    return problems


def release_problems(release: RecordedResource, upstream: Path | None = None) -> list[str]:
    """A Helm release must name a pinned version and a repository, and set only real values
    (our list of the chart's keys; with `upstream`, also the chart's full default values)."""
    inputs = release.inputs
    chart, version = inputs.get("chart", ""), inputs.get("version", "")
    repository = (inputs.get("repositoryOpts") or {}).get("repo", "")
    if chart.startswith("oci://"):  # an OCI reference names its registry itself
        repository, chart = chart, chart.rsplit("/", 1)[-1]
    if not version:
        return [f"{release.name}: chart {chart} has no pinned version"]
    if not repository:
        return [f"{release.name}: chart {chart} has no repository"]
    values = inputs.get("values") or {}
    try:
        problems = helm_value_problems(values, chart_defaults(chart, version))
    except LookupError as error:
        return [f"{release.name}: {error}"]
    if upstream is not None:
        try:
            full = upstream_chart_defaults(upstream, chart, version)
        except LookupError as error:
            problems.append(str(error))
        else:
            problems += [f"{p} (upstream values)" for p in helm_value_problems(values, full)]
    return [f"{release.name}: {problem}" for problem in problems]


def schema_problems(evaluation: Evaluation, kubernetes_version: str, upstream: Path | None = None) -> list[str]:
    """Every schema problem of the stack's Kubernetes objects and Helm releases, one line each.

    `upstream` None: the directory named by MLOPS_UPSTREAM_SCHEMAS when set, else our schemas only.
    """
    upstream = upstream if upstream is not None else upstream_dir_from_env()
    if upstream is not None:
        check_upstream_dir(upstream)
    problems = []
    for resource, obj in kubernetes_objects(evaluation):
        found = validate_object(obj, kubernetes_version, upstream)
        problems += [f"{resource.name} ({obj.get('kind')}): {p}" for p in found]
    for release in helm_releases(evaluation):
        problems += release_problems(release, upstream)
    return problems
