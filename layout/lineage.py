"""Lineage of a served model: the annotation keys every SeldonDeployment predictor carries.

Shared by the rollout component (which writes them) and the policy pack (which requires them),
so the two cannot drift. Pure data: no Pulumi, no I/O.
"""

from __future__ import annotations

from typing import Final

REGISTERED_MODEL: Final = "mlops.io/registered-model"
"""Name of the registered model in the MLflow Model Registry (`fraud-detector`)."""
MODEL_VERSION: Final = "mlops.io/model-version"
"""Registry version number served by the predictor (`7`)."""
RUN_ID: Final = "mlops.io/run-id"
"""MLflow run that produced the model version."""
SOURCE: Final = "mlops.io/source"
"""The version's `source` as the registry records it (`models:/m-...` or `runs:/<run>/model`)."""
ARTIFACT_URI: Final = "mlops.io/artifact-uri"
"""Physical location the predictor loads from (`wasbs://<container>@<account>.blob.core.windows.net/...`)."""
GIT_COMMIT: Final = "mlops.io/git-commit"
"""Commit of the training code, when the run recorded one (`mlflow.source.git.commit`)."""

REQUIRED_PREDICTOR_ANNOTATIONS: Final = (REGISTERED_MODEL, MODEL_VERSION, RUN_ID, SOURCE, ARTIFACT_URI)
"""Keys every predictor must carry, with a non-empty value."""
OPTIONAL_PREDICTOR_ANNOTATIONS: Final = (GIT_COMMIT,)
"""Keys a predictor carries when the value is known."""

# Schemes of physical storage a Seldon storage initializer downloads from; registry-relative
# URIs (`models:/`, `runs:/`, `mlflow-artifacts:/`) must be resolved before they reach a predictor.
PHYSICAL_URI_SCHEMES: Final = ("wasbs", "wasb", "abfss", "https", "s3", "gs")
LOGICAL_URI_SCHEMES: Final = ("models", "runs", "mlflow-artifacts", "file", "dbfs")

AZURE_BLOB_REMOTE: Final = "azureblob"
"""The rclone remote Seldon's storage initializer is configured with for the artifact account."""
RCLONE_REMOTE_SCHEMES: Final = (AZURE_BLOB_REMOTE,)
"""`<remote>:<container>/<path>`: the form the rclone storage initializer downloads (physical too)."""
