"""mlops-models: settings → platform outputs → registry snapshot → plan → model rollout. Wiring only.

Every read happens before anything is declared: bad settings, a platform stack without the
outputs contract, or an unreachable registry fail the program naming what is wrong, and nothing
already deployed is deleted. What the layer does is in `layers/models.py`.
"""

import sys
from pathlib import Path

# Pulumi runs this program with `models/` as its root; the packages it wires live one level up.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from layers import models
from layers.config import models_settings

settings = models_settings()
platform = models.read_platform(settings)
plans = models.plan(settings, platform)
rollout = models.declare(settings, platform, plans)
models.export(rollout, platform)
