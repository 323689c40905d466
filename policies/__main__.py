"""Entry point the Pulumi CLI runs for `--policy-pack policies`: serves the pack's policies.

The policies live in importable modules (policies/azure.py, kubernetes.py, rollouts.py, stack.py)
so `mlopsctl preview` and the tests call the same objects without the CLI.
"""

import sys
from pathlib import Path

# The CLI runs this file from policies/; the modules import `policies.*` and `layout.lineage`.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pulumi_policy import EnforcementLevel, PolicyPack

from policies.pack import PACK_NAME, POLICIES

PolicyPack(
    name=PACK_NAME,
    policies=[*POLICIES],
    # Mandatory unless policies/config/<stack>.json (--policy-pack-config) says otherwise.
    enforcement_level=EnforcementLevel.MANDATORY,
    description="mlops-platform: Azure, AKS, Kubernetes, Helm and model-rollout rules.",
)
