"""Lineage annotation keys every serving predictor carries (policies check them, rollouts set them)."""

from __future__ import annotations

from typing import Final

REGISTERED_MODEL: Final = "mlops.io/registered-model"
MODEL_VERSION: Final = "mlops.io/model-version"
RUN_ID: Final = "mlops.io/run-id"
SOURCE: Final = "mlops.io/source"
ARTIFACT_URI: Final = "mlops.io/artifact-uri"
GIT_COMMIT: Final = "mlops.io/git-commit"

REQUIRED: Final = (REGISTERED_MODEL, MODEL_VERSION, RUN_ID, SOURCE, ARTIFACT_URI)
