"""Command line of the platform: offline preview and documentation generation.

The offline commands (preview, platform-outputs, config-reference) import the Pulumi harness, the
policy pack and the schema checks when they run: `rollout` and `webhook`, the commands of the
mlopsctl image, need none of them (requirements-mlopsctl.txt).

Exit codes: 0 done; 1 the program or a check failed (a mandatory policy violation, an invalid
Kubernetes object or Helm release); 2 usage or configuration error, with a one-line reason on
stderr (a settings error lists every bad key on the lines after it).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import yaml

from layout.paths import MODELS_DIR, REPO_ROOT
from mlopsctl import config_reference
from mlopsctl.rollout_cli import add_rollout_parser, run_rollout
from mlopsctl.webhook_cli import add_webhook_parser, run_webhook
from settings import SettingsError
from settings.stack_file import engine_config_from_stack_file

if TYPE_CHECKING:
    from mlopsctl.mock_engine import Evaluation

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
PROJECT_DIRS = {"platform": REPO_ROOT, "models": MODELS_DIR}

PULUMI_PROJECT_HEADER = {
    "name": "mlops-platform",
    "description": "MLflow tracking/registry, Seldon Core serving and model rollouts on Azure (AKS), per environment.",
    "runtime": {"name": "python", "options": {"toolchain": "pip", "virtualenv": ".venv", "typechecker": "mypy"}},
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
    from mlopsctl.mock_engine import platform_outputs_example, stack_config  # noqa: PLC0415 - offline only

    if args.registry_snapshot is not None and not args.registry_snapshot.is_file():
        raise _UsageError(f"no registry snapshot file {args.registry_snapshot}")
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
    from mlopsctl.mock_engine import evaluate, platform_outputs_example  # noqa: PLC0415 - offline only
    from mlopsctl.policy_check import load_pack_config  # noqa: PLC0415 - offline only
    from mlopsctl.preview import check, render_json, render_text  # noqa: PLC0415 - offline only

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
    report = check(evaluation, pack_config)
    print(render_json(report) if args.json else render_text(report))
    return EXIT_FAILED if report.failed else EXIT_OK


def platform_outputs_document(evaluation: Evaluation) -> dict[str, object]:
    """The platform's outputs as a `StackReference` reader sees them, secrets left out."""
    return {name: output.value for name, output in sorted(evaluation.outputs.items()) if not output.secret}


def platform_outputs_text(stack: str) -> str:
    from mlopsctl.mock_engine import evaluate  # noqa: PLC0415 - offline only

    evaluation = evaluate(stack, platform_outputs={})
    if evaluation.error is not None:
        raise evaluation.error
    return json.dumps(platform_outputs_document(evaluation), indent=2) + "\n"


def _platform_outputs(args: argparse.Namespace) -> int:
    from mlopsctl.mock_engine import platform_outputs_example  # noqa: PLC0415 - offline only

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


class _Parser(argparse.ArgumentParser):
    """Bad command lines get one line on stderr (no usage dump) and exit code 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: {message} (see --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="mlopsctl", description=__doc__.splitlines()[0] if __doc__ else None)
    commands = parser.add_subparsers(dest="command", required=True)

    preview = commands.add_parser(
        "preview",
        help="evaluate a stack offline (mock engine), run the policy pack and schema checks, print the result",
    )
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
    preview.set_defaults(handler=_preview)

    outputs = commands.add_parser(
        "platform-outputs", help="check (or --write) examples/platform-outputs.<stack>.json against the program"
    )
    outputs.add_argument("--write", action="store_true", help="regenerate instead of checking")
    outputs.set_defaults(handler=_platform_outputs)

    reference = commands.add_parser("config-reference", help="check (or --write) Pulumi.yaml and docs/configuration.md")
    reference.add_argument("--write", action="store_true", help="regenerate instead of checking")
    reference.set_defaults(handler=_config_reference)

    add_rollout_parser(commands)
    add_webhook_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:
        return EXIT_USAGE if exit_.code not in (0, None) else EXIT_OK
    if args.command == "rollout":
        return run_rollout(args)
    if args.command == "webhook":
        return run_webhook(args)
    return int(args.handler(args))
