"""The one Kubernetes API call the platform's CLI makes: ask the operator to reconcile a Stack now.

Configuration follows the standard client rules (as client-go and the `kubernetes` Python client):
in a pod (`KUBERNETES_SERVICE_HOST`/`_PORT` set and a service-account token mounted) the API server
is `https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT`, authenticated with the projected
token (re-read on every call: kubelet rotates it) and verified with the mounted CA; otherwise the
first file of `KUBECONFIG` (default `~/.kube/config`), its current context: server, CA
(`certificate-authority` or `-data`, or `insecure-skip-tls-verify`) and a bearer `token`,
`tokenFile` or client certificate.
"""

from __future__ import annotations

import base64
import json
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import requests
import yaml

RECONCILE_REQUEST_ANNOTATION: Final = "pulumi.com/reconciliation-request"
SERVICE_ACCOUNT_DIR: Final = Path("/var/run/secrets/kubernetes.io/serviceaccount")


class KubeConfigError(Exception):
    """No usable configuration: reported as one line."""


@dataclass(frozen=True)
class KubeConnection:
    server: str
    verify: str | bool
    """CA bundle path, or False for `insecure-skip-tls-verify`, or True for the system store."""
    token: str | None = None
    token_file: Path | None = None
    client_cert: tuple[str, str] | None = None

    def bearer(self) -> str | None:
        if self.token_file is not None:
            return self.token_file.read_text().strip()
        return self.token


def _written(data: str, suffix: str) -> str:
    """Inline (`-data`) credentials as a private temporary file, for `requests`."""
    handle = tempfile.NamedTemporaryFile("wb", suffix=suffix, delete=False)  # noqa: SIM115 - lives for the process
    with handle:
        handle.write(base64.b64decode(data))
    os.chmod(handle.name, 0o600)
    return handle.name


def in_cluster(environ: Mapping[str, str], account_dir: Path = SERVICE_ACCOUNT_DIR) -> KubeConnection | None:
    host, port = environ.get("KUBERNETES_SERVICE_HOST"), environ.get("KUBERNETES_SERVICE_PORT")
    token = account_dir / "token"
    if not host or not port or not token.is_file():
        return None
    if ":" in host:  # IPv6
        host = f"[{host}]"
    return KubeConnection(server=f"https://{host}:{port}", verify=str(account_dir / "ca.crt"), token_file=token)


def _named(items: list[dict[str, Any]], name: str, kind: str) -> dict[str, Any]:
    for item in items or []:
        if item.get("name") == name:
            return dict(item.get(kind) or {})
    raise KubeConfigError(f"kubeconfig has no {kind} named {name!r}")


def from_kubeconfig(path: Path) -> KubeConnection:
    try:
        document = yaml.safe_load(path.read_text()) or {}
    except OSError as error:
        raise KubeConfigError(f"cannot read kubeconfig {path}: {error.strerror}") from error
    context_name = document.get("current-context")
    if not context_name:
        raise KubeConfigError(f"kubeconfig {path} has no current-context")
    context = _named(document.get("contexts", []), context_name, "context")
    cluster = _named(document.get("clusters", []), context.get("cluster", ""), "cluster")
    user = _named(document.get("users", []), context.get("user", ""), "user") if context.get("user") else {}
    server = cluster.get("server")
    if not server:
        raise KubeConfigError(f"kubeconfig {path}: cluster of context {context_name!r} has no server")
    base = path.parent
    verify: str | bool = True
    if cluster.get("insecure-skip-tls-verify"):
        verify = False
    elif cluster.get("certificate-authority-data"):
        verify = _written(cluster["certificate-authority-data"], ".crt")
    elif cluster.get("certificate-authority"):
        verify = str(base / cluster["certificate-authority"])
    client_cert = None
    if user.get("client-certificate-data") and user.get("client-key-data"):
        client_cert = (_written(user["client-certificate-data"], ".crt"), _written(user["client-key-data"], ".key"))
    elif user.get("client-certificate") and user.get("client-key"):
        client_cert = (str(base / user["client-certificate"]), str(base / user["client-key"]))
    token_file = Path(base / user["tokenFile"]) if user.get("tokenFile") else None
    if user.get("exec") or user.get("auth-provider"):
        raise KubeConfigError(f"kubeconfig {path}: exec and auth-provider credentials are not supported")
    return KubeConnection(
        server=server.rstrip("/"),
        verify=verify,
        token=user.get("token"),
        token_file=token_file,
        client_cert=client_cert,
    )


def load_connection(environ: Mapping[str, str] | None = None) -> KubeConnection:
    """In-cluster configuration, else the first `KUBECONFIG` file, else `~/.kube/config`."""
    environ = os.environ if environ is None else environ
    connection = in_cluster(environ)
    if connection is not None:
        return connection
    paths = [p for p in environ.get("KUBECONFIG", "").split(os.pathsep) if p]
    path = Path(paths[0]) if paths else Path.home() / ".kube" / "config"
    if not path.is_file():
        raise KubeConfigError(f"not in a cluster and no kubeconfig at {path}")
    return from_kubeconfig(path)


class KubeApiError(Exception):
    def __init__(self, status: int | None, message: str) -> None:
        super().__init__(message)
        self.status = status


def stack_path(namespace: str, name: str) -> str:
    return f"/apis/pulumi.com/v1/namespaces/{namespace}/stacks/{name}"


def reconcile_patch(value: str) -> dict[str, Any]:
    return {"metadata": {"annotations": {RECONCILE_REQUEST_ANNOTATION: value}}}


class StackReconciler:
    """PATCHes one Stack's reconcile-request annotation (JSON merge patch)."""

    def __init__(self, connection: KubeConnection, namespace: str, name: str, timeout: float = 5.0) -> None:
        self.connection = connection
        self.url = connection.server + stack_path(namespace, name)
        self.timeout = timeout
        self.session = requests.Session()
        self.session.trust_env = False

    def request_reconcile(self, value: str) -> None:
        headers = {"Content-Type": "application/merge-patch+json", "Accept": "application/json"}
        token = self.connection.bearer()
        if token:
            headers["Authorization"] = f"Bearer {token}"
        try:
            response = self.session.patch(
                self.url,
                data=json.dumps(reconcile_patch(value)),
                headers=headers,
                verify=self.connection.verify,
                cert=self.connection.client_cert,
                timeout=self.timeout,
            )
        except requests.RequestException as error:
            raise KubeApiError(None, f"PATCH {self.url}: {error}") from error
        if response.status_code >= 300:
            raise KubeApiError(response.status_code, f"PATCH {self.url}: {response.status_code} {response.text[:300]}")
