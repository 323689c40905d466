"""Restore as configuration: a stack created from another server's backups, validated before any
resource, declared in the right order (no databases re-created, no migration by accident), and
blob point-in-time restore on in prod. Offline (mock engine); the restore itself is drilled for
real in tests/test_restore_drill.py."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from harness.deploy_order import DeployGraph, order_problems
from harness.mock_engine import MOCK_SUBSCRIPTION_ID, Evaluation, RecordedResource, evaluate
from mlopsctl.cli import main
from settings import SettingsError, load_settings
from settings.restore import parse_source_id, parse_utc
from settings.stack_file import engine_config_from_stack_file, project_values
from tests.conftest import assert_refused, evaluate_with

P = "mlops-platform:"
EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "Pulumi.restore.yaml"
SOURCE = (
    f"/subscriptions/{MOCK_SUBSCRIPTION_ID}/resourceGroups/rg-mlops-prod-platform/providers/"
    "Microsoft.DBforPostgreSQL/flexibleServers/mlops-prod-pg-f843b9"
)
SERVER = "azure-native:dbforpostgresql:Server"
DATABASE = "azure-native:dbforpostgresql:Database"
JOB = "kubernetes:batch/v1:Job"


def _migration_jobs(evaluation: Evaluation) -> list[RecordedResource]:
    return [job for job in evaluation.of_type(JOB) if job.inputs["metadata"].get("name") == "mlflow-migrate"]


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _hours_ago(hours: float) -> str:
    return _iso(datetime.now(UTC) - timedelta(hours=hours))


def _restore(**changes: str) -> Callable[[dict[str, str]], None]:
    """Prod turned into a restore stack (own name prefix, operator off), then `changes`."""

    def change(config: dict[str, str]) -> None:
        config[P + "namePrefix"] = "mlopsr"
        config[P + "domain"] = "restore.mlops.example.com"
        config[P + "pulumiOperator"] = "false"
        for key in ("pulumiProjectRepo", "pulumiProjectBranch", "pulumiBackendUrl", "pulumiStackName"):
            config.pop(P + key, None)
        config[P + "postgresCreateMode"] = "PointInTimeRestore"
        config[P + "postgresRestoreSourceServerId"] = SOURCE
        config[P + "postgresRestorePointInTime"] = _hours_ago(2)
        for key, value in changes.items():
            if value == "<drop>":
                config.pop(P + key, None)
            else:
                config[P + key] = value

    return change


BAD_RESTORE = [
    pytest.param(
        {"postgresRestorePointInTime": "2026-06-01 14:05"},
        ["postgresRestorePointInTime"],
        "an ISO-8601 UTC time",
        id="time-not-iso",
    ),
    pytest.param(
        {"postgresRestorePointInTime": "2026-06-01T14:05:00+02:00"},
        ["postgresRestorePointInTime"],
        "an ISO-8601 UTC time",
        id="time-not-utc",
    ),
    pytest.param(
        {"postgresRestorePointInTime": _hours_ago(-1)},
        ["postgresRestorePointInTime"],
        "a time that has passed",
        id="time-in-the-future",
    ),
    pytest.param(
        {"postgresRestorePointInTime": _hours_ago(36 * 24)},
        ["postgresRestorePointInTime"],
        "inside the 35-day retention window",
        id="time-before-the-window",
    ),
    pytest.param({"postgresRestorePointInTime": "<drop>"}, ["postgresRestorePointInTime"], "required", id="no-time"),
    pytest.param(
        {"postgresRestoreSourceServerId": "<drop>"}, ["postgresRestoreSourceServerId"], "required", id="no-source"
    ),
    pytest.param(
        {"postgresRestoreSourceServerId": SOURCE.replace("DBforPostgreSQL/flexibleServers", "DBforPostgreSQL/servers")},
        ["postgresRestoreSourceServerId"],
        "Microsoft.DBforPostgreSQL/flexibleServers",
        id="source-not-a-flexible-server",
    ),
    pytest.param(
        {"postgresRestoreSourceServerId": SOURCE.replace(MOCK_SUBSCRIPTION_ID, "99999999-2222-4222-8222-222222222222")},
        ["postgresRestoreSourceServerId"],
        f"this stack's subscription {MOCK_SUBSCRIPTION_ID}",
        id="source-in-another-subscription",
    ),
    pytest.param(
        {"namePrefix": "mlops", "domain": "mlops.example.com"},
        ["postgresRestoreSourceServerId"],
        "another stack's server",
        id="source-is-this-stacks-own-server",
    ),
    pytest.param({"postgresCreateMode": "Restore"}, ["postgresCreateMode"], "'Default'", id="unknown-create-mode"),
]


@pytest.mark.parametrize(("changes", "keys", "explanation"), BAD_RESTORE)
def test_bad_restore_settings_are_refused_before_any_resource(
    changes: dict[str, str], keys: list[str], explanation: str
) -> None:
    assert_refused(evaluate_with("prod", _restore(**changes)), keys, explanation)


def test_restore_keys_without_a_restore_are_refused_not_ignored() -> None:
    def change(config: dict[str, str]) -> None:
        config[P + "postgresRestorePointInTime"] = _hours_ago(1)
        config[P + "mlflowMigrateRestoredDatabase"] = "true"

    assert_refused(
        evaluate_with("prod", change),
        ["mlflowMigrateRestoredDatabase", "postgresRestorePointInTime"],
        "only with postgresCreateMode PointInTimeRestore or GeoRestore",
    )


@pytest.mark.parametrize(
    ("days", "explanation"),
    [("30", "fewer days than blobSoftDeleteDays (30)"), ("29", None)],
)
def test_blob_restore_window_ends_before_soft_delete(days: str, explanation: str | None) -> None:
    evaluation = evaluate_with("prod", lambda config: config.__setitem__(P + "blobRestoreDays", days))
    if explanation is None:
        assert evaluation.error is None
    else:
        assert_refused(evaluation, ["blobRestoreDays"], explanation)


def test_blob_restore_window_within_version_retention() -> None:
    evaluation = evaluate_with("prod", lambda config: config.__setitem__(P + "blobVersionRetentionDays", "10"))
    assert_refused(evaluation, ["blobRestoreDays"], "at most blobVersionRetentionDays (10)")


def test_now_is_injected_into_the_window_check() -> None:
    """The same stack file is inside the window on one day and outside it 40 days later."""
    raw = project_values(dict(engine_config_from_stack_file(EXAMPLE)[0]))
    when = parse_utc(str(raw["postgresRestorePointInTime"]))
    assert when is not None
    assert load_settings(raw, now=when + timedelta(days=1)).postgres_restore
    with pytest.raises(SettingsError) as refused:
        load_settings(raw, now=when + timedelta(days=40))
    assert refused.value.keys == ["postgresRestorePointInTime"]
    with pytest.raises(SettingsError, match="a time that has passed"):
        load_settings(raw, now=when - timedelta(minutes=1))


def test_source_ids_and_times_parse_strictly() -> None:
    source = parse_source_id(SOURCE.replace("Microsoft.DBforPostgreSQL", "microsoft.dbforpostgresql"))
    assert source is not None and source.name == "mlops-prod-pg-f843b9"
    assert source.resource_group == "rg-mlops-prod-platform"
    assert parse_source_id(SOURCE + "/databases/mlflow") is None
    assert parse_utc("2026-12-01T14:05:00Z") == datetime(2026, 12, 1, 14, 5, tzinfo=UTC)
    assert parse_utc("2026-12-01T14:05:00.250+00:00") is not None
    assert parse_utc("2026-12-01T14:05:00") is None
    assert parse_utc("2026-02-30T14:05:00Z") is None


@pytest.fixture(scope="module")
def restored() -> Evaluation:
    evaluation = evaluate_with("prod", _restore())
    assert evaluation.error is None, evaluation.error
    return evaluation


def test_the_restore_stack_creates_a_new_server_from_the_source(restored: Evaluation) -> None:
    server = restored.one(SERVER)
    assert server.inputs["createMode"] == "PointInTimeRestore"
    assert server.inputs["sourceServerResourceId"] == SOURCE
    assert parse_utc(server.inputs["pointInTimeUTC"]) is not None
    assert server.inputs["serverName"] != parse_source_id(SOURCE).name  # type: ignore[union-attr]
    # The restore inputs matter at creation only: a later `up` without them leaves the server alone.
    assert {"createMode", "sourceServerResourceId", "pointInTimeUTC"} <= set(server.ignore_changes)
    assert server.protect
    # The source server is no resource of this stack: nothing here can change or delete it.
    assert all(parse_source_id(SOURCE).name not in r.id for r in restored.resources)  # type: ignore[union-attr]


def test_the_restored_databases_are_not_declared_again(restored: Evaluation) -> None:
    assert restored.of_type(DATABASE) == []


def test_no_migration_runs_against_restored_data_unless_asked(restored: Evaluation) -> None:
    assert _migration_jobs(restored) == []
    graph = DeployGraph(restored.resources)
    server = restored.one(SERVER)
    for name in ("mlflow-tracking", "mlflow-registry", "mlflow-artifacts"):
        deployment = next(r for r in restored.resources if r.type == "kubernetes:apps/v1:Deployment" and name in r.name)
        assert server.urn in graph.waits_for(deployment.urn), name
    assert order_problems(restored.resources) == []

    asked = evaluate_with("prod", _restore(mlflowMigrateRestoredDatabase="true"))
    assert asked.error is None, asked.error
    [job] = _migration_jobs(asked)
    commands = [c["command"] for c in job.inputs["spec"]["template"]["spec"]["initContainers"]]
    assert any("upgrade" in command for command in commands)


def test_a_new_stack_still_migrates_and_declares_its_databases() -> None:
    evaluation = evaluate("prod", *_config("prod"))
    assert evaluation.error is None
    assert "createMode" not in evaluation.one(SERVER).inputs
    assert len(evaluation.of_type(DATABASE)) == 3
    assert len(_migration_jobs(evaluation)) == 1


def _config(stack: str) -> tuple[dict[str, str], list[str]]:
    from harness.mock_engine import stack_config  # noqa: PLC0415

    return stack_config(stack)


def test_prod_turns_blob_point_in_time_restore_on_and_dev_leaves_it_off() -> None:
    prod = evaluate("prod", *_config("prod")).one("azure-native:storage:BlobServiceProperties")
    assert prod.inputs["restorePolicy"] == {"enabled": True, "days": 14}
    assert prod.inputs["changeFeed"]["enabled"] is True
    assert prod.inputs["isVersioningEnabled"] is True
    assert prod.inputs["restorePolicy"]["days"] < prod.inputs["deleteRetentionPolicy"]["days"]
    assert prod.inputs["containerDeleteRetentionPolicy"]["enabled"] is True
    dev = evaluate("dev", *_config("dev")).one("azure-native:storage:BlobServiceProperties")
    assert "restorePolicy" not in dev.inputs and "changeFeed" not in dev.inputs


def test_the_example_restore_stack_previews_with_policies_passing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """examples/Pulumi.restore.yaml as committed, its restore time moved to an hour ago (the file's
    own time leaves the 35-day window in time; the window check is tested above)."""
    document = yaml.safe_load(EXAMPLE.read_text())
    document["config"][P + "postgresRestorePointInTime"] = _hours_ago(1)
    stack_file = tmp_path / "Pulumi.restore.yaml"
    stack_file.write_text(yaml.safe_dump(document))
    code = main(["preview", "--stack", "prod", "--stack-file", str(stack_file)])
    out = capsys.readouterr().out
    assert code == 0, out[-3000:]
    assert "result: passed" in out
