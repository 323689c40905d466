"""The images the platform builds itself, and what a digest reference is. Pure: no Pulumi import.

Adding an image is one line in `PLATFORM_IMAGES`: the program (components/azure/platform_images.py)
builds every entry with pulumi-docker-build and pushes it to the stack's container registry, and
the pods reference it as `<registry>/<repository>@sha256:<digest>` from the build's output. A stack
may instead pin a prebuilt image by digest (setting `prebuiltImages.<name>`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final


@dataclass(frozen=True)
class PlatformImage:
    """One image built from this repository.

    `context` and `dockerfile` are relative to the repository root (the Pulumi project directory,
    the program's working directory), so the state records the same paths on every machine.
    `tag` is for people reading the registry; pods never use it, they use the digest.
    """

    name: str
    repository: str
    context: str
    dockerfile: str
    tag: str


PLATFORM_IMAGES: Final[tuple[PlatformImage, ...]] = (
    PlatformImage("mlflow", "mlops/mlflow-server", "images/mlflow", "images/mlflow/Dockerfile", "3.17.2-1"),
    PlatformImage("mlopsctl", "mlops/mlopsctl", ".", "images/mlopsctl/Dockerfile", "0.1.0"),
    # MLServer 1.7.1 + mlserver-mlflow + MLflow 3.17.2: the predictor server for MLFLOW_SERVER on v2.
    PlatformImage(
        "model-server", "mlops/model-server", "images/model-server", "images/model-server/Dockerfile", "1.7.1-1"
    ),
    # rclone 1.75.2 (`rclone copy`, workload identity): the init container of every graph node.
    PlatformImage(
        "storage-initializer",
        "mlops/storage-initializer",
        "images/storage-initializer",
        "images/storage-initializer/Dockerfile",
        "1.75.2-1",
    ),
    # The operator's workspace for the models project: Pulumi CLI 3.272.0, Python 3.11 and
    # models/requirements.txt preinstalled (components/cluster/models_stack.py, the Stack).
    PlatformImage(
        "operator-workspace", "mlops/operator-workspace", ".", "images/operator-workspace/Dockerfile", "3.272.0-1"
    ),
)
"""Every image the platform builds: name (the `prebuiltImages` key) → repository, context, Dockerfile."""

UPSTREAM_IMAGES: Final[dict[str, str]] = {
    # The 3.10 multi-arch index; holds the Key Vault CSI mount of the Grafana secret-sync pod.
    "pause": "registry.k8s.io/pause:3.10@sha256:ee6521f290b2168b6e0935a181d4cff9be1ac3f505666ef0e3c98fae8199917a",
}
"""Upstream images the platform's own pods run unchanged, reviewed and pinned by digest here."""

IMAGE_NAMES: Final[frozenset[str]] = frozenset(image.name for image in PLATFORM_IMAGES)

BUILD_PLATFORM: Final = "linux/amd64"
"""The AKS node pools run x86-64 VM sizes (`Standard_D*ds_v5`)."""

DIGEST_PULL_POLICY: Final = "IfNotPresent"
"""A digest names immutable content: a node that has it never needs to ask the registry again."""

_DIGEST_REFERENCE = re.compile(
    # A registry host is a name with a dot, or localhost, optionally with a port (Docker's rule).
    r"^(?P<registry>([a-z0-9-]+(\.[a-z0-9-]+)+|localhost)(:[0-9]+)?)/"
    r"(?P<repository>[a-z0-9]+([._/-][a-z0-9]+)*)(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?"
    r"@(?P<digest>sha256:[a-f0-9]{64})$"
)


def is_digest_reference(image: object) -> bool:
    """`registry/repository[:tag]@sha256:<64 hex>`: a registry host and an immutable digest."""
    return isinstance(image, str) and _DIGEST_REFERENCE.fullmatch(image) is not None


def digest_reference(registry: str, repository: str, digest: str) -> str:
    """`<registry>/<repository>@<digest>`, the form every platform pod uses."""
    reference = f"{registry}/{repository}@{digest}"
    if not is_digest_reference(reference):
        raise ValueError(f"not a digest reference: {reference!r}")
    return reference


def image_by_name(name: str) -> PlatformImage:
    for image in PLATFORM_IMAGES:
        if image.name == name:
            return image
    raise KeyError(f"no platform image {name!r}; known: {sorted(IMAGE_NAMES)}")
