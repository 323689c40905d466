"""Each Pulumi project runs from its own requirements.txt, as `pulumi install` sets it up.

What runs before the program (pulumi/pulumi `sdk/python/cmd/pulumi-language-python/main.go`,
`sdk/python/toolchain/pip.go`): with `toolchain: pip`, `pulumi install` (the first `up`, the
operator's workspace) creates the venv at the `virtualenv` option (relative to the project
directory; none: the `python3` on PATH is used as it is) and runs `python -m pip install --upgrade
pip setuptools wheel`, then `python -m pip install -r requirements.txt` in the project directory.
Nothing else is installed: not requirements-dev.txt, not constraints.txt. A `typechecker` option
then runs `python -m <typechecker>` before every preview and update and fails when that package is
not installed. So a project's runtime options and its program's imports must be covered by its own
requirements.txt; the slow test builds that environment for real and runs the program in it under
the mock engine.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from packaging.utils import canonicalize_name

from harness.mock_engine import Evaluation
from layout.paths import MODELS_DIR, REPO_ROOT
from tests.import_closure import installed_closure, pins, providers, runtime_imports


@dataclass(frozen=True)
class Project:
    name: str
    directory: Path

    @property
    def options(self) -> dict[str, Any]:
        document = yaml.safe_load((self.directory / "Pulumi.yaml").read_text())
        assert document["runtime"]["name"] == "python", self.name
        options = document["runtime"].get("options") or {}
        assert isinstance(options, dict)
        return options

    @property
    def requirements(self) -> Path:
        return self.directory / "requirements.txt"

    @property
    def program(self) -> Path:
        return self.directory / "__main__.py"


PROJECTS = (Project("platform", REPO_ROOT), Project("models", MODELS_DIR))

TYPECHECKER_PACKAGES = {"mypy": "mypy", "pyright": "pyright"}
"""What `runtime.options.typechecker` runs (`python -m <it>`), by the distribution that provides it."""
TOOLCHAINS = {"pip": None, "poetry": "poetry", "uv": "uv"}
"""`runtime.options.toolchain` → the tool it needs beside Python (pip comes with every venv)."""
LANGUAGE_HOST_OPTIONS = frozenset({"toolchain", "virtualenv", "typechecker"})


def runtime_option_problems(options: dict[str, Any], installed: set[str]) -> list[str]:
    """What the language host would need for `options` that `installed` (distributions) lacks.

    The projects install with pip from requirements.txt; poetry and uv read other files
    (pyproject.toml, a lock file) and are programs beside Python, so they are problems too.
    """
    problems = [f"unknown runtime option {key!r}" for key in sorted(set(options) - LANGUAGE_HOST_OPTIONS)]
    toolchain = options.get("toolchain", "pip")
    if toolchain not in TOOLCHAINS:
        problems.append(f"toolchain {toolchain!r} is not one the language host knows ({sorted(TOOLCHAINS)})")
    elif TOOLCHAINS[toolchain] is not None:
        problems.append(f"toolchain {toolchain!r} needs {TOOLCHAINS[toolchain]}, which requirements.txt cannot provide")
    checker = options.get("typechecker")
    if checker is not None:
        package = TYPECHECKER_PACKAGES.get(str(checker))
        if package is None:
            problems.append(f"typechecker {checker!r} is not one the language host knows")
        elif canonicalize_name(package) not in installed:
            problems.append(f"typechecker {checker!r} needs {package}, which requirements.txt does not install")
    return problems


def test_an_option_needing_a_package_requirements_lack_is_a_problem() -> None:
    """The check itself can fail: the options the issue found are reported, fixed ones are not."""
    installed = installed_closure(pins(REPO_ROOT / "requirements.txt"))
    assert runtime_option_problems({"toolchain": "pip", "typechecker": "mypy"}, installed) == [
        "typechecker 'mypy' needs mypy, which requirements.txt does not install"
    ]
    assert runtime_option_problems({"typechecker": "mypy"}, installed | {"mypy"}) == []
    assert runtime_option_problems({"toolchain": "uv", "virtualenv": ".venv"}, installed) == [
        "toolchain 'uv' needs uv, which requirements.txt cannot provide"
    ]
    assert runtime_option_problems({"typecheck": "mypy"}, installed) == ["unknown runtime option 'typecheck'"]


@pytest.mark.parametrize("project", PROJECTS, ids=lambda p: p.name)
def test_runtime_options_need_nothing_requirements_do_not_install(project: Project) -> None:
    installed = installed_closure(pins(project.requirements))
    assert runtime_option_problems(project.options, installed) == []
    assert "typechecker" not in project.options, "mypy --strict runs in CI, not before every reconcile"


@pytest.mark.parametrize("project", PROJECTS, ids=lambda p: p.name)
def test_requirements_cover_the_program_imports_and_nothing_else(project: Project) -> None:
    """Every third-party module the program can import comes from its requirements; every line is used."""
    listed = pins(project.requirements)
    closure = installed_closure(listed)
    _, third_party = runtime_imports(project.program)
    assert third_party, "the walk found no third-party import: it is broken"
    for module in sorted(third_party):
        assert providers(module) & closure, f"{project.name}: `import {module}` is in no distribution it lists"
    imported_from = set().union(*(providers(module) for module in third_party))
    unneeded = sorted(set(listed) - imported_from)
    assert not unneeded, f"{project.name}: requirements.txt lists {unneeded}, which the program never imports"


@pytest.mark.parametrize("project", PROJECTS, ids=lambda p: p.name)
def test_requirements_are_the_constrained_pins(project: Project) -> None:
    constraints = pins(REPO_ROOT / "constraints.txt")
    for name, version in pins(project.requirements).items():
        assert constraints.get(name) == version, f"{name}=={version} vs constraints.txt {constraints.get(name)}"


def test_the_models_program_does_not_import_the_azure_provider() -> None:
    """The walk follows models/__main__.py through the layers: minimal means no azure-native."""
    local, third_party = runtime_imports(MODELS_DIR / "__main__.py")
    assert {"layers.models", "components.serving", "rollout.source", "settings"} <= local
    assert "pulumi_azure_native" not in third_party and "mlflow" not in third_party
    assert third_party == {"pulumi", "pulumi_kubernetes", "pydantic", "yaml"}


# --- the real thing: a venv from requirements.txt alone, the program run in it -------------------

HARNESS = "harness.mock_engine"
RUNNER = textwrap.dedent(
    """
    import json, sys
    from pathlib import Path
    repo, project, stack = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
    sys.path.insert(0, str(repo))  # the harness (and, for the platform, the program's own packages)
    from harness.mock_engine import evaluate
    evaluation = evaluate(stack, project_dir=project)
    print(json.dumps({
        "error": None if evaluation.error is None else repr(evaluation.error),
        "urns": sorted(r.urn for r in evaluation.resources),
        "python": sys.version.split()[0],
        "pulumi": __import__("pulumi").__file__,
    }))
    """
)


def _lone_copy(destination: Path) -> Path:
    """The repository's files as a clone has them (tracked and new, not ignored: no .venv)."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=REPO_ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split("\0")
    for name in filter(None, listed):
        source = REPO_ROOT / name
        if source.is_file():
            target = destination / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    return destination


def _pulumi_install(project_dir: Path, virtualenv: Path, environ: dict[str, str]) -> None:
    """`pulumi install` with `toolchain: pip` (sdk/python/toolchain/pip.go `InstallDependencies`).

    The same commands, plus `--no-compile`: what is installed is the same, only the byte-code of
    the ~20k modules of pulumi-azure-native is not written ahead (the run compiles what it imports).
    """
    subprocess.run([sys.executable, "-m", "venv", str(virtualenv)], check=True, env=environ)
    python = str(virtualenv / "bin" / "python")
    for args in (["--upgrade", "pip", "setuptools", "wheel"], ["-r", "requirements.txt"]):
        subprocess.run(
            [python, "-m", "pip", "install", "--quiet", "--no-compile", *args], cwd=project_dir, check=True, env=environ
        )


@pytest.mark.slow
@pytest.mark.parametrize("project", PROJECTS, ids=lambda p: p.name)
def test_the_program_runs_in_the_environment_pulumi_install_builds(
    project: Project,
    tmp_path: Path,
    evaluations: dict[str, Evaluation],
    models_evaluations: dict[str, Evaluation],
) -> None:
    """A venv from the project's requirements.txt alone runs the program to the same resources.

    The venv is where the language host would look: `<project>/<virtualenv>` in a copy of the
    repository, or, without a `virtualenv` option (the models project), a venv first on PATH as
    in the operator's workspace image. pip's own cache is used (downloads are not the point).
    The mock-engine harness runs in the same venv; it is first checked to import nothing the
    program's requirements do not bring, so an import error can only be the program's.
    """
    installed = installed_closure(pins(project.requirements))
    _, harness_imports = runtime_imports(HARNESS)
    for module in sorted(harness_imports):
        assert providers(module) & installed, f"the harness needs `{module}`, which {project.name} does not install"

    repo = _lone_copy(tmp_path / "clone")
    project_dir = repo / project.directory.relative_to(REPO_ROOT)
    option = project.options.get("virtualenv")
    virtualenv = project_dir / option if option else tmp_path / "path-python"
    environ = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME")}
    environ["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    _pulumi_install(project_dir, virtualenv, environ)
    assert (virtualenv / "bin" / "python").is_file()

    frozen = subprocess.run(
        [str(virtualenv / "bin" / "python"), "-m", "pip", "list", "--format", "json"],
        check=True,
        capture_output=True,
        text=True,
        env=environ,
    ).stdout
    present = {canonicalize_name(row["name"]) for row in json.loads(frozen)}
    assert "mypy" not in present and "pytest" not in present, "a test tool reached the project's venv"
    if project.name == "models":
        assert "pulumi-azure-native" not in present

    expected = (models_evaluations if project.name == "models" else evaluations)["dev"]
    run = subprocess.run(
        [str(virtualenv / "bin" / "python"), "-I", "-c", RUNNER, str(repo), str(project_dir), "dev"],
        cwd=project_dir,
        check=False,
        capture_output=True,
        text=True,
        env=environ,
        timeout=600,
    )
    assert run.returncode == 0, run.stderr[-4000:]
    result = json.loads(run.stdout.splitlines()[-1])
    assert result["error"] is None, result["error"]
    assert Path(result["pulumi"]).is_relative_to(virtualenv), result["pulumi"]
    assert result["urns"] == sorted(r.urn for r in expected.resources)
