"""The mlopsctl image installs what its commands import at runtime, and no test or preview tooling.

The runtime imports are found by walking the source from the CLI's entry point
(tests/import_closure.py); the offline commands' imports, local to their functions in
mlopsctl/cli.py, are not part of the image.
"""

from __future__ import annotations

from layout.paths import REPO_ROOT
from tests.import_closure import installed_closure, pins, providers
from tests.import_closure import runtime_imports as _walk

REQUIREMENTS = REPO_ROOT / "requirements-mlopsctl.txt"
DOCKERFILE = REPO_ROOT / "images" / "mlopsctl" / "Dockerfile"
ENTRY = "mlopsctl.cli"
NOT_AT_RUNTIME = ("pytest", "hypothesis", "mypy", "ruff", "pulumi", "pulumi-policy", "kubernetes-validate")


def runtime_imports() -> tuple[set[str], set[str]]:
    """(local modules, third-party top-level modules) the image's commands can import."""
    return _walk(ENTRY, entry_module_level_only=True)


def test_the_walk_finds_the_runtime_imports() -> None:
    """The walk sees through function-local imports (uvicorn, mlflow), and not into the offline commands."""
    local, third_party = runtime_imports()
    assert {"mlflow", "uvicorn", "starlette", "requests", "yaml", "pydantic"} <= third_party
    assert {"mlopsctl.rollout_cli", "mlopsctl.webhook_cli", "rollout.registry_reader"} <= local
    assert "mlopsctl.mock_engine" not in local and "mlopsctl.preview" not in local


def test_image_requirements_cover_runtime_imports_and_nothing_for_tests() -> None:
    closure = installed_closure(pins(REQUIREMENTS))
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
