"""The whole pack against whole stacks: committed stacks pass, broken ones fail naming the policies."""

from __future__ import annotations

import dataclasses
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from pulumi_policy import EnforcementLevel, StackValidationArgs, StackValidationPolicy
from pulumi_policy.policy import _NotApplicableError

from harness.mock_engine import Evaluation, RecordedResource, StackOutput
from harness.policy_check import (
    POLICY_CONFIG_DIR,
    PolicyInputs,
    load_pack_config,
    mandatory,
    parse_pack_config,
    run_policies,
)
from harness.preview import check, render_json, render_text
from policies import framework
from policies.pack import BY_NAME, POLICIES
from tests.conftest import evaluate_with
from tests.policy_shapes import shape

ROOT = Path(__file__).resolve().parent.parent
SNAPSHOT = ("--registry-snapshot", str(ROOT / "examples" / "registry-snapshot.json"))

# Settings the settings model accepts but the prod policies forbid, and what each must trip.
BROKEN_PROD = {
    "postgresGeoRedundantBackup": (False, "postgres-geo-redundant-backup"),
    "postgresBackupRetentionDays": (7, "postgres-backup-retention"),
    "aksZones": ([], "aks-availability-zones"),
    "privateEndpoints": (False, "keyvault-network-deny-by-default"),
    "aksLocalAccounts": (True, "aks-local-accounts-disabled"),
    # The security baseline (issue 14): each dev convenience turned on in prod fails it by name.
    "aksEncryptionAtHost": (False, "aks-encryption-at-host"),
    "defenderForContainers": (False, "defender-for-containers"),
    "storageReplication": ("LRS", "storage-zone-redundant"),
    "storageSharedKeyAccess": (True, "storage-shared-key-disabled"),
    "keyVaultPurgeProtection": (False, "keyvault-purge-protection"),
    "allowedIpRanges": ([], "aks-api-server-restricted"),
    "logAnalyticsRetentionDays": (30, "log-analytics-retention"),
}


def _mlopsctl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mlopsctl", *args], cwd=ROOT, capture_output=True, text=True, timeout=180, check=False
    )


@pytest.fixture(scope="session")
def broken_prod() -> Evaluation:
    def change(config: dict[str, str]) -> None:
        for key, (value, _) in BROKEN_PROD.items():
            config[f"mlops-platform:{key}"] = value if isinstance(value, str) else json.dumps(value)

    evaluation = evaluate_with("prod", change)
    assert evaluation.error is None, evaluation.error
    return evaluation


def test_committed_stacks_have_no_mandatory_violation(dev: Evaluation, prod: Evaluation) -> None:
    prod_report = check(prod)
    assert prod_report.violations == [] and prod_report.schema_problems == []
    dev_report = check(dev)
    assert not dev_report.failed
    advisories = {v.policy for v in dev_report.violations}
    # dev is deliberately single-zone without HA or geo backups, and keeps each convenience of
    # README "What dev does differently from prod": every one reported, none blocking.
    relaxed = {p.name for p in POLICIES if {framework.COST, framework.PROD_ONLY} & set(p.tags or [])}
    assert advisories == relaxed
    assert {"aks-encryption-at-host", "defender-for-containers", "storage-zone-redundant"} <= advisories


def test_broken_prod_settings_fail_naming_each_policy(broken_prod: Evaluation) -> None:
    report = check(broken_prod)
    assert report.failed
    failing = {v.policy for v in mandatory(report.violations)}
    assert failing >= {policy for _, policy in BROKEN_PROD.values()} | {"storage-network-deny-by-default"}
    messages = {v.message for v in report.violations}
    assert "backup.backupRetentionDays is 7, must be at least 30" in messages
    assert "disableLocalAccounts is False, must be True" in messages


def test_the_same_settings_are_advisory_or_allowed_in_dev(broken_prod: Evaluation) -> None:
    as_dev = run_policies(broken_prod, load_pack_config("dev"))
    assert {v.policy for v in mandatory(as_dev)} == set()


def _with(
    evaluation: Evaluation, *extra: RecordedResource, outputs: dict[str, StackOutput] | None = None
) -> Evaluation:
    return dataclasses.replace(
        evaluation,
        resources=[*evaluation.resources, *extra],
        outputs={**evaluation.outputs, **(outputs or {})},
    )


def _in_cluster(kind: str, name: str, **changes: object) -> RecordedResource:
    type_token, inputs = shape(kind)
    inputs.update(changes)
    urn = f"urn:pulumi:prod::mlops-platform::{type_token}::{name}"
    return RecordedResource(urn, type_token, name, "", True, inputs, frozenset(), False, "", "", (), (), ())


def test_unpinned_chart_and_out_of_range_canary_fail_the_preview(prod: Evaluation) -> None:
    _, seldon = shape("seldon")
    predictors = seldon["spec"]["predictors"]
    predictors[0]["traffic"], predictors[1]["traffic"] = -50, 150  # canary steps [10, 150]: step 2
    evaluation = _with(
        prod,
        _in_cluster("release", "seldon-operator", version=""),
        _in_cluster("seldon", "fraud-detector", spec=seldon["spec"]),
    )
    report = check(evaluation)
    assert report.failed
    failing = {(v.policy, v.resource) for v in mandatory(report.violations)}
    assert failing == {("helm-release-pinned", "seldon-operator"), ("seldon-traffic-weights", "fraud-detector")}
    assert "seldon-operator: chart seldon-core-operator has no pinned version" in report.schema_problems
    text = render_text(report)
    assert "helm-release-pinned" in text and "result: FAILED" in text


def test_credential_outputs_must_be_secret(prod: Evaluation) -> None:
    leaked = _with(
        prod,
        outputs={
            "kubeconfig": StackOutput(prod.outputs["kubeconfig"].value, secret=False),
            "trackingDb": StackOutput("postgresql+psycopg2://mlflowadmin:hunter2@pg:5432/mlflow", secret=False),
        },
    )
    [policy] = [p for p in POLICIES if p.name == "stack-credential-outputs-secret"]
    violations = run_policies(leaked, load_pack_config("prod"), [policy])
    assert sorted(v.message for v in violations) == [
        "stack output kubeconfig is not secret but its name says it is a credential",
        "stack output trackingDb is not secret but its value holds a credential "
        "(key, password in a URI, SAS signature)",
    ]
    assert all(v.level == "mandatory" and v.type == "pulumi:pulumi:Stack" for v in violations)
    assert run_policies(prod, load_pack_config("prod"), [policy]) == []


def test_credential_policy_is_not_applicable_where_secretness_is_invisible(prod: Evaluation) -> None:
    # Under the Pulumi CLI the analyzer unwraps secrets first: the policy must not guess.
    reports: list[str] = []

    def report(message: str, _urn: str | None = None) -> None:
        reports.append(message)

    policy = BY_NAME["stack-credential-outputs-secret"]
    assert isinstance(policy, StackValidationPolicy)
    with pytest.raises(_NotApplicableError) as raised:
        policy.validate(StackValidationArgs(PolicyInputs.of(prod).stack_resources, {}), report)
    assert raised.value.reason == "secretness of stack outputs is not visible to this analyzer"
    assert reports == []


def test_policy_inputs_link_parents_and_dependencies(prod: Evaluation) -> None:
    resources = {r.name: r for r in PolicyInputs.of(prod).stack_resources}
    assert resources["aks-cluster"].parent is resources["aks"]
    assert resources["resource-group"].parent is resources["mlops-platform-prod"]
    assert resources["mlops-platform-prod"].props["environment"] == "prod"
    assert resources["postgres-server"].opts.protect is True
    assert any(d.name == "aks-control-plane-subnet" for d in resources["aks-cluster"].dependencies)


def test_enforcement_config_files_follow_the_policy_tags() -> None:
    dev, prod = load_pack_config("dev"), load_pack_config("prod")
    for policy in POLICIES:
        tags = policy.tags or []
        assert prod.level(policy.name) == EnforcementLevel.MANDATORY, policy.name
        # Dev's cost savings and deliberate conveniences are reported, never silenced.
        relaxed = framework.COST in tags or framework.PROD_ONLY in tags
        expected = EnforcementLevel.ADVISORY if relaxed else EnforcementLevel.MANDATORY
        assert dev.level(policy.name) == expected, policy.name
    assert prod.config("postgres-backup-retention")["minimumDays"] == 30
    assert dev.config("postgres-backup-retention")["minimumDays"] == 7
    assert prod.config("log-analytics-retention")["minimumDays"] == 90
    assert dev.config("log-analytics-retention")["minimumDays"] == 30
    assert {p.name for p in POLICY_CONFIG_DIR.glob("*.json")} == {"dev.json", "prod.json"}


def test_pack_config_rejects_typos_and_bad_levels() -> None:
    with pytest.raises(ValueError, match="'keyvault-purge-protecion' is not a policy of the pack"):
        parse_pack_config({"keyvault-purge-protecion": "disabled"}, "x.json")
    with pytest.raises(ValueError, match="enforcement level 'strict' is not one of"):
        parse_pack_config({"all": "strict"}, "x.json")
    with pytest.raises(ValueError, match="'minimumDay' was unexpected"):
        parse_pack_config({"postgres-backup-retention": {"minimumDay": 30}}, "x.json")
    with pytest.raises(ValueError, match="3 is less than the minimum of 7"):
        parse_pack_config({"postgres-backup-retention": {"minimumDays": 3}}, "x.json")
    assert load_pack_config("staging").level("aks-network-policy") == EnforcementLevel.MANDATORY


def test_cli_fails_a_broken_stack_file_naming_the_policies(tmp_path: Path) -> None:
    document = yaml.safe_load((ROOT / "Pulumi.prod.yaml").read_text())
    for key, (value, _) in BROKEN_PROD.items():
        document["config"][f"mlops-platform:{key}"] = value
    broken = tmp_path / "Pulumi.prod.yaml"
    broken.write_text(yaml.safe_dump(document))
    result = _mlopsctl("preview", "--stack", "prod", "--stack-file", str(broken), "--json", *SNAPSHOT)
    assert result.returncode == 1, result.stderr
    report = json.loads(result.stdout)
    assert report["failed"] is True and report["policyConfig"] == "policies/config/prod.json"
    failing = {v["policy"] for v in report["violations"] if v["level"] == "mandatory"}
    assert failing >= {policy for _, policy in BROKEN_PROD.values()}
    for violation in report["violations"]:
        assert set(violation) >= {"policy", "resource", "level", "message", "remediation", "severity"}


def test_cli_text_report_of_dev_lists_advisories_and_passes() -> None:
    result = _mlopsctl("preview", "--stack", "dev", *SNAPSHOT)
    assert result.returncode == 0, result.stderr
    summary = r"policy violations \(0 mandatory, \d+ advisory; levels from policies/config/dev.json\):"
    assert re.search(summary, result.stdout)
    assert "aks-encryption-at-host" in result.stdout and "defender-for-containers" in result.stdout
    assert "  POLICY" in result.stdout and "remediation: Set postgresGeoRedundantBackup: true" in result.stdout
    assert result.stdout.rstrip().endswith("result: passed")


def test_json_report_of_prod(prod: Evaluation) -> None:
    document = json.loads(render_json(check(prod)))
    assert document["violations"] == [] and document["schemaProblems"] == [] and document["failed"] is False
    assert document["kubernetesVersion"] == "1.34.2"


def test_the_pack_serves_under_the_pulumi_cli_entry_point() -> None:
    """`pulumi preview --policy-pack policies` runs policies/__main__.py, which prints its gRPC port."""
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "policies" / "__main__.py")],
        cwd=ROOT / "policies",
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        port = process.stdout.readline().strip()
        assert port.isdigit() and int(port) > 0, process.stderr.read() if process.stderr else ""
    finally:
        process.kill()
        process.wait(timeout=10)
