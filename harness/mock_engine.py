"""Evaluate the real Pulumi program for a stack under the Pulumi mock engine, and record it all.

This is what the offline preview and the tests run: `__main__.py` itself, with configuration
from `Pulumi.<stack>.yaml`, and a mock engine that answers like Azure would (ids, FQDNs, the
OIDC issuer, kubeconfigs) without credentials or a network. Every registration is recorded with
its inputs and options (parent, protect, provider, deleted_with, secret outputs), and the stack
outputs are resolved with their secretness, so tests can assert on exactly what `pulumi up`
would send to the engine.
"""

from __future__ import annotations

import base64
import calendar
import gc
import hashlib
import json
import os
import runpy
import sys
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pulumi
import pulumi.runtime.settings as runtime_settings
import yaml
from google.protobuf import struct_pb2
from pulumi.runtime import mocks, rpc
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _sync_await

from layout import paths, resource_types
from rollout.source import SNAPSHOT_ENV
from settings.problems import PROJECT
from settings.stack_file import engine_config_from_stack_file

REPO_ROOT = paths.REPO_ROOT
MODELS_DIR = paths.MODELS_DIR
EXAMPLE_REGISTRY_SNAPSHOT = REPO_ROOT / "examples" / "registry-snapshot.json"
STACK_REFERENCE = resource_types.STACK_REFERENCE


def platform_outputs_example(stack: str) -> Path:
    """What the platform exports for a committed stack, as the models project's preview reads it.

    A team's models stack (`models/Pulumi.<team>-<env>.yaml`) reads the platform stack its
    `platformStack` names (`.../dev`), whose example this is."""
    models_file = MODELS_DIR / f"Pulumi.{stack}.yaml"
    if not (REPO_ROOT / "examples" / f"platform-outputs.{stack}.json").exists() and models_file.exists():
        config = (yaml.safe_load(models_file.read_text()) or {}).get("config", {})
        stack = str(config.get("mlops-models:platformStack", stack)).rsplit("/", 1)[-1]
    return REPO_ROOT / "examples" / f"platform-outputs.{stack}.json"


MOCK_TENANT_ID = "11111111-1111-4111-8111-111111111111"
MOCK_SUBSCRIPTION_ID = "22222222-2222-4222-8222-222222222222"
MOCK_DEPLOYER_OBJECT_ID = "33333333-3333-4333-8333-333333333333"
MOCK_LOAD_BALANCER_IP = "10.40.0.200"
MOCK_NOW = datetime(2026, 1, 5, 9, 0, 0, tzinfo=UTC)
"""The clock of the mock engine: the base timestamp a pulumiverse-time `Rotating` is created at."""


@dataclass(frozen=True)
class RecordedResource:
    """One resource registration as the engine received it."""

    urn: str
    type: str
    name: str
    parent: str
    custom: bool
    inputs: dict[str, Any]
    secret_inputs: frozenset[str]
    protect: bool
    provider: str
    deleted_with: str
    dependencies: tuple[str, ...]
    additional_secret_outputs: tuple[str, ...]
    ignore_changes: tuple[str, ...]
    id: str = ""
    """The id the (mock) provider answered with: Azure resource ids, for matching scopes."""
    outputs: dict[str, Any] = field(default_factory=dict)
    """The state the (mock) provider answered with (principal ids, FQDNs), for the deploy-order rules."""
    engine_urn: str = ""
    """The URN the Pulumi engine gives the resource: the type chain of every ancestor below the
    stack (`A$B$type`). The mock monitor's `urn` keeps only the parent's type, so a move of an
    ancestor does not show in it; this one changes as a state entry would."""
    aliases: tuple[str, ...] = ()
    """The engine URNs the resource's `aliases` option names (specs resolved as the engine resolves
    them): a state entry under one of them is this resource, moved or renamed, not a replacement."""


@dataclass(frozen=True)
class StackOutput:
    value: Any
    secret: bool


@dataclass
class Evaluation:
    """The outcome of one program run: resources, outputs, and the error if it failed."""

    stack: str
    resources: list[RecordedResource] = field(default_factory=list)
    outputs: dict[str, StackOutput] = field(default_factory=dict)
    error: BaseException | None = None
    invokes: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    """Every provider function the program called (token, arguments), in call order."""

    def of_type(self, type_token: str) -> list[RecordedResource]:
        return [r for r in self.resources if r.type == type_token]

    def one(self, type_token: str, name: str | None = None) -> RecordedResource:
        matches = [r for r in self.of_type(type_token) if name is None or r.name == name]
        if len(matches) != 1:
            raise LookupError(f"expected one {type_token} {name or ''}, found {[r.name for r in matches]}")
        return matches[0]

    def by_urn(self) -> dict[str, RecordedResource]:
        return {r.urn: r for r in self.resources}


# The input that holds a resource's Azure name, per type (its `name` output echoes it).
_NAME_INPUTS = (
    "resourceGroupName",
    "virtualNetworkName",
    "subnetName",
    "privateZoneName",
    "virtualNetworkLinkName",
    "privateEndpointName",
    "privateDnsZoneGroupName",
    "serverName",
    "configurationName",
    "databaseName",
    "accountName",
    "blobServicesName",
    "containerName",
    "vaultName",
    "secretName",
    "registryName",
    "resourceName",
    "agentPoolName",
    "configName",
    "federatedIdentityCredentialResourceName",
    "workspaceName",
    "zoneName",
)
# Inputs that name a parent resource rather than the resource itself.
_PARENT_NAME_INPUTS = {
    "azure-native:network:Subnet": "subnetName",
    "azure-native:privatedns:VirtualNetworkLink": "virtualNetworkLinkName",
    "azure-native:network:PrivateDnsZoneGroup": "privateDnsZoneGroupName",
    "azure-native:dbforpostgresql:Configuration": "configurationName",
    "azure-native:dbforpostgresql:Database": "databaseName",
    "azure-native:storage:BlobServiceProperties": "blobServicesName",
    "azure-native:storage:BlobContainer": "containerName",
    "azure-native:keyvault:Secret": "secretName",
    "azure-native:containerservice:AgentPool": "agentPoolName",
    "azure-native:containerservice:MaintenanceConfiguration": "configName",
    "azure-native:managedidentity:FederatedIdentityCredential": "federatedIdentityCredentialResourceName",
    "azure-native:dns:RecordSet": "relativeRecordSetName",
    "azure-native:privatedns:PrivateRecordSet": "relativeRecordSetName",
}


def _azure_name(type_token: str, inputs: Mapping[str, Any], fallback: str) -> str:
    if type_token in _PARENT_NAME_INPUTS:
        return str(inputs.get(_PARENT_NAME_INPUTS[type_token], fallback))
    if type_token == "azure-native:resources:ResourceGroup":
        return str(inputs.get("resourceGroupName", fallback))
    for key in _NAME_INPUTS[1:]:
        if key in inputs and key not in _PARENT_NAME_INPUTS.values():
            return str(inputs[key])
    return fallback


def _mock_guid(*parts: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, "/".join(parts)))


# Resource ids that are not `<provider base>/<kind>s/<name>`: the path under the provider base.
_ARM_PATHS: dict[str, Callable[[Mapping[str, Any], str], str]] = {
    "azure-native:storage:BlobContainer": lambda i, n: (
        f"storageAccounts/{i.get('accountName')}/blobServices/default/containers/{n}"
    ),
    "azure-native:keyvault:Secret": lambda i, n: f"vaults/{i.get('vaultName')}/secrets/{n}",
    "azure-native:storage:BlobServiceProperties": lambda i, n: (
        f"storageAccounts/{i.get('accountName')}/blobServices/{n}"
    ),
    "azure-native:network:Subnet": lambda i, n: f"virtualNetworks/{i.get('virtualNetworkName')}/subnets/{n}",
}


def _arm_id(type_token: str, inputs: Mapping[str, Any], name: str) -> str:
    _, module, kind = type_token.split(":")
    group = inputs.get("resourceGroupName", "rg")
    if type_token == "azure-native:resources:ResourceGroup":
        return f"/subscriptions/{MOCK_SUBSCRIPTION_ID}/resourceGroups/{name}"
    if type_token == "azure-native:dns:Zone":
        module, kind = "Network", "dnszone"  # public zones live under Microsoft.Network/dnszones
    base = f"/subscriptions/{MOCK_SUBSCRIPTION_ID}/resourceGroups/{group}/providers/Microsoft.{module}"
    if type_token in _ARM_PATHS:
        return f"{base}/{_ARM_PATHS[type_token](inputs, name)}"
    return f"{base}/{kind[0].lower()}{kind[1:]}s/{name}"


def _kubeconfig(cluster: str, exec_login: bool) -> str:
    user: dict[str, Any]
    if exec_login:
        user = {
            "exec": {
                "apiVersion": "client.authentication.k8s.io/v1beta1",
                "command": "kubelogin",
                # What AKS returns for `format=exec`: device-code login with the AKS public client.
                "args": [
                    "get-token",
                    "--environment",
                    "AzurePublicCloud",
                    "--server-id",
                    "6dae42f8-4368-4678-94ff-3960e28e3630",
                    "--client-id",
                    "80faf920-1908-4b52-b5ef-a8e7bedfc67a",
                    "--tenant-id",
                    MOCK_TENANT_ID,
                    "--login",
                    "devicecode",
                ],
            }
        }
    else:
        user = {"client-certificate-data": "bW9jaw==", "client-key-data": "bW9jaw==", "token": "mock-admin-token"}
    document = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": cluster, "cluster": {"server": f"https://{cluster}.hcp.mock.azmk8s.io:443"}}],
        "users": [{"name": f"clusterUser_{cluster}", "user": user}],
        "contexts": [{"name": cluster, "context": {"cluster": cluster, "user": f"clusterUser_{cluster}"}}],
        "current-context": cluster,
    }
    return yaml.safe_dump(document)


def _add_months(moment: datetime, months: int) -> datetime:
    month = moment.month - 1 + months
    year, month = moment.year + month // 12, month % 12 + 1
    return moment.replace(year=year, month=month, day=min(moment.day, calendar.monthrange(year, month)[1]))


def _rotating_state(inputs: Mapping[str, Any], now: datetime) -> dict[str, Any]:
    """What pulumiverse-time's `Rotating` computes: a base timestamp (now) and the rotation timestamp."""
    base = datetime.fromisoformat(str(inputs["rfc3339"]).replace("Z", "+00:00")) if inputs.get("rfc3339") else now
    rotation = _add_months(base, 12 * int(inputs.get("rotationYears") or 0) + int(inputs.get("rotationMonths") or 0))
    rotation += timedelta(
        days=int(inputs.get("rotationDays") or 0),
        hours=int(inputs.get("rotationHours") or 0),
        minutes=int(inputs.get("rotationMinutes") or 0),
    )
    if inputs.get("rotationRfc3339"):
        rotation = datetime.fromisoformat(str(inputs["rotationRfc3339"]).replace("Z", "+00:00"))
    stamp = "%Y-%m-%dT%H:%M:%SZ"
    return {
        **inputs,
        "rfc3339": base.strftime(stamp),
        "rotationRfc3339": rotation.strftime(stamp),
        "unix": int(base.timestamp()),
        "year": base.year,
        "month": base.month,
        "day": base.day,
        "hour": base.hour,
        "minute": base.minute,
        "second": base.second,
    }


class AzureLikeMocks(pulumi.runtime.Mocks):
    """Answers registrations and invokes with the values Azure computes (deterministically).

    `now` is the engine's clock: time-based keepers are created at it, so two evaluations at
    times a rotation apart show what a rotation changes. A `StackReference` read is answered with
    `stack_outputs` (the platform's outputs, from an example file); without them the referenced
    stack has no outputs, as before its first `up`.
    """

    def __init__(
        self,
        now: datetime = MOCK_NOW,
        stack_outputs: Mapping[str, Any] | None = None,
        secret_outputs: tuple[str, ...] = (),
    ) -> None:
        self.now = now
        self.stack_outputs = dict(stack_outputs or {})
        self.secret_outputs = secret_outputs
        self.invokes: list[tuple[str, dict[str, Any]]] = []

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str | None, dict[str, Any]]:
        inputs = dict(args.inputs)
        if args.typ == STACK_REFERENCE:
            return str(inputs.get("name", args.name)), {
                **inputs,
                "outputs": self.stack_outputs,
                "secretOutputNames": list(self.secret_outputs),
            }
        if args.typ.startswith("azure-native:"):
            return self._azure_resource(args, inputs)
        return self._other_resource(args, inputs)

    def _other_resource(
        self, args: pulumi.runtime.MockResourceArgs, inputs: dict[str, Any]
    ) -> tuple[str | None, dict[str, Any]]:
        if args.typ == "random:index/randomPassword:RandomPassword":
            # Deterministic stand-in with the requested length, letters and digits only; like the
            # provider, a different keeper gives a different password.
            keepers = json.dumps(inputs.get("keepers") or {}, sort_keys=True)
            seed = hashlib.sha256(f"{args.name}\n{keepers}".encode()).hexdigest()
            result = ("Aa1" + seed + seed.upper())[: int(inputs.get("length", 32))]
            return f"{args.name}-id", {**inputs, "result": result}
        if args.typ == "time:index/rotating:Rotating":
            rotating = _rotating_state(inputs, self.now)
            return str(rotating["rfc3339"]), rotating
        if args.typ == "random:index/randomBytes:RandomBytes":
            # Deterministic bytes of the requested length, in both encodings the provider outputs.
            raw = hashlib.sha512(args.name.encode()).digest()[: int(inputs.get("length", 32))]
            return f"{args.name}-id", {**inputs, "base64": base64.b64encode(raw).decode(), "hex": raw.hex()}
        if args.typ == "kubernetes:helm.sh/v3:Release":
            # Helm answers with the deployed release's identity.
            status = {
                "name": inputs.get("name") or args.name,
                "namespace": inputs.get("namespace") or "default",
                "chart": inputs.get("chart"),
                "version": inputs.get("version"),
                "status": "deployed",
            }
            return f"{args.name}-id", {**inputs, "status": status}
        if args.typ == "kubernetes:core/v1:Service" and args.resource_id:
            # A read of a Service a chart created (`Service.get`): it has its load balancer address.
            namespace, _, service = str(args.resource_id).partition("/")
            metadata = {"name": service, "namespace": namespace}
            return args.resource_id, {
                **inputs,
                "metadata": metadata,
                "status": {"loadBalancer": {"ingress": [{"ip": MOCK_LOAD_BALANCER_IP}]}},
            }
        # docker-build answers a pushed image with its digest; other providers echo their inputs.
        return f"{args.name}-id", _built_image(inputs) if args.typ == "docker-build:index:Image" else inputs

    def _azure_resource(
        self, args: pulumi.runtime.MockResourceArgs, inputs: dict[str, Any]
    ) -> tuple[str | None, dict[str, Any]]:
        name = _azure_name(args.typ, inputs, args.name)
        state: dict[str, Any] = {**inputs, "name": name}
        resource_id = _arm_id(args.typ, inputs, name)
        if args.typ == "azure-native:keyvault:Vault":
            state["properties"] = {**inputs.get("properties", {}), "vaultUri": f"https://{name}.vault.azure.net/"}
        elif args.typ == "azure-native:dbforpostgresql:Server":
            state["fullyQualifiedDomainName"] = f"{name}.postgres.database.azure.com"
        elif args.typ == "azure-native:dns:Zone":
            # Azure assigns each public zone four name servers from its pools.
            state["nameServers"] = [
                f"ns{i}-0{i}.azure-dns.{tld}." for i, tld in enumerate(("com", "net", "org", "info"), 1)
            ]
        elif args.typ == "azure-native:containerregistry:Registry":
            state["loginServer"] = f"{name}.azurecr.io"
        elif args.typ == "azure-native:managedidentity:UserAssignedIdentity":
            state["clientId"] = _mock_guid("client", resource_id)
            state["principalId"] = _mock_guid("principal", resource_id)
            state["tenantId"] = MOCK_TENANT_ID
        elif args.typ == "azure-native:containerservice:ManagedCluster":
            state["fqdn"] = f"{name}.hcp.{inputs.get('location')}.azmk8s.io"
            identity = dict(inputs.get("identity") or {})
            # Inputs list the identity ids; Azure answers with a map keyed by id.
            identity["userAssignedIdentities"] = {
                identity_id: {
                    "clientId": _mock_guid("client", identity_id),
                    "principalId": _mock_guid("principal", identity_id),
                }
                for identity_id in identity.get("userAssignedIdentities") or []
            }
            state["identity"] = identity
            state["oidcIssuerProfile"] = {
                "enabled": True,
                "issuerURL": f"https://{inputs.get('location')}.oic.prod-aks.azure.com/{MOCK_TENANT_ID}/{_mock_guid(name)}/",
            }
            state["identityProfile"] = {
                "kubeletidentity": {
                    "clientId": _mock_guid("kubelet-client", name),
                    "objectId": _mock_guid("kubelet-object", name),
                    "resourceId": f"{resource_id}-agentpool",
                }
            }
        return resource_id, state

    def call(self, args: pulumi.runtime.MockCallArgs) -> dict[str, Any]:  # type: ignore[override]
        self.invokes.append((args.token, dict(args.args)))
        if args.token == "azure-native:authorization:getClientConfig":
            return {
                "clientId": _mock_guid("deployer-client"),
                "objectId": MOCK_DEPLOYER_OBJECT_ID,
                "subscriptionId": MOCK_SUBSCRIPTION_ID,
                "tenantId": MOCK_TENANT_ID,
            }
        if args.token == "azure-native:authorization:getClientToken":
            # An opaque bearer token of the deployer (the program only hands it to the registry).
            return {"token": "mock-entra-access-token." + hashlib.sha256(str(args.args).encode()).hexdigest()[:16]}
        if args.token in (
            "azure-native:containerservice:listManagedClusterAdminCredentials",
            "azure-native:containerservice:listManagedClusterUserCredentials",
        ):
            cluster = str(args.args.get("resourceName", "cluster"))
            exec_login = args.token.endswith("UserCredentials")
            encoded = base64.b64encode(_kubeconfig(cluster, exec_login).encode()).decode()
            return {"kubeconfigs": [{"name": "clusterUser" if exec_login else "clusterAdmin", "value": encoded}]}
        raise NotImplementedError(f"the mock engine has no answer for invoke {args.token}")


def _built_image(inputs: Mapping[str, Any]) -> dict[str, Any]:
    """What docker-build answers after a push: the manifest digest, `<tag>@<digest>`, the context hash.

    The digest is a sha256 over the Dockerfile's text, the context location, the platforms and the
    tags, so it has the real form (`sha256:` + 64 hex), is stable run to run, and changes when the
    Dockerfile does — like a real build's. No Docker daemon is involved.
    """
    context = str((inputs.get("context") or {}).get("location") or ".")
    dockerfile = str((inputs.get("dockerfile") or {}).get("location") or f"{context}/Dockerfile")
    path = Path(dockerfile) if Path(dockerfile).is_absolute() else REPO_ROOT / dockerfile
    text = path.read_text() if path.is_file() else str((inputs.get("dockerfile") or {}).get("inline") or "")
    tags = [str(tag) for tag in inputs.get("tags") or []]
    material = "\n".join([text, context, ",".join(map(str, inputs.get("platforms") or [])), *tags])
    digest = "sha256:" + hashlib.sha256(material.encode()).hexdigest()
    context_hash = hashlib.sha256((text + context).encode()).hexdigest()
    return {**inputs, "digest": digest, "ref": f"{tags[0]}@{digest}" if tags else "", "contextHash": context_hash}


STACK_TYPE = "pulumi:pulumi:Stack"


class RecordingMonitor(mocks.MockMonitor):
    """A mock monitor that keeps every registration request's inputs and options."""

    def __init__(self, mock: pulumi.runtime.Mocks) -> None:
        super().__init__(mock)
        self.recorded: list[RecordedResource] = []
        self._engine_urns: dict[str, str] = {}
        """Mock URN → engine URN of every registration so far (parents register before children)."""

    def RegisterResource(self, request: Any) -> Any:  # noqa: N802 - the gRPC method name
        response = super().RegisterResource(request)  # type: ignore[no-untyped-call]
        engine_urn = self._engine_urn(request.parent, request.type, request.name)
        self._engine_urns[response.urn] = engine_urn
        if request.type == STACK_TYPE:
            return response
        inputs = rpc.deserialize_properties(request.object)
        secret_inputs = set()
        for key in request.object.fields:
            _, is_secret = rpc.deserialize_properties_unwrap_secrets(_single_field(request.object, key))
            if is_secret:
                secret_inputs.add(key)
        self.recorded.append(
            RecordedResource(
                urn=response.urn,
                type=request.type,
                name=request.name,
                parent=request.parent,
                custom=bool(request.custom),
                inputs=_plain(inputs),
                secret_inputs=frozenset(secret_inputs),
                protect=bool(request.protect) if request.HasField("protect") else False,
                provider=request.provider,
                deleted_with=request.deletedWith,
                dependencies=tuple(request.dependencies),
                additional_secret_outputs=tuple(request.additionalSecretOutputs),
                ignore_changes=tuple(request.ignoreChanges),
                id=response.id,
                outputs=_plain(rpc.deserialize_properties(response.object)) if response.object else {},
                engine_urn=engine_urn,
                aliases=self._alias_urns(request),
            )
        )
        return response

    def _engine_parent(self, parent: str) -> str:
        """A parent URN as the engine has it: recorded, or (a URN the program computed with
        `pulumi.create_urn` from a mock URN) without the stack type the mock leaves in it."""
        if not parent:
            return ""
        if parent in self._engine_urns:
            return self._engine_urns[parent]
        prefix, qualified, name = parent.rsplit("::", 2)
        return f"{prefix}::{qualified.removeprefix(STACK_TYPE + '$')}::{name}"

    def _engine_urn(self, parent: str, type_: str, name: str, stack: str = "", project: str = "") -> str:
        """`urn:pulumi:<stack>::<project>::<qualified type>::<name>`: the qualified type is the
        parent's qualified type, `$`, the type (just the type under the stack or without parent)."""
        engine_parent = self._engine_parent(parent)
        parent_type = engine_parent.split("::")[2] if engine_parent else ""
        qualified = f"{parent_type}${type_}" if parent_type and parent_type != STACK_TYPE else type_
        return f"urn:pulumi:{stack or pulumi.get_stack()}::{project or pulumi.get_project()}::{qualified}::{name}"

    def _alias_urns(self, request: Any) -> tuple[str, ...]:
        """The engine URNs of the request's aliases: an alias is a URN, or a spec whose empty fields
        mean "as now" (name, type, stack, project, parent) and whose `noParent` means top-level."""
        urns = []
        for alias in request.aliases:
            if alias.urn:
                urns.append(self._engine_parent(alias.urn))
                continue
            spec = alias.spec
            parent = "" if spec.noParent else (spec.parentUrn or request.parent)
            urns.append(
                self._engine_urn(parent, spec.type or request.type, spec.name or request.name, spec.stack, spec.project)
            )
        return tuple(urns)


def _single_field(struct: Any, key: str) -> Any:
    single = struct_pb2.Struct()
    single.fields[key].CopyFrom(struct.fields[key])
    return single


def _plain(value: Any) -> Any:
    """Strip the SDK's secret wrappers so recorded inputs are plain data."""
    if isinstance(value, dict):
        if value.get(rpc._special_sig_key) == rpc._special_secret_sig:
            return _plain(value.get("value"))
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


async def _resolve(value: Any) -> StackOutput:
    output = pulumi.Output.from_input(value)
    resolved = await output.future(with_unknowns=True)
    return StackOutput(_plain(resolved), await output.is_secret())


def _run_program(program: Path) -> None:
    runpy.run_path(str(program), run_name="__main__")


def stack_config(stack: str, project_dir: Path = REPO_ROOT) -> tuple[dict[str, str], list[str]]:
    """The engine-style configuration of a committed stack file."""
    path = project_dir / f"Pulumi.{stack}.yaml"
    if not path.exists():
        raise FileNotFoundError(f"no stack file {path.name} in {project_dir}")
    return engine_config_from_stack_file(path)


def evaluate(
    stack: str,
    config: Mapping[str, str] | None = None,
    secret_keys: list[str] | None = None,
    *,
    project_dir: Path = REPO_ROOT,
    registry_snapshot: Path | None = EXAMPLE_REGISTRY_SNAPSHOT,
    environ: Mapping[str, str] | None = None,
    now: datetime = MOCK_NOW,
    platform_outputs: Mapping[str, Any] | None = None,
) -> Evaluation:
    """Run `<project_dir>/__main__.py` for `stack` under mocks and record everything it declares.

    `config` (namespaced keys, engine text values) defaults to `Pulumi.<stack>.yaml`. The program
    plans model rollouts from `registry_snapshot` (None: from the live registry, as `pulumi up`
    does); `environ` adds environment variables for the run (e.g. `MLFLOW_TRACKING_URI`); `now` is
    the time the run happens at (time-based keepers such as the credential rotation). The
    program's exception, if any, is returned in `Evaluation.error` with what was declared before it.
    A `StackReference` (the models project's read of the platform) is answered with
    `platform_outputs`, by default `examples/platform-outputs.<stack>.json` when it exists.
    """
    if config is None:
        config, secret_keys = stack_config(stack, project_dir)
    if str(project_dir) not in sys.path:
        sys.path.insert(0, str(project_dir))
    if platform_outputs is None and platform_outputs_example(stack).exists():
        platform_outputs = yaml.safe_load(platform_outputs_example(stack).read_text())
    project = (yaml.safe_load((project_dir / "Pulumi.yaml").read_text()) or {}).get("name", PROJECT)

    mocks = AzureLikeMocks(now, platform_outputs)
    monitor = RecordingMonitor(mocks)
    runtime_settings.ROOT.set(None)
    pulumi.runtime.set_mocks(monitor.mocks, project=str(project), stack=stack, preview=True, monitor=monitor)
    pulumi.runtime.set_all_config(dict(config), secret_keys or [])
    runtime_settings.SETTINGS.rpc_manager.clear()
    runtime_settings.SETTINGS.outputs.clear()

    evaluation = Evaluation(stack)
    program = project_dir / "__main__.py"
    overrides = dict(environ or {})
    overrides[SNAPSHOT_ENV] = str(registry_snapshot) if registry_snapshot is not None else ""
    saved = {key: os.environ.get(key) for key in overrides}
    os.environ.update(overrides)
    # The SDK allocates tens of thousands of short-lived futures and tasks per run; the cyclic
    # collector rescanning them is a third of the run time (scripts/benchmark_preview.py), and
    # a run is bounded, so it is paused for the run and resumed after.
    collecting = gc.isenabled()
    gc.disable()
    try:
        _sync_await(run_pulumi_func(lambda: _run_program(program)))
    except Exception as error:  # noqa: BLE001 - the caller decides how to report the program's failure
        evaluation.error = error
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        if collecting:
            gc.enable()
    evaluation.resources = list(monitor.recorded)
    evaluation.invokes = list(mocks.invokes)
    root = runtime_settings.get_root_resource()
    if evaluation.error is None and isinstance(root, pulumi.runtime.stack.Stack):
        for name, value in root.outputs.items():
            evaluation.outputs[name] = _sync_await(_resolve(value))
    return evaluation
