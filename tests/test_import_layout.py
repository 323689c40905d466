"""Imports flow one way (an AST walk of every module, function-local imports included).

entry points (__main__.py, models/__main__.py, the mlopsctl CLI, the offline harness) → layers →
components → pure packages, and among the pure packages by `PURE_RANK`: a pure module imports
its own package or a pure package of strictly lower rank, never one of equal or higher rank.
The CLI the image runs (mlopsctl/) imports nothing of the offline harness (harness/), which the
image does not copy; the harness runs the Pulumi programs by path and imports no component or layer.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PURE_RANK = {"layout": 0, "settings": 1, "observability": 1, "rollout": 2}
"""layout knows nothing above it; settings validate with layout's facts; rollout plans with settings,
layout and observability. settings and observability share a rank: neither may import the other."""
PULUMI = ("pulumi", "pulumi_kubernetes", "pulumi_azure_native", "pulumi_random", "pulumi_docker_build")
ABOVE_PURE = ("components", "layers", "mlopsctl", "harness", "policies", "models")
HARNESS = "harness"
CLI = "mlopsctl"


def _imports(path: Path) -> set[str]:
    """Top-level package of every import in the file (function-local imports included)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def _modules(package: str, root: Path = ROOT) -> list[Path]:
    return sorted((root / package).rglob("*.py"))


def pure_order_violations(root: Path = ROOT) -> list[str]:
    """`module imports package` for every import that breaks `PURE_RANK` or leaves the pure packages."""
    problems = []
    for package, rank in PURE_RANK.items():
        for module in _modules(package, root):
            for imported in sorted(_imports(module)):
                upward = imported in PURE_RANK and imported != package and PURE_RANK[imported] >= rank
                if upward or imported in ABOVE_PURE or imported in PULUMI:
                    problems.append(f"{module.relative_to(root)} imports {imported}")
    return problems


def forbidden_imports(packages: Iterable[str], forbidden: set[str], root: Path = ROOT) -> list[str]:
    return [
        f"{module.relative_to(root)} imports {sorted(bad)}"
        for package in packages
        for module in _modules(package, root)
        if (bad := _imports(module) & forbidden)
    ]


def test_every_pure_package_has_a_rank() -> None:
    top_level = {path.parent.name for path in ROOT.glob("*/__init__.py")}
    assert set(PURE_RANK) <= top_level
    assert top_level - set(PURE_RANK) <= {*ABOVE_PURE, "tests", "benchmarks", "scripts"}, sorted(top_level)


def test_pure_packages_import_downward_only_and_nothing_above_them() -> None:
    assert all(_modules(package) for package in PURE_RANK)
    assert pure_order_violations() == []


def test_components_import_no_layer_or_entry_point() -> None:
    assert forbidden_imports(["components"], {"layers", CLI, HARNESS, "models"}) == []


def test_the_cli_of_the_image_imports_nothing_of_the_offline_harness() -> None:
    assert forbidden_imports([CLI], {HARNESS, "components", "layers", "policies", *PULUMI}) == []


def test_the_cli_names_the_harness_only_in_its_offline_door() -> None:
    """The one reference is the module name `mlopsctl <offline command>` hands its command line to."""
    from mlopsctl import cli  # noqa: PLC0415 - the value the walk must find

    mentions = []
    for module in _modules(CLI):
        for node in ast.walk(ast.parse(module.read_text())):
            text = node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else ""
            if text == HARNESS or text.startswith(HARNESS + "."):
                mentions.append((module.name, text))
    assert mentions == [("cli.py", cli.OFFLINE_ENTRY)]


def test_the_harness_imports_no_component_or_layer() -> None:
    assert forbidden_imports([HARNESS], {"components", "layers", "models"}) == []


def test_the_walk_sees_violations(tmp_path: Path) -> None:
    """The checks can fail: a function-local upward import, an equal-rank import, a harness import."""
    for package in PURE_RANK:
        (tmp_path / package).mkdir()
    (tmp_path / "layout" / "bad.py").write_text("def f():\n    from settings import model\n    return model\n")
    (tmp_path / "settings" / "bad.py").write_text("import observability.alerts\nimport pulumi\n")
    (tmp_path / "rollout" / "fine.py").write_text("from layout import paths\nfrom settings import model\n")
    assert pure_order_violations(tmp_path) == [
        "layout/bad.py imports settings",
        "settings/bad.py imports observability",
        "settings/bad.py imports pulumi",
    ]
    (tmp_path / CLI).mkdir()
    (tmp_path / CLI / "cli.py").write_text("def preview():\n    from harness.preview import check\n    return check\n")
    assert forbidden_imports([CLI], {HARNESS}, tmp_path) == ["mlopsctl/cli.py imports ['harness']"]


@pytest.mark.parametrize("package", [*PURE_RANK, CLI, HARNESS])
def test_no_relative_imports(package: str) -> None:
    """The walk reads absolute imports; a relative one would slip past it."""
    for module in _modules(package):
        tree = ast.parse(module.read_text())
        relative = [node.lineno for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.level]
        assert not relative, f"{module.relative_to(ROOT)}: relative import on lines {relative}"
