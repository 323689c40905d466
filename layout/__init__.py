"""Pure facts of the platform: names, namespaces, routing, lineage keys, server command line (no Pulumi)."""
