"""The mlopsctl image installs what its commands import at runtime, and no test or preview tooling.

The runtime imports are found by walking the source (function-local imports included, `if
TYPE_CHECKING:` blocks left out) from the CLI's entry point. The offline commands live in the
harness (harness/), which the image does not copy: in a tree built from the Dockerfile's COPY lines
they exit 2 in one line, and the runtime commands work. Distributions are resolved with the
metadata of the test environment, which installs the same pins (constraints.txt).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from layout.paths import REPO_ROOT
from tests.import_closure import installed_closure, pins, providers
from tests.import_closure import runtime_imports as _walk

REQUIREMENTS = REPO_ROOT / "requirements-mlopsctl.txt"
DOCKERFILE = REPO_ROOT / "images" / "mlopsctl" / "Dockerfile"
ENTRY = "mlopsctl.cli"
NOT_AT_RUNTIME = ("pytest", "hypothesis", "mypy", "ruff", "pulumi", "pulumi-policy", "kubernetes-validate")


def runtime_imports() -> tuple[set[str], set[str]]:
    """(local modules, third-party top-level modules) the image's commands can import."""
    return _walk(ENTRY)


def test_the_walk_finds_the_runtime_imports() -> None:
    """The walk sees through function-local imports (uvicorn, mlflow), and never reaches the harness."""
    local, third_party = runtime_imports()
    assert {"mlflow", "uvicorn", "starlette", "requests", "yaml", "pydantic"} <= third_party
    assert {"mlopsctl.rollout_cli", "mlopsctl.webhook_cli", "rollout.registry_reader"} <= local
    assert not {module for module in local if module.split(".")[0] in ("harness", "components", "layers", "policies")}
    assert not {"pulumi", "pulumi_policy", "kubernetes_validate", "jsonschema"} & third_party


def test_image_requirements_cover_runtime_imports_and_nothing_for_tests() -> None:
    closure = installed_closure(set(pins(REQUIREMENTS)))
    _, third_party = runtime_imports()
    for module in sorted(third_party):
        provided_by = providers(module)
        assert provided_by & closure, f"`import {module}` at runtime: no distribution of {REQUIREMENTS.name} has it"
    assert not closure & set(NOT_AT_RUNTIME), sorted(closure & set(NOT_AT_RUNTIME))


def test_image_requirements_are_the_constrained_pins() -> None:
    constraints = pins(REPO_ROOT / "constraints.txt")
    for name, version in pins(REQUIREMENTS).items():
        assert constraints.get(name) == version, f"{name}=={version} vs constraints.txt {constraints.get(name)}"


def test_dockerfile_installs_only_the_runtime_requirements_and_copies_the_runtime_code() -> None:
    dockerfile = DOCKERFILE.read_text()
    installs = [line for line in dockerfile.splitlines() if "pip install" in line]
    assert installs == ["RUN pip install -r requirements-mlopsctl.txt -c constraints.txt \\"], installs
    assert "requirements-dev.txt" not in dockerfile and "requirements.txt " not in dockerfile
    copied = {line.split()[1].rstrip("/") for line in dockerfile.splitlines() if line.startswith("COPY ")}
    local, _ = runtime_imports()
    assert {module.split(".")[0] for module in local} <= copied
    assert 'ENTRYPOINT ["python", "-m", "mlopsctl"]' in dockerfile
    assert "PYTHONPATH=/opt/mlops-platform" in dockerfile and "WORKDIR /opt/mlops-platform" in dockerfile


def _copied_tree(target: Path) -> None:
    """What the Dockerfile's COPY lines put in the image's working directory (sources from the repository)."""
    for line in DOCKERFILE.read_text().splitlines():
        if not line.startswith("COPY "):
            continue
        *sources, destination = line.split()[1:]
        for pattern in sources:
            for source in sorted(REPO_ROOT.glob(pattern.rstrip("/"))):
                if source.is_dir():
                    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
                    shutil.copytree(source, target / destination, ignore=ignore, dirs_exist_ok=True)
                else:
                    (target / destination).mkdir(parents=True, exist_ok=True)
                    shutil.copy2(source, target / destination / source.name)


def _run_in(tree: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mlopsctl", *args],
        cwd=tree,
        env={"PYTHONPATH": str(tree), "PATH": "/usr/bin:/bin", "HOME": str(tree)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_image_tree_has_no_harness_and_runs_the_runtime_commands(tmp_path: Path) -> None:
    """In a tree of exactly what the image copies, `preview` says where it lives; `rollout` runs."""
    _copied_tree(tmp_path)
    assert (tmp_path / "mlopsctl" / "cli.py").is_file() and (tmp_path / "models" / "Pulumi.dev.yaml").is_file()
    assert not (tmp_path / "harness").exists() and not (tmp_path / "components").exists()
    offline = _run_in(tmp_path, "preview", "--stack", "dev")
    assert offline.returncode == 2, offline.stderr
    assert offline.stderr == (
        "mlopsctl: preview is an offline command of the repository checkout (package harness, not installed here)\n"
    )
    runtime = _run_in(tmp_path, "rollout", "--help")
    assert runtime.returncode == 0, runtime.stderr
    assert "advance" in runtime.stdout


def test_the_build_context_admits_no_harness() -> None:
    """.dockerignore lets in only what the Dockerfile copies: the harness is not in the context."""
    admitted = [
        line[1:].rstrip("/") for line in (REPO_ROOT / ".dockerignore").read_text().splitlines() if line.startswith("!")
    ]
    assert "mlopsctl" in admitted
    assert not [
        entry for entry in admitted if entry.split("/")[0] in ("harness", "components", "layers", "policies", "tests")
    ]
