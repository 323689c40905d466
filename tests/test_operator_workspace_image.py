"""The operator's workspace image (images/operator-workspace) is what the models project needs.

PKO v2.9 runs the image's container as uid/gid 1000 (restricted profile) with the agent it copies
in, and the agent has the `pulumi` CLI on PATH run `pulumi install` in the checkout's `models/`.
The models project has no `virtualenv` option, so that install uses the `python3` on PATH: the
image's venv must come first there and already hold models/requirements.txt, for the Python pin,
with the CLI and the Kubernetes plugin of the SDK pins.
"""

from __future__ import annotations

import re

import yaml

from layout.images import image_by_name
from layout.paths import MODELS_DIR, REPO_ROOT
from tests.import_closure import pins

IMAGE = image_by_name("operator-workspace")
DOCKERFILE = (REPO_ROOT / IMAGE.dockerfile).read_text()
VENV = "/opt/models-venv"


def _arg(name: str) -> str:
    match = re.search(rf"^ARG {name}=(\S+)$", DOCKERFILE, flags=re.M)
    assert match, f"no ARG {name}"
    return match[1]


def test_the_cli_and_plugin_are_the_sdk_pins() -> None:
    requirements = pins(MODELS_DIR / "requirements.txt")
    assert _arg("PULUMI_VERSION") == requirements["pulumi"]
    assert _arg("KUBERNETES_PLUGIN_VERSION") == requirements["pulumi-kubernetes"]
    assert IMAGE.tag.startswith(requirements["pulumi"] + "-")
    assert "pulumi plugin install resource kubernetes ${KUBERNETES_PLUGIN_VERSION}" in DOCKERFILE


def test_python_is_the_project_pin_from_a_digest_pinned_base() -> None:
    froms = re.findall(r"^FROM (\S+)", DOCKERFILE, flags=re.M)
    assert len(froms) == 2 and len(set(froms)) == 1
    assert froms[0].startswith("python:3.11.") and "@sha256:" in froms[0]
    assert 'python_version = "3.11"' in (REPO_ROOT / "pyproject.toml").read_text()


def test_the_venv_first_on_path_holds_exactly_the_models_requirements() -> None:
    installs = [line.strip() for line in DOCKERFILE.splitlines() if "pip install" in line and not line.startswith("#")]
    assert installs == [
        f"&& {VENV}/bin/python -m pip install --no-cache-dir --upgrade pip setuptools wheel \\",
        f"&& {VENV}/bin/python -m pip install --no-cache-dir -r /tmp/models/requirements.txt "
        "-c /tmp/models/constraints.txt \\",
    ]
    assert "COPY models/requirements.txt constraints.txt /tmp/models/" in DOCKERFILE
    path = re.search(r"PATH=(\S+)", DOCKERFILE)
    assert path and path[1].split(":")[0] == f"{VENV}/bin"
    assert f"PULUMI_PYTHON_CMD={VENV}/bin/python" in DOCKERFILE
    assert f"chown -R 1000:1000 {VENV}" in DOCKERFILE  # a changed pin installs at workspace start
    assert "USER 1000:1000" in DOCKERFILE and "--uid 1000" in DOCKERFILE  # PKO's restricted uid; its home


def test_the_models_project_uses_the_python_on_path() -> None:
    """A `virtualenv` option would make `pulumi install` build a fresh venv in the workspace's emptyDir."""
    options = yaml.safe_load((MODELS_DIR / "Pulumi.yaml").read_text())["runtime"]["options"]
    assert options == {"toolchain": "pip"}
