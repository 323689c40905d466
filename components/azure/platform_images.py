"""The platform's own images: built from `images/` and pushed to the stack's container registry.

Every entry of `layout.images.PLATFORM_IMAGES` becomes one pulumi-docker-build `Image` (BuildKit,
`linux/amd64`, pushed with a human-readable tag), unless the stack pins it prebuilt by digest
(`prebuiltImages`). `refs[name]` is `<registry>/<repository>@sha256:<digest>` built from the
build's `digest` output, so a pod that uses it depends on the build: the engine pushes the image
before it creates the pod, and a rebuilt image rolls the pods.

Registry credentials come from the registry and the deployer's Entra identity, not from an admin
user (the registry has none) nor a stored password: the program asks the azure-native provider
for the deployer's access token (`getClientToken`) for the registry's own audience
(`REGISTRY_TOKEN_AUDIENCE`) and exchanges it at the registry's
`/oauth2/exchange` endpoint for an ACR refresh token (valid about three hours), which BuildKit
uses with the fixed user name `00000000-0000-0000-0000-000000000000` — the exchange `az acr
login --expose-token` performs. The deployer needs push rights on the registry (Owner,
Contributor or AcrPush). Previews never push (docker-build builds without exporting), so the
exchange only runs on `pulumi up`; docker-build ignores registry password changes in its diff,
so a fresh token every `up` rebuilds nothing.

The token is asked for `https://containerregistry.azure.net`, not the provider's default Azure
Resource Manager audience: the exchange accepts an ARM token only while the registry's
`azureADAuthenticationAsArmPolicy` is enabled (the default, which hardened registries turn off),
and a registry-audience token in every case.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_docker_build as docker_build
from pulumi_azure_native import authorization

from layout.images import BUILD_PLATFORM, PlatformImage, digest_reference

BUILD_CACHE_TAG = "buildcache"
"""Tag of each repository's BuildKit layer cache (never run by a pod)."""

REGISTRY_TOKEN_AUDIENCE = "https://containerregistry.azure.net"
"""The Entra audience of Azure Container Registry (`getClientToken`'s `endpoint`, used verbatim by
the azure-native provider): the exchange does not depend on `azureADAuthenticationAsArmPolicy`."""

ACR_TOKEN_USER = "00000000-0000-0000-0000-000000000000"
"""The user name ACR expects with a refresh token obtained by the Entra token exchange."""


class RegistryLoginError(RuntimeError):
    """The registry refused the Entra token exchange (no push rights, wrong tenant, network)."""


def exchange_entra_token(endpoint: str, service: str, tenant_id: str, access_token: str, timeout: float = 30) -> str:
    """Exchange an Entra access token for an ACR refresh token (`POST <endpoint>/oauth2/exchange`).

    `endpoint` is `https://<login server>`; `service` the login server. Raises `RegistryLoginError`
    naming the registry when the exchange fails.
    """
    body = urllib.parse.urlencode(
        {"grant_type": "access_token", "service": service, "tenant": tenant_id, "access_token": access_token}
    ).encode()
    request = urllib.request.Request(
        f"{endpoint.rstrip('/')}/oauth2/exchange",
        data=body,
        method="POST",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            answer = json.loads(response.read())
    except urllib.error.HTTPError as error:
        raise RegistryLoginError(
            f"registry {service} refused the Entra token exchange with HTTP {error.code}: the deployer needs "
            "push rights on it (Owner, Contributor or AcrPush)"
        ) from error
    except (urllib.error.URLError, OSError, ValueError) as error:
        raise RegistryLoginError(f"registry {service}: Entra token exchange failed: {error}") from error
    token = answer.get("refresh_token") if isinstance(answer, dict) else None
    if not isinstance(token, str) or not token:
        raise RegistryLoginError(f"registry {service}: the token exchange answered without a refresh_token")
    return token


@dataclass(frozen=True)
class BuildRegistry:
    """Where the builds push: the registry's login server and the tenant of its Entra tokens."""

    login_server: pulumi.Output[str]
    tenant_id: pulumi.Input[str]


@dataclass(frozen=True)
class PlatformImagesArgs:
    images: Sequence[PlatformImage]
    """What to build (normally `layout.images.PLATFORM_IMAGES`)."""
    registry: BuildRegistry | None
    """The stack's container registry; None only when every image is prebuilt."""
    prebuilt: Mapping[str, str] = field(default_factory=dict)
    """Image name → `<registry>/<repository>@sha256:<digest>`: not built, used as given."""


class PlatformImages(pulumi.ComponentResource):
    """Builds and pushes the platform's images; `refs` are their digest references for the pods."""

    refs: dict[str, pulumi.Output[str]]

    def __init__(self, name: str, args: PlatformImagesArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlops:azure:PlatformImages", name, None, opts)
        self.refs = {}
        to_build = [image for image in args.images if image.name not in args.prebuilt]
        registries: pulumi.Output[list[docker_build.RegistryArgs]] | None = None
        if to_build:
            if args.registry is None:
                raise ValueError(f"no registry to push {[i.name for i in to_build]} to, and no prebuilt digest")
            registries = _push_credentials(args.registry)
        for image in args.images:
            if image.name in args.prebuilt:
                self.refs[image.name] = pulumi.Output.from_input(args.prebuilt[image.name])
                continue
            assert args.registry is not None and registries is not None
            login_server = args.registry.login_server
            # Layer cache kept next to the image in the same registry, so an ephemeral CI runner
            # rebuilds only what changed (ACR stores BuildKit caches as OCI image manifests).
            cache = pulumi.Output.concat(login_server, "/", image.repository, ":", BUILD_CACHE_TAG)
            build = docker_build.Image(
                f"{name}-{image.name}",
                context=docker_build.BuildContextArgs(location=image.context),
                dockerfile=docker_build.DockerfileArgs(location=image.dockerfile),
                platforms=[docker_build.Platform(BUILD_PLATFORM)],
                tags=[pulumi.Output.concat(login_server, "/", image.repository, ":", image.tag)],
                labels={
                    "org.opencontainers.image.title": image.name,
                    "org.opencontainers.image.version": image.tag,
                },
                push=True,
                registries=registries,
                cache_from=[docker_build.CacheFromArgs(registry=docker_build.CacheFromRegistryArgs(ref=cache))],
                cache_to=[
                    docker_build.CacheToArgs(
                        registry=docker_build.CacheToRegistryArgs(
                            ref=cache,
                            mode=docker_build.CacheMode.MAX,
                            image_manifest=True,
                            oci_media_types=True,
                            ignore_error=True,
                        )
                    )
                ],
                opts=pulumi.ResourceOptions(parent=self),
            )
            self.refs[image.name] = _reference(login_server, image.repository, build.digest)
        self.register_outputs({"refs": self.refs})


def _reference(login_server: pulumi.Output[str], repository: str, digest: pulumi.Output[str]) -> pulumi.Output[str]:
    def join(parts: list[str]) -> str:
        return digest_reference(parts[0], repository, parts[1])

    return pulumi.Output.all(login_server, digest).apply(join)


def _push_credentials(registry: BuildRegistry) -> pulumi.Output[list[docker_build.RegistryArgs]]:
    """The deployer's Entra token exchanged for a registry refresh token (secret; `up` only)."""
    access_token = authorization.get_client_token_output(endpoint=REGISTRY_TOKEN_AUDIENCE).token

    def login(parts: list[str]) -> pulumi.Output[str]:
        login_server, tenant_id, token = parts
        if pulumi.runtime.is_dry_run():
            # Previews build without pushing: no credential is needed, none is minted.
            return pulumi.Output.secret("preview-does-not-push")
        return pulumi.Output.secret(exchange_entra_token(f"https://{login_server}", login_server, tenant_id, token))

    password: pulumi.Output[str] = pulumi.Output.all(registry.login_server, registry.tenant_id, access_token).apply(
        login
    )
    return pulumi.Output.all(registry.login_server, password).apply(
        lambda parts: [docker_build.RegistryArgs(address=parts[0], username=ACR_TOKEN_USER, password=parts[1])]
    )
