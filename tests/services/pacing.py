"""Spacing of consecutive `rollout advance` runs on one model, as the CronJob's ticks space them.

The test stacks give canaries `stepInterval: 1s`, so that consecutive runs can move a canary
step by step. A run holds a step until it has served that interval since the run that set it
(`mlops.rollout.step_at`). Runs started back to back can come less than a second apart now that
the CLI starts quickly, and then the dwell holds, which is the right answer, not the one those
tests are about. `RunPacer.wait(model)` starts a model's next run no sooner than the interval
after its previous run ended. The tag's whole-second time can only make the measured dwell
longer, never shorter.
"""

from __future__ import annotations

import time


class RunPacer:
    def __init__(self, interval_seconds: float) -> None:
        self.interval_seconds = interval_seconds
        self._ended: dict[str, float] = {}

    def wait(self, model: str) -> None:
        """Sleep until `interval_seconds` have passed since `model`'s previous run ended."""
        previous = self._ended.get(model)
        if previous is not None:
            time.sleep(max(0.0, previous + self.interval_seconds - time.monotonic()))

    def ended(self, model: str) -> None:
        self._ended[model] = time.monotonic()
