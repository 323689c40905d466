"""Security contexts of the Pod Security `restricted` profile, for every workload the platform runs."""

from __future__ import annotations

import pulumi_kubernetes as kubernetes

RUNTIME_DEFAULT = kubernetes.core.v1.SeccompProfileArgs(type="RuntimeDefault")


def restricted_container(user: int | None = None) -> kubernetes.core.v1.SecurityContextArgs:
    """Non-root, no privilege escalation, read-only root, no capabilities; `user` (and group) if given."""
    return kubernetes.core.v1.SecurityContextArgs(
        allow_privilege_escalation=False,
        read_only_root_filesystem=True,
        run_as_non_root=True,
        run_as_user=user,
        run_as_group=user,
        capabilities=kubernetes.core.v1.CapabilitiesArgs(drop=["ALL"]),
        seccomp_profile=RUNTIME_DEFAULT,
    )


def restricted_pod(
    user: int, *, group: int | None = None, fs_group: int | None = None
) -> kubernetes.core.v1.PodSecurityContextArgs:
    return kubernetes.core.v1.PodSecurityContextArgs(
        run_as_non_root=True,
        run_as_user=user,
        run_as_group=group,
        fs_group=fs_group,
        seccomp_profile=RUNTIME_DEFAULT,
    )
