"""The models project (`models/`): its settings, its project file and the outputs contract it reads."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from harness import cli, config_reference
from harness.mock_engine import MODELS_DIR, Evaluation, evaluate, platform_outputs_example, stack_config
from harness.policy_check import mandatory
from harness.preview import check, render_text
from settings import SettingsError, config_key
from settings.models import ModelsSettings

ROOT = Path(__file__).resolve().parent.parent
M = "mlops-models:"


def test_examples_of_the_platform_outputs_are_what_the_platform_exports(stack: Evaluation) -> None:
    """examples/platform-outputs.<stack>.json (read by the models preview) = the platform's real outputs."""
    example = json.loads(platform_outputs_example(stack.stack).read_text())
    assert example == cli.platform_outputs_document(stack), "run: python -m mlopsctl platform-outputs --write"


def test_models_project_file() -> None:
    project = yaml.safe_load((MODELS_DIR / "Pulumi.yaml").read_text())
    assert project["name"] == "mlops-models"
    assert project["runtime"]["name"] == "python"
    # Its own requirements, installed into the python3 on PATH (the workspace image's venv); the
    # options and requirements are checked in tests/test_pulumi_projects.py.
    assert project["runtime"]["options"] == {"toolchain": "pip"}
    assert "-r ../requirements.txt" not in (MODELS_DIR / "requirements.txt").read_text()
    keys = {
        config_key(name, ModelsSettings)
        for name, field in ModelsSettings.model_fields.items()
        if not config_reference.is_structured(field.annotation)
    }
    assert set(project["config"]) == keys
    main = (MODELS_DIR / "__main__.py").read_text()
    assert "sys.path.insert(0, str(Path(__file__).resolve().parent.parent))" in main
    assert len(main.splitlines()) < 80


def _with(stack: str, change: dict[str, str]) -> Evaluation:
    config, secret_keys = stack_config(stack, MODELS_DIR)
    config.update(change)
    return evaluate(stack, config, secret_keys, project_dir=MODELS_DIR)


def test_bad_rollout_settings_fail_before_anything_naming_every_key() -> None:
    models = [
        {"name": "fraud-detector", "strategy": "blue-green"},
        {"name": "churn-predictor", "steps": [50, 20]},
    ]
    evaluation = _with("dev", {M + "rollout": json.dumps({"models": models}), M + "plattformStack": "x"})
    assert isinstance(evaluation.error, SettingsError)
    assert evaluation.resources == []
    message = str(evaluation.error)
    assert "mlops-models:rollout.models[0] (fraud-detector).strategy" in message
    assert "mlops-models:rollout.models[1] (churn-predictor).steps" in message
    assert "mlops-models:plattformStack: found an unknown key" in message and "platformStack" in message


def test_platform_stack_must_be_fully_qualified() -> None:
    evaluation = _with("prod", {M + "platformStack": "prod"})
    assert isinstance(evaluation.error, SettingsError)
    assert evaluation.error.keys == ["platformStack"]


def test_the_platform_stack_files_no_longer_carry_rollouts() -> None:
    for stack in ("dev", "prod"):
        document = yaml.safe_load((ROOT / f"Pulumi.{stack}.yaml").read_text())
        assert not any(key.endswith(":rollout") for key in document["config"])


def test_the_policy_pack_passes_on_the_models_stacks(models_stack: Evaluation) -> None:
    """Policies run on both projects; subscription-level rules (Defender) are the platform's only."""
    report = check(models_stack)
    assert not report.failed, render_text(report)
    assert report.schema_problems == []


def test_subscription_rules_still_bind_the_platform_stack() -> None:
    """The models-stack exemption does not leak: prod without Defender still fails."""
    config, secret_keys = stack_config("prod")
    config["mlops-platform:defenderForContainers"] = "false"
    evaluation = evaluate("prod", config, secret_keys)
    assert evaluation.error is None, evaluation.error
    assert "defender-for-containers" in {v.policy for v in mandatory(check(evaluation).violations)}


def test_ci_previews_both_projects() -> None:
    """`make preview STACK=<s>` (what .ci/run and the workflow run) previews the platform and models."""
    makefile = (ROOT / "Makefile").read_text()
    recipe = makefile.split("\npreview:", 1)[1].split("\n\n", 1)[0]
    assert "mlopsctl preview --stack $(STACK)" in recipe
    assert "--project models --stack $(STACK)" in recipe and "platform-outputs.$(STACK).json" in recipe
    workflow = (ROOT / ".github" / "workflows" / "infrastructure.yml").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    for stack in ("dev", "prod"):
        assert f"make preview STACK={stack}" in workflow and f"make preview STACK={stack}" in ci
