"""Kubernetes objects and Helm releases, in the shapes pulumi-kubernetes registers.

Objects are registered as `kubernetes:<group>/<version>:<Kind>` (core group: `kubernetes:core/v1:Pod`)
with inputs `apiVersion`, `kind`, `metadata`, `spec`; Helm releases as `kubernetes:helm.sh/v3:Release`
(or the `kubernetes:helm.sh/v4:Chart` component) with `chart`, `version`, `repositoryOpts`,
`namespace`, `values`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

from pulumi_policy import ResourceValidationArgs, Severity

from layout import resource_types
from layout.images import DIGEST_PULL_POLICY, is_digest_reference
from policies.framework import get, resource_policy

HELM_RELEASE = resource_types.HELM_RELEASE
HELM_TYPES = frozenset({HELM_RELEASE, resource_types.HELM_CHART})

# Workload kind → path of its pod spec.
POD_SPEC_PATHS = {
    "Pod": "spec",
    "Deployment": "spec.template.spec",
    "StatefulSet": "spec.template.spec",
    "DaemonSet": "spec.template.spec",
    "ReplicaSet": "spec.template.spec",
    "Job": "spec.template.spec",
    "CronJob": "spec.jobTemplate.spec.template.spec",
}
# Long-running kinds, which need probes (Jobs run to completion).
SERVING_KINDS = frozenset({"Deployment", "StatefulSet", "DaemonSet"})
CLUSTER_SCOPED_KINDS = frozenset(
    {
        "Namespace",
        "ClusterRole",
        "ClusterRoleBinding",
        "CustomResourceDefinition",
        "PriorityClass",
        "StorageClass",
        "PersistentVolume",
        "IngressClass",
        "MutatingWebhookConfiguration",
        "ValidatingWebhookConfiguration",
        "APIService",
        "RuntimeClass",
        "ClusterIssuer",
    }
)
_NOT_OBJECTS = ("pulumi:providers:", "kubernetes:helm.sh/", "kubernetes:yaml", "kubernetes:kustomize")
# An exact chart version: semver without ranges or wildcards (`1.17.1`, `88.5.3`, `v2.9.0`).
PINNED_CHART_VERSION = re.compile(r"^v?\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$")


def is_kubernetes_object(type_token: str) -> bool:
    return type_token.startswith("kubernetes:") and not type_token.startswith(_NOT_OBJECTS)


def _is_workload(type_token: str) -> bool:
    return is_kubernetes_object(type_token) and type_token.rsplit(":", 1)[-1] in POD_SPEC_PATHS


def pod_spec(props: Mapping[str, Any]) -> Mapping[str, Any]:
    path = POD_SPEC_PATHS.get(str(props.get("kind")), "")
    spec = get(props, path, {}) if path else {}
    return spec if isinstance(spec, Mapping) else {}


def containers(props: Mapping[str, Any]) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """(label, container) for every container and init container of the workload's pod."""
    spec = pod_spec(props)
    for field, label in (("initContainers", "init container"), ("containers", "container")):
        for container in spec.get(field) or []:
            yield f"{label} {container.get('name', '?')}", container


def _requests_limits(props: Mapping[str, Any], _: ResourceValidationArgs) -> Iterator[str]:
    for label, container in containers(props):
        resources = container.get("resources") or {}
        missing = [f"requests.{r}" for r in ("cpu", "memory") if not get(resources, f"requests.{r}")]
        missing += [f"limits.{r}" for r in ("cpu", "memory") if not get(resources, f"limits.{r}")]
        if missing:
            yield f"{label}: resources lack {', '.join(missing)}"


def _no_secret_env(props: Mapping[str, Any], _: ResourceValidationArgs) -> Iterator[str]:
    """checkov CKV_K8S_35: a Secret in the environment leaks into child processes, crash dumps and
    `/proc/<pid>/environ`, and is never updated in a running container."""
    for label, container in containers(props):
        for variable in container.get("env") or []:
            if isinstance(variable, Mapping) and get(variable, "valueFrom.secretKeyRef"):
                yield f"{label}: env {variable.get('name', '?')} comes from a Secret"
        for source in container.get("envFrom") or []:
            if isinstance(source, Mapping) and source.get("secretRef"):
                yield f"{label}: envFrom imports Secret {get(source, 'secretRef.name') or '?'}"


def image_problem(image: Any) -> str | None:
    """Why `image` is not pinned, or None: a tag other than `latest`, or a digest."""
    if not isinstance(image, str) or not image.strip():
        return "has no image"
    if "@sha256:" in image:
        return None
    last = image.rsplit("/", 1)[-1]
    if ":" not in last:
        return f"image {image!r} has no tag"
    tag = last.rsplit(":", 1)[1]
    if not tag:
        return f"image {image!r} has an empty tag"
    if tag == "latest":
        return f"image {image!r} uses the mutable tag latest"
    return None


def _pinned_images(props: Mapping[str, Any], _: ResourceValidationArgs) -> Iterator[str]:
    for label, container in containers(props):
        problem = image_problem(container.get("image"))
        if problem:
            yield f"{label}: {problem}"


def _digest_images(props: Mapping[str, Any], _: ResourceValidationArgs) -> Iterator[str]:
    """The platform's own workloads run images by digest, with an explicit pull policy."""
    for label, container in containers(props):
        image = container.get("image")
        if not is_digest_reference(image):
            yield (
                f"{label}: image {image!r} is not pinned by digest (`<registry>/<repository>@sha256:<64 hex>`): "
                "a tag can be pushed again with other content"
            )
        policy = container.get("imagePullPolicy")
        if not policy:
            yield f"{label}: imagePullPolicy is not set (the default depends on the tag)"
        elif is_digest_reference(image) and policy != DIGEST_PULL_POLICY:
            yield f"{label}: imagePullPolicy is {policy!r}; a digest never changes, use {DIGEST_PULL_POLICY!r}"


def _security_context(props: Mapping[str, Any], container: Mapping[str, Any], key: str) -> Any:
    """A container's setting, falling back to the pod's securityContext (for the keys pods have)."""
    value = get(container, f"securityContext.{key}")
    return get(pod_spec(props), f"securityContext.{key}") if value is None else value


def _non_root(props: Mapping[str, Any], _: ResourceValidationArgs) -> Iterator[str]:
    for label, container in containers(props):
        if _security_context(props, container, "runAsUser") == 0:
            yield f"{label}: runAsUser is 0 (root)"
        elif _security_context(props, container, "runAsNonRoot") is not True:
            yield f"{label}: runAsNonRoot is not True on the container or the pod"


def _no_escalation(props: Mapping[str, Any], _: ResourceValidationArgs) -> Iterator[str]:
    for label, container in containers(props):
        value = get(container, "securityContext.allowPrivilegeEscalation")
        if value is not False:
            yield f"{label}: securityContext.allowPrivilegeEscalation is {value!r}, must be False"


def _no_privileged(props: Mapping[str, Any], _: ResourceValidationArgs) -> Iterator[str]:
    spec = pod_spec(props)
    for key in ("hostNetwork", "hostPID", "hostIPC"):
        if spec.get(key) is True:
            yield f"pod {key} is True"
    for label, container in containers(props):
        if get(container, "securityContext.privileged") is True:
            yield f"{label}: securityContext.privileged is True"
        added = get(container, "securityContext.capabilities.add") or []
        if "SYS_ADMIN" in added or "ALL" in added:
            yield f"{label}: adds capabilities {sorted(added)}"


NO_PROBES_ANNOTATION = "policy.mlops.io/no-probes"
"""On a workload: why its containers cannot be probed (e.g. a `pause` container holding a CSI mount)."""


def _probes(props: Mapping[str, Any], _: ResourceValidationArgs) -> Iterator[str]:
    if props.get("kind") not in SERVING_KINDS:
        return
    if str(get(props, "metadata.annotations", {}).get(NO_PROBES_ANNOTATION) or "").strip():
        return  # an explicit, reviewed exemption with its reason
    for container in pod_spec(props).get("containers") or []:
        missing = [p for p in ("readinessProbe", "livenessProbe") if not container.get(p)]
        if missing:
            yield f"container {container.get('name', '?')}: no {' and no '.join(missing)}"


def _namespace(props: Mapping[str, Any], args: ResourceValidationArgs) -> Iterator[str]:
    if args.resource_type in HELM_TYPES:
        namespace = props.get("namespace")
    elif props.get("kind") in CLUSTER_SCOPED_KINDS:
        return
    else:
        namespace = get(props, "metadata.namespace")
    if not namespace:
        yield "no namespace set: the object would land in the provider's default namespace"
    elif namespace == "default":
        yield "namespace is 'default'"


def _helm_pinned(props: Mapping[str, Any], _: ResourceValidationArgs) -> Iterator[str]:
    chart, version = str(props.get("chart") or ""), str(props.get("version") or "")
    oci = chart.startswith("oci://")
    if not version:
        yield f"chart {chart!r} has no version"
    elif not PINNED_CHART_VERSION.match(version):
        yield f"chart {chart!r} version {version!r} is not an exact version"
    if not oci and not get(props, "repositoryOpts.repo"):
        yield f"chart {chart!r} has no repositoryOpts.repo"


def _workloads_and_releases(type_token: str) -> bool:
    return type_token in HELM_TYPES or is_kubernetes_object(type_token)


POLICIES = [
    resource_policy(
        "k8s-requests-and-limits",
        "Every container declares CPU and memory requests and limits (checkov CKV_K8S_10, CKV_K8S_11, "
        "CKV_K8S_12, CKV_K8S_13).",
        severity=Severity.MEDIUM,
        remediation="Set resources.requests.cpu, resources.requests.memory, resources.limits.cpu and "
        "resources.limits.memory on every container (a CPU limit bounds what a runaway container takes from "
        "its node's neighbours).",
        types=_is_workload,
        check=_requests_limits,
        tags=("kubernetes", "capacity"),
    ),
    resource_policy(
        "k8s-no-secret-env",
        "No container takes a Secret through its environment (checkov CKV_K8S_35): secrets are mounted files.",
        severity=Severity.HIGH,
        remediation="Mount the secret (Key Vault CSI volume) and read the file: PGPASSFILE for PostgreSQL, a "
        "`*_FILE` variable where the program has one, or the launcher of layout/mlflow_server.py; never "
        "env[].valueFrom.secretKeyRef or envFrom[].secretRef.",
        types=_is_workload,
        check=_no_secret_env,
        tags=("kubernetes", "security"),
    ),
    resource_policy(
        "k8s-pinned-images",
        "Every container image is pinned: a tag other than latest, or a digest.",
        severity=Severity.HIGH,
        remediation="Use an image setting with an explicit version tag (or @sha256 digest); never latest.",
        types=_is_workload,
        check=_pinned_images,
        tags=("kubernetes", "change-control"),
    ),
    resource_policy(
        "k8s-image-digest",
        "The platform's own workloads run images by digest (`<registry>/<repository>@sha256:...`) with an "
        "explicit imagePullPolicy (IfNotPresent for a digest). Own workloads are every Pod, Deployment, Job, "
        "CronJob, ... the program declares itself; third-party images come from Helm charts, pinned by the "
        "chart version (helm-release-pinned).",
        severity=Severity.HIGH,
        remediation="Use a digest reference from `PlatformImages.refs` (or a `prebuiltImages` digest, or a "
        "third-party image with `@sha256:`) and set image_pull_policy=IfNotPresent.",
        types=_is_workload,
        check=_digest_images,
        tags=("kubernetes", "change-control", "supply-chain"),
    ),
    resource_policy(
        "k8s-run-as-non-root",
        "Containers run as a non-root user.",
        severity=Severity.HIGH,
        remediation="Set securityContext.runAsNonRoot=True (and a non-zero runAsUser) on the pod or container.",
        types=_is_workload,
        check=_non_root,
        tags=("kubernetes", "security"),
    ),
    resource_policy(
        "k8s-no-privilege-escalation",
        "Containers cannot gain privileges (allowPrivilegeEscalation is False).",
        severity=Severity.HIGH,
        remediation="Set securityContext.allowPrivilegeEscalation=False on every container.",
        types=_is_workload,
        check=_no_escalation,
        tags=("kubernetes", "security"),
    ),
    resource_policy(
        "k8s-no-privileged-or-host-namespaces",
        "No privileged containers, no added SYS_ADMIN/ALL capabilities, no host network, PID or IPC namespace.",
        severity=Severity.CRITICAL,
        remediation="Remove securityContext.privileged, hostNetwork, hostPID and hostIPC; drop capabilities.",
        types=_is_workload,
        check=_no_privileged,
        tags=("kubernetes", "security"),
    ),
    resource_policy(
        "k8s-probes",
        "Long-running containers (Deployments, StatefulSets, DaemonSets) have readiness and liveness probes.",
        severity=Severity.MEDIUM,
        remediation="Add readinessProbe and livenessProbe (e.g. httpGet on the health endpoint) to every container.",
        types=_is_workload,
        check=_probes,
        tags=("kubernetes", "availability"),
    ),
    resource_policy(
        "k8s-no-default-namespace",
        "Namespaced objects and Helm releases name a namespace other than default.",
        severity=Severity.MEDIUM,
        remediation="Set metadata.namespace (Helm: namespace) to the platform namespace from settings or "
        "layout/cluster_layout.py.",
        types=_workloads_and_releases,
        check=_namespace,
        tags=("kubernetes", "governance"),
    ),
    resource_policy(
        "helm-release-pinned",
        "Helm releases name an exact chart version and a chart repository.",
        severity=Severity.HIGH,
        remediation="Set version to the pinned chart version setting (e.g. 1.17.1) and "
        "repository_opts=RepositoryOptsArgs(repo=...).",
        types=HELM_TYPES,
        check=_helm_pinned,
        tags=("kubernetes", "helm", "change-control"),
    ),
]
