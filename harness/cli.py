"""The offline commands of `mlopsctl`: preview, platform-outputs, config-reference.

`python -m mlopsctl preview ...` (mlopsctl/cli.py hands offline command lines here) and `python -m
harness preview ...` are the same command. They run the Pulumi program under the mock engine with
the policy pack and the schema checks, or regenerate the files derived from the program; none of
it is in the mlopsctl image.

Exit codes (mlopsctl/exit_codes.py): 0 done; 1 the program or a check failed (a mandatory policy
violation, an invalid Kubernetes object or Helm release); 2 usage or configuration error, with a
one-line reason on stderr (a settings error lists every bad key on the lines after it).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

import yaml

from harness import config_reference
from harness.mock_engine import Evaluation, evaluate, platform_outputs_example, stack_config
from harness.policy_check import load_pack_config
from harness.preview import check, render_json, render_text
from harness.schema_validation import check_upstream_dir, upstream_dir_from_env
from layout.paths import MODELS_DIR, REPO_ROOT
from mlopsctl.cli import OFFLINE_COMMANDS
from mlopsctl.exit_codes import EXIT_FAILED, EXIT_OK, EXIT_USAGE, OneLineParser
from settings import SettingsError
from settings.stack_file import engine_config_from_stack_file

PROJECT_DIRS = {"platform": REPO_ROOT, "models": MODELS_DIR}

PULUMI_PROJECT_HEADER = {
    "name": "mlops-platform",
    "description": "MLflow tracking/registry, Seldon Core serving and model rollouts on Azure (AKS), per environment.",
    # No `typechecker`: Pulumi's language host would run `python -m mypy` on the program before every
    # preview and update, and fail when mypy is not in the venv `pulumi install` builds from
    # requirements.txt. mypy --strict runs in `make typecheck` (CI) instead, once per change.
    "runtime": {"name": "python", "options": {"toolchain": "pip", "virtualenv": ".venv"}},
    # Every preview and up refreshes first: the credential keeper (pulumiverse-time `Rotating`)
    # rotates only when a read sees that its rotation time has passed.
    "options": {"refresh": "always"},
}


def _stacks(project_dir: Path) -> list[str]:
    return sorted(p.name[len("Pulumi.") : -len(".yaml")] for p in project_dir.glob("Pulumi.*.yaml"))


class _UsageError(Exception):
    pass


def _preview_config(args: argparse.Namespace) -> tuple[dict[str, str], list[str]]:
    """The stack configuration to preview, or a usage error naming what is missing."""

    if args.registry_snapshot is not None and not args.registry_snapshot.is_file():
        raise _UsageError(f"no registry snapshot file {args.registry_snapshot}")
    args.upstream_schemas = args.upstream_schemas or upstream_dir_from_env()
    if args.upstream_schemas is not None:
        try:
            check_upstream_dir(args.upstream_schemas)
        except ValueError as error:
            raise _UsageError(str(error)) from error
    if args.stack_file is not None:
        if not args.stack_file.is_file():
            raise _UsageError(f"no stack file {args.stack_file}")
        return engine_config_from_stack_file(args.stack_file)
    project_dir = PROJECT_DIRS[args.project]
    stacks = _stacks(project_dir)
    if args.stack not in stacks:
        raise _UsageError(f"no {args.project} stack {args.stack!r}; stack files present: {', '.join(stacks)}")
    if args.project == "models":
        outputs = args.platform_outputs or platform_outputs_example(args.stack)
        if not outputs.is_file():
            raise _UsageError(f"no platform outputs file {outputs}")
    return stack_config(args.stack, project_dir)


def _preview(args: argparse.Namespace) -> int:

    try:
        config, secret_keys = _preview_config(args)
    except _UsageError as error:
        print(f"mlopsctl: {error}", file=sys.stderr)
        return EXIT_USAGE
    platform_outputs = None
    if args.project == "models":
        platform_outputs = json.loads((args.platform_outputs or platform_outputs_example(args.stack)).read_text())
    evaluation = evaluate(
        args.stack,
        config,
        secret_keys,
        project_dir=PROJECT_DIRS[args.project],
        registry_snapshot=args.registry_snapshot,
        platform_outputs=platform_outputs,
    )
    if isinstance(evaluation.error, SettingsError):
        print(f"mlopsctl: stack {args.stack}: {evaluation.error}", file=sys.stderr)
        return EXIT_USAGE
    if evaluation.error is not None:
        print(f"mlopsctl: stack {args.stack}: the program failed: {evaluation.error}", file=sys.stderr)
        return EXIT_FAILED
    try:
        pack_config = load_pack_config(args.stack)
    except ValueError as error:
        print(f"mlopsctl: policy pack configuration: {error}", file=sys.stderr)
        return EXIT_USAGE
    report = check(evaluation, pack_config, args.upstream_schemas)
    print(render_json(report) if args.json else render_text(report))
    return EXIT_FAILED if report.failed else EXIT_OK


def platform_outputs_document(evaluation: Evaluation) -> dict[str, object]:
    """The platform's outputs as a `StackReference` reader sees them, secrets left out."""
    return {name: output.value for name, output in sorted(evaluation.outputs.items()) if not output.secret}


def platform_outputs_text(stack: str) -> str:

    evaluation = evaluate(stack, platform_outputs={})
    if evaluation.error is not None:
        raise evaluation.error
    return json.dumps(platform_outputs_document(evaluation), indent=2) + "\n"


def _platform_outputs(args: argparse.Namespace) -> int:

    stale = []
    for stack in _stacks(REPO_ROOT):
        path = platform_outputs_example(stack)
        wanted = platform_outputs_text(stack)
        if args.write:
            path.write_text(wanted)
        elif not path.is_file() or path.read_text() != wanted:
            stale.append(str(path.relative_to(REPO_ROOT)))
    if stale:
        print(
            f"mlopsctl: out of date: {', '.join(stale)}; run `python -m mlopsctl platform-outputs --write`",
            file=sys.stderr,
        )
        return EXIT_FAILED
    return EXIT_OK


def pulumi_yaml_text() -> str:
    document = {**PULUMI_PROJECT_HEADER, "config": config_reference.pulumi_config_block()}
    header = "# Generated from settings/model.py by `python -m mlopsctl config-reference --write`; do not edit.\n"
    return header + yaml.safe_dump(document, sort_keys=False, width=110, allow_unicode=True)


def _config_reference(args: argparse.Namespace) -> int:
    targets = (REPO_ROOT / "Pulumi.yaml", REPO_ROOT / config_reference.REFERENCE_DOCUMENT)
    stale = []
    for path in targets:
        current = path.read_text() if path.exists() else ""
        wanted = pulumi_yaml_text() if path.name == "Pulumi.yaml" else config_reference.document_text(current)
        if current != wanted:
            stale.append(path.name)
            if args.write:
                path.write_text(wanted)
    if stale and not args.write:
        print(
            f"mlopsctl: out of date: {', '.join(stale)}; run `python -m mlopsctl config-reference --write`",
            file=sys.stderr,
        )
        return EXIT_FAILED
    print("written: " + ", ".join(stale) if stale else "configuration reference is up to date")
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="mlopsctl", description=__doc__.splitlines()[0] if __doc__ else None)
    commands = parser.add_subparsers(dest="command", required=True)

    preview = commands.add_parser("preview", help=OFFLINE_COMMANDS["preview"])
    preview.add_argument(
        "--stack", required=True, help="stack name: reads Pulumi.<stack>.yaml and policies/config/<stack>.json"
    )
    preview.add_argument("--json", action="store_true", help="machine-readable output")
    preview.add_argument(
        "--registry-snapshot",
        type=Path,
        default=None,
        help="plan model rollouts from this snapshot file (JSON) instead of the live MLflow registry",
    )
    preview.add_argument(
        "--stack-file", type=Path, default=None, help="read configuration from this file instead of Pulumi.<stack>.yaml"
    )
    preview.add_argument(
        "--project",
        choices=sorted(PROJECT_DIRS),
        default="platform",
        help="which Pulumi project: the platform (repository root) or model delivery (models/)",
    )
    preview.add_argument(
        "--platform-outputs",
        type=Path,
        default=None,
        help="models project: the platform stack's outputs (JSON) its StackReference reads "
        "(default examples/platform-outputs.<stack>.json)",
    )
    preview.add_argument(
        "--upstream-schemas",
        type=Path,
        default=None,
        metavar="DIR",
        help="also validate against the full upstream CRDs and chart values in DIR (strict mode; "
        "see schemas/README.md for how to get them; default: MLOPS_UPSTREAM_SCHEMAS, else our schemas only)",
    )
    preview.set_defaults(handler=_preview)

    outputs = commands.add_parser("platform-outputs", help=OFFLINE_COMMANDS["platform-outputs"])
    outputs.add_argument("--write", action="store_true", help="regenerate instead of checking")
    outputs.set_defaults(handler=_platform_outputs)

    reference = commands.add_parser("config-reference", help=OFFLINE_COMMANDS["config-reference"])
    reference.add_argument("--write", action="store_true", help="regenerate instead of checking")
    reference.set_defaults(handler=_config_reference)

    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:
        return EXIT_USAGE if exit_.code not in (0, None) else EXIT_OK
    return int(args.handler(args))
