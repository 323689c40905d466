"""The models stack's own MLflow user against a real MLflow (basic-auth, PostgreSQL): it plans, it cannot write.

`mlopsctl registry ensure-reader` keeps the user, its password and its grants; these tests run the
logic and the command against the dev deployment (`default_permission = READ`). Grants are
explicit, so the same holds on prod's `NO_PERMISSIONS` default (the module docstring of
mlopsctl/registry_access.py says what was seen there).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from mlflow import MlflowClient

from harness.mock_engine import MODELS_DIR, evaluate, stack_config
from mlopsctl.registry_access import RestReaderAdmin, ensure_reader
from tests.services import processes
from tests.services.processes import base_env
from tests.services.registry import register_run_versions

READER = "models-reader"
PASSWORD = "reader-Password-1234"
MODELS = ("access-managed",)
NOT_YET = "access-not-yet-registered"
"""A managed model nobody has registered yet: the reader holds READ on the name already."""


@pytest.fixture(scope="module")
def managed(registry: MlflowClient) -> MlflowClient:
    register_run_versions(registry, MODELS[0], 2, mlmodel="artifact_path: model\nflavors:\n  python_function: {}\n")
    registry.set_registered_model_alias(MODELS[0], "champion", "1")
    registry.set_model_version_tag(MODELS[0], "1", "validation", "passed")
    return registry


def _admin(mlflow_stack: Any) -> RestReaderAdmin:
    return RestReaderAdmin(mlflow_stack.tracking_uri, mlflow_stack.admin_username, mlflow_stack.admin_password)


@pytest.fixture(scope="module")
def reader(mlflow_stack: Any, managed: MlflowClient) -> RestReaderAdmin:
    admin = _admin(mlflow_stack)
    ensure_reader(admin, READER, PASSWORD, (*MODELS, NOT_YET))
    return admin


def test_ensure_creates_grants_and_then_changes_nothing(mlflow_stack: Any, managed: MlflowClient) -> None:
    admin, user = _admin(mlflow_stack), "models-reader-idempotence"
    first = ensure_reader(admin, user, "first-Password-1234", MODELS)
    # Explicit grants even where the default permission (dev: READ) would already let it read.
    assert first == {
        "user": "created",
        "password": "unchanged",
        f"model:{MODELS[0]}": "created",
        "experiments:*": "created",
    }
    assert ensure_reader(admin, user, PASSWORD, MODELS)["password"] == "updated"  # the Key Vault value changed
    # Someone widened a grant by hand, and granted a model that is no longer managed: put back, removed.
    admin.revoke(user, "registered_model", MODELS[0])
    admin.grant(user, ("registered_model", MODELS[0], "EDIT"))
    admin.grant(user, ("registered_model", "no-longer-served", "READ"))
    fixed = ensure_reader(admin, user, PASSWORD, MODELS)
    assert fixed[f"model:{MODELS[0]}"] == "updated" and fixed["model:no-longer-served"] == "removed"
    again = ensure_reader(admin, user, PASSWORD, MODELS)
    assert set(again.values()) == {"unchanged"}, again
    assert sorted(admin.list_grants(user)) == [("experiment", "*", "READ"), ("registered_model", MODELS[0], "READ")]


@pytest.fixture()
def as_reader(mlflow_stack: Any) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD")}
    os.environ.update({"MLFLOW_TRACKING_USERNAME": READER, "MLFLOW_TRACKING_PASSWORD": PASSWORD})
    yield
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


def test_the_reader_plans(mlflow_stack: Any, reader: RestReaderAdmin, managed: MlflowClient, as_reader: None) -> None:
    config, secret_keys = stack_config("dev", MODELS_DIR)
    config["mlops-models:rollout"] = json.dumps(
        {"trackingUri": mlflow_stack.tracking_uri, "models": [{"name": MODELS[0], "strategy": "canary"}]}
    )
    environ = {"MLFLOW_TRACKING_USERNAME": READER, "MLFLOW_TRACKING_PASSWORD": PASSWORD}
    evaluation = evaluate("dev", config, secret_keys, project_dir=MODELS_DIR, registry_snapshot=None, environ=environ)
    assert evaluation.error is None, evaluation.error
    assert [
        r.inputs["metadata"]["name"]
        for r in evaluation.of_type("kubernetes:machinelearning.seldon.io/v1:SeldonDeployment")
    ] == [MODELS[0]]
    assert managed.get_model_version_by_alias(MODELS[0], "champion").version == "1"


NAME = MODELS[0]
WRITES: dict[str, tuple[str, str, dict[str, Any]]] = {
    "set alias": ("POST", "registered-models/alias", {"name": NAME, "alias": "champion", "version": "2"}),
    "delete alias": ("DELETE", "registered-models/alias", {"name": NAME, "alias": "champion"}),
    "set model tag": ("POST", "registered-models/set-tag", {"name": NAME, "key": "owner", "value": "reader"}),
    "delete model tag": ("DELETE", "registered-models/delete-tag", {"name": NAME, "key": "owner"}),
    "set version tag": (
        "POST",
        "model-versions/set-tag",
        {"name": NAME, "version": "1", "key": "validation", "value": "failed"},
    ),
    "delete version tag": ("DELETE", "model-versions/delete-tag", {"name": NAME, "version": "1", "key": "validation"}),
    "update version": ("PATCH", "model-versions/update", {"name": NAME, "version": "1", "description": "x"}),
    "delete version": ("DELETE", "model-versions/delete", {"name": NAME, "version": "2"}),
    "transition stage": (
        "POST",
        "model-versions/transition-stage",
        {"name": NAME, "version": "1", "stage": "Production", "archive_existing_versions": "false"},
    ),
    "create version": ("POST", "model-versions/create", {"name": NAME, "source": "models:/m-0123"}),
    "update model": ("PATCH", "registered-models/update", {"name": NAME, "description": "x"}),
    "rename model": ("POST", "registered-models/rename", {"name": NAME, "new_name": "renamed"}),
    "delete model": ("DELETE", "registered-models/delete", {"name": NAME}),
}


@pytest.mark.parametrize("write", sorted(WRITES))
def test_the_reader_cannot_write_a_managed_model(
    mlflow_stack: Any, reader: RestReaderAdmin, managed: MlflowClient, write: str
) -> None:
    method, endpoint, body = WRITES[write]
    answer = requests.request(
        method, f"{mlflow_stack.tracking_uri}/api/2.0/mlflow/{endpoint}", json=body, auth=(READER, PASSWORD), timeout=10
    )
    assert answer.status_code == 403, (write, answer.status_code, answer.text[:200])
    # Nothing moved: the alias, the tag and both versions are as the admin left them.
    assert managed.get_model_version_by_alias(NAME, "champion").version == "1"
    assert managed.get_model_version(NAME, "1").tags.get("validation") == "passed"
    assert {v.version for v in managed.search_model_versions(f"name='{NAME}'")} == {"1", "2"}


def test_creating_a_model_is_not_blockable_and_does_not_reach_a_managed_one(
    mlflow_stack: Any, reader: RestReaderAdmin, managed: MlflowClient
) -> None:
    """Basic-auth lets any authenticated user create a registered model (without workspaces the
    only check is a DENY on the type, which would deny reading the managed models too). The served
    models are the names in the models stack, so a new name is served by nobody. A managed name not
    registered yet is the case that matters: the reader holds READ on it before it exists."""
    url, auth = f"{mlflow_stack.tracking_uri}/api/2.0/mlflow", (READER, PASSWORD)
    created = requests.post(f"{url}/registered-models/create", json={"name": "reader-scratch"}, auth=auth, timeout=10)
    assert created.status_code == 200, created.text
    squatted = requests.post(f"{url}/registered-models/create", json={"name": NOT_YET}, auth=auth, timeout=10)
    assert squatted.status_code == 200, squatted.text
    version = requests.post(
        f"{url}/model-versions/create", json={"name": NOT_YET, "source": "models:/m-0123"}, auth=auth, timeout=10
    )
    assert version.status_code == 403, version.text[:200]


def _cli(mlflow_stack: Any, *args: str, admin_password: str | None = None) -> subprocess.CompletedProcess[str]:
    """`mlopsctl registry ensure-reader` as the Job runs it: admin from the environment, reader password a file."""
    env = {
        **base_env(),
        "PYTHONPATH": str(processes.REPO_ROOT),
        "MLFLOW_TRACKING_URI": mlflow_stack.tracking_uri,
        "MLFLOW_TRACKING_USERNAME": mlflow_stack.admin_username,
        "MLFLOW_TRACKING_PASSWORD": admin_password or mlflow_stack.admin_password,
    }
    command = [sys.executable, "-m", "mlopsctl", "registry", "ensure-reader", "--wait-seconds", "30", *args]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=300, check=False)


def test_the_command_is_idempotent(mlflow_stack: Any, managed: MlflowClient, tmp_path: Path) -> None:
    password_file, models_file = tmp_path / "password", tmp_path / "models"
    password_file.write_text("cli-Reader-password-1234\n")
    models_file.write_text(f"{MODELS[0]}\n\nanother-model\n")
    args = ["--username", "cli-reader", "--password-file", str(password_file), "--models-file", str(models_file)]
    first = _cli(mlflow_stack, *args, "--model", MODELS[0])
    assert first.returncode == 0, first.stderr
    lines = [json.loads(line) for line in first.stdout.splitlines()]
    assert {line["item"]: line["action"] for line in lines} == {
        "user": "created",
        "password": "unchanged",
        f"model:{MODELS[0]}": "created",
        "model:another-model": "created",
        "experiments:*": "created",
    }
    second = _cli(mlflow_stack, *args)
    assert second.returncode == 0, second.stderr
    assert {json.loads(line)["action"] for line in second.stdout.splitlines()} == {"unchanged"}, second.stdout
    # The models of a models stack file, as the platform's Job could read them (here: dev's three).
    third = _cli(mlflow_stack, "--username", "cli-reader", "--password-file", str(password_file), "--stack", "dev")
    actions = {json.loads(line)["item"]: json.loads(line)["action"] for line in third.stdout.splitlines()}
    assert actions[f"model:{MODELS[0]}"] == "removed" and actions["model:fraud-detector"] == "created", actions


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--model", "m"], "the following arguments are required: --password-file"),
        (["--password-file", "{missing}", "--model", "m"], "cannot read password file"),
        (["--password-file", "{empty}", "--model", "m"], "is empty"),
        (["--password-file", "{password}"], "no managed models"),
        (["--password-file", "{password}", "--model", "bad name"], "bad model name 'bad name'"),
        (["--password-file", "{password}", "--stack", "staging"], "no models stack file"),
        (["--password-file", "{password}", "--model", "m", "--username", "admin"], "is the admin"),
    ],
)
def test_bad_input_exits_2_in_one_line(mlflow_stack: Any, tmp_path: Path, args: list[str], message: str) -> None:
    (tmp_path / "empty").write_text("\n")
    (tmp_path / "password").write_text("a-Password-1234")
    paths = {name: str(tmp_path / name) for name in ("missing", "empty", "password")}
    args = [a.format(**paths) for a in args]
    if "admin" in args:
        args[args.index("admin")] = mlflow_stack.admin_username
    result = _cli(mlflow_stack, *args)
    assert result.returncode == 2, (result.returncode, result.stderr)
    assert result.stdout == ""
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert message in result.stderr
