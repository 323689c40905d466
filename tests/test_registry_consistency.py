"""The registry-vs-store comparison of `mlopsctl registry verify`, on plain data (the command
against real MLflow and Azurite: tests/test_restore_drill.py)."""

from __future__ import annotations

import argparse

import pytest

from mlopsctl.cli import main
from mlopsctl.registry_cli import EXIT_USAGE, run_registry
from rollout.registry_consistency import (
    ArtifactFolder,
    VersionLocation,
    compare,
    relative_artifact_path,
    render_text,
    store_folders,
)

DEST = "wasbs://mlflow-artifacts@acct.blob.core.windows.net/"


def test_artifact_uris_map_to_paths_in_the_store() -> None:
    assert relative_artifact_path("mlflow-artifacts:/1/models/m-a/artifacts", DEST) == "1/models/m-a/artifacts"
    assert relative_artifact_path("mlflow-artifacts://host:5000/1/r/artifacts/model", DEST) == "1/r/artifacts/model"
    assert relative_artifact_path(DEST + "2/models/m-b/artifacts/", DEST) == "2/models/m-b/artifacts"
    assert relative_artifact_path("wasbs://other@acct.blob.core.windows.net/2/x", DEST) is None
    assert relative_artifact_path("s3://bucket/x", "") is None


def test_store_folders_are_runs_and_logged_models() -> None:
    folders = store_folders({"1": ["models", "r1"], "1/models": ["m-a", "m-b"], "2": ["r2"]})
    assert folders == [
        ArtifactFolder("1/models/m-a", "logged-model", "m-a"),
        ArtifactFolder("1/models/m-b", "logged-model", "m-b"),
        ArtifactFolder("1/r1", "run", "r1"),
        ArtifactFolder("2/r2", "run", "r2"),
    ]


def _versions() -> list[VersionLocation]:
    return [
        VersionLocation("fraud", "1", "models:/m-a", "1/models/m-a/artifacts"),
        VersionLocation("fraud", "2", "models:/m-b", "1/models/m-b/artifacts"),
        VersionLocation("churn", "1", "runs:/r1/model", "1/r1/artifacts/model"),
    ]


FOLDERS = store_folders({"1": ["models", "r1"], "1/models": ["m-a", "m-b"]})
PRESENT = {"1/models/m-a/artifacts", "1/models/m-b/artifacts", "1/r1/artifacts/model"}


def test_a_consistent_registry() -> None:
    report = compare(
        _versions(),
        {"fraud": {"champion": "2"}},
        PRESENT,
        FOLDERS,
        known_runs={"r1"},
        known_logged_models={"m-a", "m-b"},
    )
    assert report.consistent
    assert (report.versions, report.aliases, report.folders) == (3, 1, 3)
    assert render_text(report, "http://mlflow").splitlines()[-1] == "consistent"


def test_missing_artifacts_dangling_aliases_and_orphans_are_each_reported() -> None:
    versions = [*_versions(), VersionLocation("fraud", "3", "models:/m-gone", None, "its source is unknown")]
    report = compare(
        versions,
        {"fraud": {"champion": "2", "challenger": "7"}},
        PRESENT - {"1/models/m-a/artifacts"},
        [*FOLDERS, ArtifactFolder("1/models/m-new", "logged-model", "m-new"), ArtifactFolder("1/r9", "run", "r9")],
        known_runs={"r1"},
        known_logged_models={"m-a", "m-b"},
    )
    assert not report.consistent
    assert [(m.model, m.version, m.reason) for m in report.missing] == [
        ("fraud", "1", "no MLmodel there"),
        ("fraud", "3", "its source is unknown"),
    ]
    assert [(a.model, a.alias, a.version) for a in report.dangling_aliases] == [("fraud", "challenger", "7")]
    assert [o.path for o in report.orphans] == ["1/models/m-new", "1/r9"]
    text = render_text(report, "http://mlflow")
    assert "ORPHAN   1/models/m-new: logged-model m-new unknown to the tracking store" in text
    assert text.splitlines()[-1] == "inconsistent: 2 missing, 1 dangling aliases, 2 orphans"
    assert report.as_json()["consistent"] is False


@pytest.mark.parametrize(
    ("argv", "environ", "message"),
    [
        (["--tracking-uri", "ftp://mlflow"], {}, "is not an http(s) URL"),
        ([], {}, "no MLflow registry"),
        (["--tracking-uri", "http://127.0.0.1:9", "--timeout", "0"], {}, "not a positive number"),
        (["--tracking-uri", "http://127.0.0.1:9", "--timeout", "2"], {}, "did not answer"),
        (["--tracking-uri", "http://127.0.0.1:9"], {"MLFLOW_TRACKING_PASSWORD_FILE": "/nonexistent/pw"}, "cannot read"),
    ],
)
def test_bad_input_and_unreachable_registries_exit_2_in_one_line(
    argv: list[str], environ: dict[str, str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    args = argparse.Namespace(tracking_uri=None, artifacts_destination="", timeout=30.0, json=False)
    for flag, value in zip(argv[::2], argv[1::2], strict=True):
        setattr(args, flag.lstrip("-").replace("-", "_"), float(value) if flag == "--timeout" else value)
    assert run_registry(args, environ) == EXIT_USAGE
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_the_command_is_registered() -> None:
    assert main(["registry", "verify", "--timeout", "x"]) == EXIT_USAGE
