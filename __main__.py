"""mlops-platform: settings → Azure layer → cluster layer → stack outputs. Wiring only.

Settings are read and validated first: bad configuration raises before any resource exists.
The platform never talks to MLflow: model delivery is the models stack (`models/`), which reads
this stack's outputs (`layers/outputs.py`) and the registry. What each layer declares is in
`layers/` (see docs/architecture.md).
"""

import pulumi

from layers import azure, cluster, outputs, teams
from layers.config import managed_models, platform_settings

settings = platform_settings()
# The models the operator's workspace reads (models/Pulumi.<stack>.yaml): its registry user's grants.
models = managed_models(settings, pulumi.get_stack())
azure_layer = azure.declare(settings)
# Each team's Azure side first: the webhook receiver mounts the teams' webhook secrets and waits for its grants.
team_sides = teams.declare_azure(settings, azure_layer)
cluster_layer = cluster.declare(settings, azure_layer, models, teams.receiver_hooks(settings, team_sides))
teams_layer = teams.declare(settings, azure_layer, cluster_layer, team_sides)
outputs.export(settings, azure_layer, cluster_layer, teams_layer)
