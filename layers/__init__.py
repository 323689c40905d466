"""How the platform program composes its components, one module per layer.

`__main__.py` calls them in order: `azure.declare` → `teams.declare_azure` (each team's Azure
side, which the cluster's webhook receiver waits for) → `cluster.declare` → `teams.declare` →
`outputs.export`. Each layer takes the typed settings and what the layers before it returned;
nothing here reads configuration or talks to a service.
"""
