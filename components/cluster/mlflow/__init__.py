"""MLflow on AKS, one component (`MlflowStack`) declared by cohesive modules: `server` (per-role
Deployment, Service, PDB, HPA), `migration`, `network`, `monitoring`, `gc`; `stack` composes them."""

from components.cluster.mlflow.args import MlflowStackArgs, PodResources, RoleScaling
from components.cluster.mlflow.stack import MlflowStack

__all__ = ["MlflowStack", "MlflowStackArgs", "PodResources", "RoleScaling"]
