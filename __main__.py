"""mlops-platform: settings → Azure layer → cluster layer → stack outputs. Wiring only.

Settings are read and validated first: bad configuration raises before any resource exists. The
registry is read (or the snapshot file loaded) and every rollout planned before anything is
declared: an unreachable or inconsistent registry fails the program and deletes nothing. What
each layer declares is in `layers/` (see ARCHITECTURE.md).
"""

from layers import azure, cluster, outputs
from rollout.planner import plan_rollouts
from rollout.source import registry_snapshot
from settings.stack_file import from_pulumi_runtime

settings = from_pulumi_runtime()
rollout_plans = plan_rollouts(registry_snapshot(settings.rollout), settings.rollout.models)
azure_layer = azure.declare(settings)
cluster_layer = cluster.declare(settings, azure_layer, rollout_plans)
outputs.export(settings, azure_layer, cluster_layer)
