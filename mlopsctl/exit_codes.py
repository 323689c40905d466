"""Exit codes of every `mlopsctl` command, runtime and offline alike (the one home of these numbers),
and the argument parser that reports a bad command line in one line.

0 done; 1 the command ran and failed (a check, a rollout decision that could not be applied, an
unreachable service); 2 usage or configuration error, with a one-line reason on stderr.
"""

from __future__ import annotations

import argparse
from typing import Final, NoReturn

EXIT_OK: Final = 0
EXIT_FAILED: Final = 1
EXIT_USAGE: Final = 2


class OneLineParser(argparse.ArgumentParser):
    """Bad command lines get one line on stderr (no usage dump) and exit code 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: {message} (see --help)\n")
