"""String types shared by the settings models that must not import each other.

`settings.model` (the platform's keys) holds `teams` (`settings.teams`), whose overrides name a
namespace: both take the label type from here, so neither module imports the other's module.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import StringConstraints

Dns1123Label = Annotated[str, StringConstraints(pattern=r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")]
"""A Kubernetes name that is a DNS-1123 label (namespaces, Secrets)."""
