"""What a piece of this repository imports at run time, and which distributions that takes.

Shared by the image and project requirement tests (tests/test_mlopsctl_image.py,
tests/test_pulumi_projects.py): the imports are found by walking the source from an entry point
(function-local imports included, `if TYPE_CHECKING:` blocks left out), following the
repository's own packages; distributions are resolved with the metadata of the test environment,
which installs the same pins (constraints.txt).
"""

from __future__ import annotations

import ast
import importlib.metadata
import re
import sys
from collections.abc import Iterable
from pathlib import Path

from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from layout.paths import REPO_ROOT

LOCAL = ("mlopsctl", "rollout", "settings", "layout", "observability", "components", "layers", "policies", "harness")
"""The repository's own top-level packages (what the walk follows instead of resolving)."""


def module_file(module: str) -> Path | None:
    base = REPO_ROOT.joinpath(*module.split("."))
    for candidate in (base / "__init__.py", base.with_suffix(".py")):
        if candidate.is_file():
            return candidate
    return None


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def imported(module: str, path: Path, *, module_level_only: bool) -> set[str]:
    """Modules (and `from` targets) `module` imports."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for statement in node.orelse:
                visit(statement)
            return
        if module_level_only and isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            return
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            parts = package.split(".")
            base = ".".join(parts[: len(parts) - node.level + 1]) if node.level else ""
            target = ".".join(p for p in (base, node.module or "") if p)
            found.add(target)
            found.update(f"{target}.{alias.name}" for alias in node.names)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(path.read_text(), str(path)))
    return found


def runtime_imports(
    entry: str | Path, *, entry_module_level_only: bool = False, local: Iterable[str] = LOCAL
) -> tuple[set[str], set[str]]:
    """(local modules, third-party top-level modules) that running `entry` can import.

    `entry` is a module of the repository (`mlopsctl.cli`) or a program file (`models/__main__.py`,
    run as a script: its relative imports are not followed). With `entry_module_level_only`, the
    entry's own function bodies are left out (commands that are not part of what is measured).
    """
    local = tuple(local)
    local_seen: set[str] = set()
    third_party: set[str] = set()
    if isinstance(entry, Path):
        pending = sorted(imported("__main__", entry, module_level_only=entry_module_level_only))
    else:
        pending = [entry]
    while pending:
        module = pending.pop()
        path = module_file(module)
        top = module.split(".")[0]
        if top not in local:
            if top and top not in sys.stdlib_module_names and top != "__future__":
                third_party.add(top)
            continue
        if module in local_seen or path is None:
            continue
        local_seen.add(module)
        parts = module.split(".")
        pending += [".".join(parts[:i]) for i in range(1, len(parts))]  # parent packages run too
        pending += sorted(imported(module, path, module_level_only=entry_module_level_only and module == entry))
    return local_seen, third_party


def pins(path: Path) -> dict[str, str]:
    """`name==version` lines of a requirements file (canonical names); anything else fails."""
    found: dict[str, str] = {}
    for raw in path.read_text().splitlines():
        line = raw.split("#")[0].strip()
        if line:
            match = re.fullmatch(r"([A-Za-z0-9_.-]+)==([^\s;]+)", line)
            assert match, f"{path.name}: not pinned with ==: {line}"
            found[canonicalize_name(match[1])] = match[2]
    return found


def installed_closure(names: Iterable[str]) -> set[str]:
    """The distributions `names` pull in (their requirements without extras, recursively)."""
    environment = {k: str(v) for k, v in default_environment().items()}
    seen: set[str] = set()
    pending = list(names)
    while pending:
        name = canonicalize_name(pending.pop())
        if name in seen:
            continue
        seen.add(name)
        for text in importlib.metadata.requires(name) or []:
            requirement = Requirement(text)
            if requirement.marker is None or requirement.marker.evaluate({**environment, "extra": ""}):
                pending.append(requirement.name)
    return seen


def providers(module: str) -> set[str]:
    """The installed distributions that provide top-level module `module` (canonical names)."""
    return {canonicalize_name(d) for d in importlib.metadata.packages_distributions().get(module, [])}
