"""Model rollouts: registry snapshots, the pure rollout planner, and the registry reader."""
