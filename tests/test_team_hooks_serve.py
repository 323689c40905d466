"""`mlopsctl webhook serve --team`: how a team's hook is built from what the pod is given (its models
stack file, its secret file), and the one-line usage errors. The delivery path itself runs against
real MLflow in tests/test_team_hooks_delivery.py."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from mlopsctl.cli import main
from mlopsctl.webhook_teams import TeamSpecError, parse_team_spec, team_watch
from rollout.planner import PLAN_TAGS
from tests.services.webhooks import StandInApiServer

TAGS = frozenset(PLAN_TAGS)


def _models_file(directory: Path, stack: str, team: str, model: str = "churn", extra: str = "") -> None:
    (directory / f"Pulumi.{stack}.yaml").write_text(
        "config:\n"
        "  mlops-models:platformStack: organization/mlops-platform/dev\n"
        f"  mlops-models:team: {team}\n"
        "  mlops-models:rollout:\n"
        "    models:\n"
        f"      - name: {model}\n"
        "        strategy: canary\n"
        "        steps: [10, 100]\n"
        "        stableAlias: prod\n"
        f"{extra}"
    )


def test_a_teams_watch_is_its_models_stack_file(tmp_path: Path) -> None:
    _models_file(tmp_path, "fraud-dev", "fraud")
    watch, problem = team_watch("fraud", "fraud-dev", tmp_path, TAGS)
    assert problem is None
    assert {name: set(m.aliases) for name, m in watch.models.items()} == {"churn": {"prod", "challenger"}}
    assert watch.tag_keys == TAGS


def test_the_committed_team_file_is_read() -> None:
    from layout.paths import MODELS_DIR  # noqa: PLC0415

    watch, problem = team_watch("fraud", "fraud-dev", MODELS_DIR, TAGS)
    assert problem is None and list(watch.models) == ["fraud-detector"]


@pytest.mark.parametrize(
    ("write", "reason"),
    [
        (None, "no models stack file Pulumi.fraud-dev.yaml"),
        ("churn", "is team 'churn''s, not 'fraud''s"),
        ("bad", "bad setting(s)"),
    ],
)
def test_a_missing_foreign_or_bad_team_file_leaves_that_team_an_empty_watch(
    tmp_path: Path, write: str | None, reason: str
) -> None:
    if write == "churn":
        _models_file(tmp_path, "fraud-dev", "churn")
    elif write == "bad":
        _models_file(tmp_path, "fraud-dev", "fraud", extra="        bogusKey: 1\n")
    watch, problem = team_watch("fraud", "fraud-dev", tmp_path, TAGS)
    assert dict(watch.models) == {}
    assert problem is not None and reason in problem


@pytest.mark.parametrize("spec", ["fraud", "=fraud-dev", "fraud=", "Fraud=fraud-dev", "default=default-dev"])
def test_a_bad_team_spec_is_refused(spec: str) -> None:
    with pytest.raises(TeamSpecError):
        parse_team_spec(spec)


@pytest.fixture
def stand_in_kubeconfig(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A kubeconfig for the receiver to load at start (no call is made before the usage checks)."""
    server = StandInApiServer().start()
    path = server.kubeconfig(tmp_path / "kubeconfig")
    monkeypatch.setenv("KUBECONFIG", str(path))
    monkeypatch.setenv("MLOPS_WEBHOOK_SECRET", "single-tenant-secret")
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    yield path
    server.stop()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--team", "fraud=fraud-dev"], "--team needs --team-secrets-dir"),
        (["--team", "fraud=fraud-dev", "--team-secrets-dir", "{dir}"], "fraud-webhook-secret"),
        (["--team", "Fraud=fraud-dev", "--team-secrets-dir", "{dir}"], "--team 'Fraud=fraud-dev'"),
        (["--team", "a1=a1-dev", "--team", "a1=a1-dev", "--team-secrets-dir", "{dir}"], "given twice"),
    ],
)
def test_bad_team_arguments_exit_2_with_one_line(
    stand_in_kubeconfig: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], message: str
) -> None:
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "a1-webhook-secret").write_text("a1-secret")
    args = [a.replace("{dir}", str(secrets)) for a in extra]
    assert main(["webhook", "serve", "--model", "m=champion", *args]) == 2
    [line] = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("mlopsctl webhook:") and message in line
