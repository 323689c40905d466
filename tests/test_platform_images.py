"""The platform's images: built and pushed by the program, and every own pod runs one by digest.

The builds are pulumi-docker-build `Image` registrations answered by the mock engine (a digest of
the real form, computed from the Dockerfile); no Docker daemon is involved. The registry's Entra
token exchange is exercised against a local HTTP endpoint standing in for Azure Container
Registry's `/oauth2/exchange` (no registry is reachable here).
"""

from __future__ import annotations

import json
import threading
import urllib.parse
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from components.azure.platform_images import ACR_TOKEN_USER, RegistryLoginError, exchange_entra_token
from harness.mock_engine import REPO_ROOT, Evaluation, RecordedResource, _built_image
from layout.images import PLATFORM_IMAGES, UPSTREAM_IMAGES, image_by_name, is_digest_reference
from policies.kubernetes import POD_SPEC_PATHS, containers, is_kubernetes_object
from settings import SettingsError
from tests.conftest import evaluate_with

P = "mlops-platform:"
IMAGE = "docker-build:index:Image"
WORKLOAD_KINDS = ("Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob", "Pod")


def _workloads(evaluation: Evaluation) -> list[RecordedResource]:
    return [
        r
        for r in evaluation.resources
        if is_kubernetes_object(r.type) and r.type.rsplit(":", 1)[-1] in POD_SPEC_PATHS and r.custom
    ]


def _built_refs(evaluation: Evaluation) -> dict[str, RecordedResource]:
    """`<registry>/<repository>@<digest>` of every declared build → its registration."""
    refs = {}
    for build in evaluation.of_type(IMAGE):
        digest = _built_image(build.inputs)["digest"]
        tag = build.inputs["tags"][0]
        refs[f"{tag.rpartition(':')[0]}@{digest}"] = build
    return refs


def _prebuilt(evaluation_config: dict[str, str]) -> set[str]:
    return set(json.loads(evaluation_config.get(P + "prebuiltImages", "{}")).values())


def assert_every_own_image_is_declared(evaluation: Evaluation, prebuilt: set[str]) -> int:
    """Every container of every workload the program declares runs a digest from a declared build
    (and depends on that build), a configured prebuilt digest, or a reviewed upstream digest."""
    built = _built_refs(evaluation)
    allowed = set(built) | prebuilt | set(UPSTREAM_IMAGES.values())
    checked = 0
    for workload in _workloads(evaluation):
        for label, container in containers(workload.inputs):
            image = container.get("image")
            where = f"{workload.type} {workload.name} {label}"
            assert is_digest_reference(image), f"{where}: {image!r}"
            assert image in allowed, f"{where}: {image!r} is neither built, prebuilt nor a reviewed upstream image"
            assert container.get("imagePullPolicy") == "IfNotPresent", where
            if image in built:
                assert built[image].urn in workload.dependencies, f"{where} does not wait for its build"
            checked += 1
    return checked


def test_every_own_pod_runs_a_declared_build_by_digest(stack: Evaluation) -> None:
    assert assert_every_own_image_is_declared(stack, prebuilt=set()) >= 6
    kinds = {w.type.rsplit(":", 1)[-1] for w in _workloads(stack)}
    assert {"Deployment", "Job", "CronJob"} <= kinds


def test_each_image_is_built_once_and_pushed_to_the_stacks_registry(stack: Evaluation) -> None:
    registry = stack.outputs["containerRegistryLoginServer"].value
    builds = {b.name: b for b in stack.of_type(IMAGE)}
    assert set(builds) == {f"images-{image.name}" for image in PLATFORM_IMAGES}
    for image in PLATFORM_IMAGES:
        inputs = builds[f"images-{image.name}"].inputs
        assert inputs["push"] is True
        assert inputs["platforms"] == ["linux/amd64"]
        assert inputs["tags"] == [f"{registry}/{image.repository}:{image.tag}"]
        cache = f"{registry}/{image.repository}:buildcache"
        assert inputs["cacheFrom"] == [{"registry": {"ref": cache}}]
        [cache_to] = inputs["cacheTo"]
        assert cache_to["registry"]["ref"] == cache and cache_to["registry"]["mode"] == "max"
        assert cache_to["registry"]["imageManifest"] is True and cache_to["registry"]["ociMediaTypes"] is True
        # Paths relative to the repository root (the project directory), so state is portable.
        assert inputs["context"]["location"] == image.context and not Path(image.context).is_absolute()
        assert (REPO_ROOT / inputs["dockerfile"]["location"]).is_file()
        [login] = inputs["registries"]
        assert login["address"] == registry and login["username"] == ACR_TOKEN_USER
        assert "registries" in builds[f"images-{image.name}"].secret_inputs
    assert "images" in {r.name for r in stack.of_type("mlops:azure:PlatformImages")}


def test_mock_digest_is_realistic_and_follows_the_dockerfile(tmp_path: Path) -> None:
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text("FROM scratch\n")
    inputs: dict[str, Any] = {
        "context": {"location": str(tmp_path)},
        "dockerfile": {"location": str(dockerfile)},
        "tags": ["acr.azurecr.io/x:1"],
    }
    first = _built_image(inputs)
    assert first["digest"] == _built_image(inputs)["digest"]
    assert first["ref"] == f"acr.azurecr.io/x:1@{first['digest']}"
    assert is_digest_reference(f"acr.azurecr.io/x@{first['digest']}")
    dockerfile.write_text("FROM scratch\nLABEL changed=yes\n")
    assert _built_image(inputs)["digest"] != first["digest"]


def test_prebuilt_digest_replaces_the_build() -> None:
    prebuilt = "mlopsci.azurecr.io/mlops/mlflow-server@sha256:" + "5e" * 32
    config_value = json.dumps({"mlflow": prebuilt})
    evaluation = evaluate_with("dev", lambda config: config.__setitem__(P + "prebuiltImages", config_value))
    assert evaluation.error is None, evaluation.error
    assert {b.name for b in evaluation.of_type(IMAGE)} == {f"images-{i.name}" for i in PLATFORM_IMAGES} - {
        "images-mlflow"
    }
    assert assert_every_own_image_is_declared(evaluation, prebuilt={prebuilt}) >= 4
    migrate = evaluation.one("kubernetes:batch/v1:Job", "mlflow-migrate")
    assert {c["image"] for _, c in containers(migrate.inputs)} == {prebuilt}


def test_every_image_prebuilt_needs_no_registry_and_no_build() -> None:
    refs = {image.name: f"ci.example.io/{image.repository}@sha256:{'0a' * 32}" for image in PLATFORM_IMAGES}
    evaluation = evaluate_with(
        "dev",
        lambda config: config.update({P + "prebuiltImages": json.dumps(refs), P + "containerRegistry": "false"}),
    )
    assert evaluation.error is None, evaluation.error
    assert evaluation.of_type(IMAGE) == []
    assert evaluation.of_type("azure-native:containerregistry:Registry") == []
    assert assert_every_own_image_is_declared(evaluation, prebuilt=set(refs.values())) >= 6


def test_a_tag_alone_is_refused_naming_the_key() -> None:
    tagged = json.dumps({"mlopsctl": "mlopsci.azurecr.io/mlops/mlopsctl:0.1.0"})
    evaluation = evaluate_with("prod", lambda config: config.__setitem__(P + "prebuiltImages", tagged))
    assert isinstance(evaluation.error, SettingsError)
    assert evaluation.resources == []
    assert evaluation.error.keys == ["prebuiltImages.mlopsctl"]
    assert "a tag alone is refused" in str(evaluation.error)


def test_the_image_list_points_at_real_dockerfiles() -> None:
    for image in PLATFORM_IMAGES:
        assert (REPO_ROOT / image.context).is_dir(), image
        dockerfile = (REPO_ROOT / image.dockerfile).read_text()
        froms = [line.split()[1] for line in dockerfile.splitlines() if line.upper().startswith("FROM ")]
        # Base images are pinned by digest too: a rebuild starts from the same bytes.
        assert froms and all("@sha256:" in base for base in froms), (image.name, froms)
    assert image_by_name("mlflow").context == "images/mlflow"


# --- the registry's Entra token exchange, against a local stand-in for ACR ----------------------


class _AcrStandIn(BaseHTTPRequestHandler):
    """Answers `POST /oauth2/exchange` like ACR: a refresh token for a well-formed access-token grant."""

    requests: list[dict[str, list[str]]] = []
    refuse = False

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        form = urllib.parse.parse_qs(self.rfile.read(length).decode())
        type(self).requests.append({"path": [self.path], "content-type": [self.headers["Content-Type"]], **form})
        if type(self).refuse or self.path != "/oauth2/exchange" or form.get("grant_type") != ["access_token"]:
            self.send_response(401)
            self.end_headers()
            return
        body = json.dumps({"refresh_token": "acr-refresh-for-" + form["access_token"][0]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_: Any) -> None:
        pass


@pytest.fixture
def acr_stand_in() -> Iterator[str]:
    _AcrStandIn.requests = []
    _AcrStandIn.refuse = False
    server = ThreadingHTTPServer(("127.0.0.1", 0), _AcrStandIn)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_entra_token_is_exchanged_for_a_registry_refresh_token(acr_stand_in: str) -> None:
    token = exchange_entra_token(acr_stand_in, "mlopsprodacr.azurecr.io", "tenant-1", "entra-access-token")
    assert token == "acr-refresh-for-entra-access-token"
    [request] = _AcrStandIn.requests
    assert request["path"] == ["/oauth2/exchange"]
    assert request["content-type"] == ["application/x-www-form-urlencoded"]
    assert request["grant_type"] == ["access_token"]
    assert request["service"] == ["mlopsprodacr.azurecr.io"]
    assert request["tenant"] == ["tenant-1"]


def test_a_refused_exchange_names_the_registry_and_the_rights_needed(acr_stand_in: str) -> None:
    _AcrStandIn.refuse = True
    with pytest.raises(RegistryLoginError, match=r"mlopsprodacr\.azurecr\.io refused .* HTTP 401.*AcrPush"):
        exchange_entra_token(acr_stand_in, "mlopsprodacr.azurecr.io", "tenant-1", "entra-access-token")


def test_root_context_keeps_only_what_the_root_context_images_copy() -> None:
    """`.dockerignore` excludes everything, then re-includes exactly the COPY sources of the images
    built from the repository root (mlopsctl, operator-workspace); `COPY --from` copies from a stage."""
    lines = [line.strip() for line in (REPO_ROOT / ".dockerignore").read_text().splitlines()]
    rules = [line for line in lines if line and not line.startswith("#")]
    assert rules[0] == "*"
    included = {rule[1:].rstrip("/") for rule in rules if rule.startswith("!")}
    root_context = [image for image in PLATFORM_IMAGES if image.context == "."]
    assert {image.name for image in root_context} == {"mlopsctl", "operator-workspace"}
    sources = set()
    for image in root_context:
        for line in (REPO_ROOT / image.dockerfile).read_text().splitlines():
            if line.startswith("COPY ") and not line.startswith("COPY --from="):
                *paths, _destination = line.split()[1:]
                sources |= {path.rstrip("/") for path in paths}
    assert sources == included
    for source in sources:
        assert list(REPO_ROOT.glob(source)), f"{source} is copied but does not exist"


def test_platform_images_output_lists_every_image_by_digest(stack: Evaluation) -> None:
    output = stack.outputs["platformImages"]
    assert not output.secret
    assert set(output.value) == {image.name for image in PLATFORM_IMAGES}
    assert all(is_digest_reference(ref) for ref in output.value.values())
    assert set(output.value.values()) == set(_built_refs(stack))
