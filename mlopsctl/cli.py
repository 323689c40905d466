"""Command line of the platform: the commands of the mlopsctl image, and the door to the offline ones.

The runtime commands (`rollout`, `webhook`) are what the mlopsctl image runs in the cluster; each
is one entry of `RUNTIME_COMMANDS` (its parser and its handler). The offline commands (`preview`,
`platform-outputs`, `config-reference`) belong to the offline harness (package `harness`), which
lives in the repository checkout and is never copied into the image: this package never imports
it (tests/test_import_layout.py). `mlopsctl <offline command> ...` hands the whole command line to
the module named by `OFFLINE_ENTRY` when it can be found, so `python -m mlopsctl preview` works in
a checkout exactly as `python -m harness preview`; in the image it exits 2 saying where the
command lives.

Exit codes (mlopsctl/exit_codes.py): 0 done; 1 the command ran and failed; 2 usage or
configuration error, with a one-line reason on stderr.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from mlopsctl.exit_codes import EXIT_OK, EXIT_USAGE, OneLineParser
from mlopsctl.registry_cli import add_registry_parser, run_registry
from mlopsctl.rollout_cli import add_rollout_parser, run_rollout
from mlopsctl.teams_cli import add_teams_parser, run_teams
from mlopsctl.webhook_cli import add_webhook_parser, run_webhook


@dataclass(frozen=True)
class Command:
    """One runtime subcommand: `add_parser` registers it (and sets nothing else), `run` handles it."""

    name: str
    add_parser: Callable[[argparse._SubParsersAction[Any]], None]
    run: Callable[[argparse.Namespace], int]


RUNTIME_COMMANDS: Final[tuple[Command, ...]] = (
    Command("rollout", add_rollout_parser, run_rollout),
    Command("webhook", add_webhook_parser, run_webhook),
    Command("teams", add_teams_parser, run_teams),
    Command("registry", add_registry_parser, run_registry),
)
"""The image's commands; a new one is one more entry (its module keeps its own parser and handler)."""

OFFLINE_COMMANDS: Final[Mapping[str, str]] = {
    "preview": "evaluate a stack offline (mock engine), run the policy pack and schema checks, print the result",
    "platform-outputs": "check (or --write) examples/platform-outputs.<stack>.json against the program",
    "config-reference": "check (or --write) Pulumi.yaml and docs/configuration.md",
}
"""Commands of the offline harness, listed here so `mlopsctl --help` shows them and the door below knows them."""

OFFLINE_ENTRY: Final = "harness.cli"
"""The module whose `main(argv)` runs the offline commands; looked up by name, only for those commands."""


def _run_offline(argv: Sequence[str]) -> int:
    """Hand an offline command line to the harness, or say in one line that it is not here."""
    try:
        offline = importlib.import_module(OFFLINE_ENTRY)
    except ModuleNotFoundError as error:
        if error.name is None or not (error.name == OFFLINE_ENTRY or OFFLINE_ENTRY.startswith(error.name + ".")):
            raise  # the harness is there but something it imports is not: a real failure
        print(
            f"mlopsctl: {argv[0]} is an offline command of the repository checkout "
            f"(package {OFFLINE_ENTRY.partition('.')[0]}, not installed here)",
            file=sys.stderr,
        )
        return EXIT_USAGE
    return int(offline.main(list(argv)))


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="mlopsctl", description=__doc__.splitlines()[0] if __doc__ else None)
    commands = parser.add_subparsers(dest="command", required=True)
    for name, text in OFFLINE_COMMANDS.items():
        # Listed for --help only: main() hands these command lines to the harness before parsing.
        commands.add_parser(name, help=f"{text} (offline: repository checkout)", add_help=False)
    for command in RUNTIME_COMMANDS:
        command.add_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    if arguments and arguments[0] in OFFLINE_COMMANDS:
        return _run_offline(arguments)
    parser = build_parser()
    try:
        args = parser.parse_args(arguments)
    except SystemExit as exit_:
        return EXIT_USAGE if exit_.code not in (0, None) else EXIT_OK
    by_name = {command.name: command for command in RUNTIME_COMMANDS}
    return int(by_name[args.command].run(args))
