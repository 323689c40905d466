"""Benchmark: the offline preview of a stack against the floor of importing the SDKs it uses.

Both are measured in fresh interpreters, interleaved, several times, in the same run:
- preview: `python -m mlopsctl preview --stack <stack>` (evaluation, every policy, schema checks, report);
- import floor: a process that only imports every third-party SDK module the preview ends up
  loading (pulumi, pulumi-azure-native submodules, pulumi-kubernetes, pulumi-random,
  pulumi-policy, pydantic, PyYAML, jsonschema, kubernetes-validate, grpc, protobuf), the list
  taken from a preview run in this same invocation.

Usage: .venv/bin/python scripts/benchmark_preview.py [--stack prod] [--repeat 7]
Prints medians of wall time and of the children's CPU time (user + system) and their ratios;
exits 1 when the preview's CPU time is more than --max-ratio times the floor's.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SDK_PACKAGES = (
    "pulumi",
    "pulumi_azure_native",
    "pulumi_kubernetes",
    "pulumi_random",
    "pulumi_policy",
    "pydantic",
    "pydantic_core",
    "yaml",
    "jsonschema",
    "kubernetes_validate",
    "grpc",
    "google",
)

_LIST_MODULES = """
import contextlib, io, json, sys
from harness.cli import main
with contextlib.redirect_stdout(io.StringIO()):
    main(["preview", "--stack", sys.argv[1], "--registry-snapshot", sys.argv[3]])
packages = set(json.loads(sys.argv[2]))
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in packages)))
"""

_IMPORT_ONLY = """
import importlib, json, sys
for name in json.loads(sys.argv[1]):
    importlib.import_module(name)
"""


SNAPSHOT = str(ROOT / "examples" / "registry-snapshot.json")


def sdk_modules(stack: str) -> list[str]:
    """Every SDK module a preview of `stack` loads, from a preview run in a fresh interpreter."""
    result = subprocess.run(
        [sys.executable, "-c", _LIST_MODULES, stack, json.dumps(SDK_PACKAGES), SNAPSHOT],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    modules: list[str] = json.loads(result.stdout.strip().splitlines()[-1])
    return modules


@dataclass(frozen=True)
class Run:
    wall: float
    cpu: float
    """User + system CPU seconds of the child: robust when other work shares the machine."""


def timed(command: list[str]) -> Run:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    completed = subprocess.run(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False)
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if completed.returncode != 0:  # the committed stacks preview clean: anything else is not a full run
        raise RuntimeError(f"{command[:4]} failed: {completed.stderr.decode()[-500:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return Run(elapsed, cpu)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--stack", default="prod")
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--max-ratio", type=float, default=2.0)
    args = parser.parse_args()

    modules = sdk_modules(args.stack)
    preview = [sys.executable, "-m", "mlopsctl", "preview", "--stack", args.stack, "--registry-snapshot", SNAPSHOT]
    floor = [sys.executable, "-c", _IMPORT_ONLY, json.dumps(modules)]
    timed(preview)  # warm the file cache and bytecode once; not counted
    previews: list[Run] = []
    floors: list[Run] = []
    for _ in range(args.repeat):
        floors.append(timed(floor))
        previews.append(timed(preview))
    print(f"stack {args.stack}, {args.repeat} runs each, fresh interpreters, medians (load {_load()}):")
    ratios = {}
    for measure in ("wall", "cpu"):
        floor_values = [getattr(run, measure) for run in floors]
        preview_values = [getattr(run, measure) for run in previews]
        ratios[measure] = statistics.median(preview_values) / statistics.median(floor_values)
        print(f"  {measure:>4}  import floor ({len(modules)} SDK modules): {_stat(floor_values)}")
        print(f"  {measure:>4}  offline preview:                   {_stat(preview_values)}")
        print(f"  {measure:>4}  ratio: {ratios[measure]:.2f} (target <= {args.max_ratio:g})")
    # CPU time decides: wall time on a shared machine measures the neighbours too.
    return 0 if ratios["cpu"] <= args.max_ratio else 1


def _stat(values: list[float]) -> str:
    return f"{statistics.median(values):5.2f} s  (runs: {' '.join(f'{v:.2f}' for v in values)})"


def _load() -> str:
    return " ".join(f"{value:.1f}" for value in os.getloadavg())


if __name__ == "__main__":
    sys.exit(main())
