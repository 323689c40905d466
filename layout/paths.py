"""Where the repository's own files are: the source tree, or the same tree the mlopsctl image copies
to its working directory (images/mlopsctl). No Pulumi import: the image's CLI reads stack files
through this module without the Pulumi harness."""

from __future__ import annotations

from pathlib import Path
from typing import Final

REPO_ROOT: Final = Path(__file__).resolve().parent.parent
MODELS_DIR: Final = REPO_ROOT / "models"
"""The models project (`mlops-models`): its `Pulumi.<stack>.yaml` hold the rollout settings."""
