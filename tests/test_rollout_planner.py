"""The pure rollout planner: unit cases for every strategy and error, and property tests."""

from __future__ import annotations

import dataclasses
import re
from typing import Any

import pytest
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from layout import lineage
from rollout.actions import LEASE_TAG
from rollout.planner import (
    APPROVAL_TAG_PREFIX,
    DECIDED_AT_TAG,
    PLAN_TAGS,
    REASON_TAG,
    STARTED_TAG,
    STATUS_TAG,
    WEIGHT_TAG,
    DeploymentPlan,
    PlanError,
    deployment_name,
    deployment_names,
    physical_artifact_uri,
    plan_model,
    plan_rollouts,
    rclone_model_uri,
    seldon_deployment,
)
from rollout.snapshot import ModelState, RegistrySnapshot, SnapshotError, VersionInfo
from settings.rollout import ModelRolloutSettings

DESTINATION = "wasbs://mlflow-artifacts@mlopsdevart123456.blob.core.windows.net/"


def _version(number: str, **tags: str) -> VersionInfo:
    return VersionInfo(
        version=number,
        run_id=f"run{number}",
        source=f"models:/m-{number}",
        download_uri=f"mlflow-artifacts:/1/models/m-{number}/artifacts",
        tags=dict(tags),
        git_commit=f"commit{number}",
    )


def _state(aliases: dict[str, str], *versions: VersionInfo, name: str = "fraud-detector") -> ModelState:
    return ModelState(name=name, aliases=aliases, versions={v.version: v for v in versions})


def _settings(**overrides: object) -> ModelRolloutSettings:
    return ModelRolloutSettings.model_validate({"name": "fraud-detector", **overrides})


def test_canary_uses_the_first_step_without_a_weight_tag() -> None:
    plan = plan_model(_state({"champion": "3", "challenger": "4"}, _version("3"), _version("4")), _settings(), "fd")
    assert plan.weights == {"stable": 90, "canary": 10}
    assert plan.versions == {"stable": "3", "canary": "4"}


def test_canary_follows_the_weight_tag() -> None:
    state = _state({"champion": "3", "challenger": "4"}, _version("3"), _version("4", **{"mlops.rollout.weight": "50"}))
    assert plan_model(state, _settings(), "fd").weights == {"stable": 50, "canary": 50}


@pytest.mark.parametrize("tag", ["abc", "30", "150", "", "2.5"])
def test_a_malformed_weight_tag_is_an_error_naming_the_model(tag: str) -> None:
    state = _state({"champion": "3", "challenger": "4"}, _version("3"), _version("4", **{"mlops.rollout.weight": tag}))
    with pytest.raises(PlanError, match=r"model 'fraud-detector' version 4: tag mlops.rollout.weight="):
        plan_model(state, _settings(), "fd")


def test_ab_shadow_and_single() -> None:
    state = _state({"champion": "3", "challenger": "4"}, _version("3"), _version("4"))
    assert plan_model(state, _settings(strategy="ab", abWeight=20), "fd").weights == {"stable": 80, "canary": 20}
    shadow = plan_model(state, _settings(strategy="shadow"), "fd")
    assert shadow.weights == {"stable": 100, "shadow": 0} and shadow.predictors[1].shadow
    assert plan_model(state, _settings(strategy="single"), "fd").weights == {"stable": 100}


def test_no_candidate_or_candidate_equal_to_stable_serves_stable_only() -> None:
    assert plan_model(_state({"champion": "3"}, _version("3")), _settings(), "fd").weights == {"stable": 100}
    same = _state({"champion": "3", "challenger": "3"}, _version("3"))
    assert plan_model(same, _settings(), "fd").weights == {"stable": 100}


def test_missing_stable_alias_is_an_error_naming_the_model() -> None:
    with pytest.raises(PlanError, match="model 'fraud-detector': alias 'champion' is not set"):
        plan_model(_state({"challenger": "4"}, _version("4")), _settings(), "fd")


def test_alias_to_a_missing_version_is_an_error() -> None:
    with pytest.raises(PlanError, match="alias 'challenger' points to version 9, which does not exist"):
        plan_model(_state({"champion": "3", "challenger": "9"}, _version("3")), _settings(), "fd")


def test_candidate_that_is_not_ready_is_an_error() -> None:
    pending = VersionInfo("4", "r", "s", "mlflow-artifacts:/x", status="PENDING_REGISTRATION")
    with pytest.raises(PlanError, match="candidate version 4 is PENDING_REGISTRATION"):
        plan_model(_state({"champion": "3", "challenger": "4"}, _version("3"), pending), _settings(), "fd")


def test_all_models_problems_are_reported_together() -> None:
    snapshot = RegistrySnapshot("https://mlflow", "now", {"a": _state({}, name="a")})
    with pytest.raises(PlanError) as error:
        plan_rollouts(snapshot, [_settings(name="a"), _settings(name="b")])
    assert "model 'a': alias 'champion' is not set" in str(error.value)
    assert "model 'b' is not in the registry snapshot of https://mlflow" in str(error.value)


def test_names_are_dns_labels_and_collisions_are_errors() -> None:
    assert deployment_name("Fraud Detector_v2") == "fraud-detector-v2"
    with pytest.raises(PlanError, match="'Fraud Detector' and 'fraud-detector' both map to deployment name"):
        deployment_names(["Fraud Detector", "fraud-detector"])
    with pytest.raises(PlanError, match="no letters or digits"):
        deployment_name("___")


def test_serving_locations() -> None:
    physical = physical_artifact_uri("mlflow-artifacts:/1/models/m-4/artifacts", DESTINATION)
    assert physical == DESTINATION + "1/models/m-4/artifacts"
    assert physical_artifact_uri("mlflow-artifacts://mlflow.example.com/1/x", DESTINATION) == DESTINATION + "1/x"
    assert rclone_model_uri(physical) == "azureblob:mlflow-artifacts/1/models/m-4/artifacts"
    for indirect in ("models:/fraud/3", "runs:/abc/model", "s3://bucket/model"):
        with pytest.raises(PlanError, match="not in the platform's artifact store"):
            physical_artifact_uri(indirect, DESTINATION)


def test_manifest_carries_lineage_on_every_predictor() -> None:
    state = _state({"champion": "3", "challenger": "4"}, _version("3"), _version("4"))
    manifest = seldon_deployment(
        plan_model(state, _settings(), "fraud-detector"),
        namespace="models",
        artifacts_destination=DESTINATION,
        storage_secret="rclone",
        service_account="reader",
    )
    for predictor in manifest["spec"]["predictors"]:
        annotations = predictor["annotations"]
        assert set(lineage.REQUIRED_PREDICTOR_ANNOTATIONS) <= set(annotations)
        assert annotations[lineage.ARTIFACT_URI].startswith(DESTINATION)
        assert annotations[lineage.GIT_COMMIT].startswith("commit")
        assert predictor["graph"]["implementation"] == "MLFLOW_SERVER"
        assert predictor["graph"]["envSecretRefName"] == "rclone"
    assert sum(p["traffic"] for p in manifest["spec"]["predictors"]) == 100


def test_snapshot_round_trips_and_rejects_garbage(tmp_path: object) -> None:
    snapshot = RegistrySnapshot("https://m", "t", {"fraud-detector": _state({"champion": "3"}, _version("3"))})
    assert RegistrySnapshot.from_json(snapshot.to_json()) == snapshot
    with pytest.raises(SnapshotError, match="not a registry snapshot"):
        RegistrySnapshot.from_json('{"models": {}}')
    with pytest.raises(SnapshotError, match="not JSON"):
        RegistrySnapshot.from_json("{")


# --- properties --------------------------------------------------------------------------------

steps_strategy = st.lists(st.integers(1, 100), min_size=1, max_size=8, unique=True).map(sorted)
model_names = st.text(alphabet=st.characters(codec="ascii", categories=("L", "N", "P", "Zs")), min_size=1, max_size=80)


@given(
    steps=steps_strategy,
    data=st.data(),
    strategy=st.sampled_from(["canary", "ab", "shadow", "single"]),
    ab_weight=st.integers(1, 99),
    has_candidate=st.booleans(),
)
def test_weights_are_integers_summing_to_100(
    steps: list[int], data: st.DataObject, strategy: str, ab_weight: int, has_candidate: bool
) -> None:
    tag = data.draw(st.one_of(st.none(), st.sampled_from(steps)))
    candidate = _version("4", **({"mlops.rollout.weight": str(tag)} if tag is not None else {}))
    aliases = {"champion": "3", **({"challenger": "4"} if has_candidate else {})}
    settings = _settings(strategy=strategy, steps=steps, abWeight=ab_weight)
    plan = plan_model(_state(aliases, _version("3"), candidate), settings, "fd")
    weights = list(plan.weights.values())
    assert all(isinstance(w, int) and 0 <= w <= 100 for w in weights)
    assert sum(weights) == 100
    if strategy == "canary" and has_candidate:
        assert plan.weights["canary"] in steps
        assert plan.weights["canary"] == (tag if tag is not None else steps[0])


@given(model_names)
def test_names_are_valid_and_stable(name: str) -> None:
    try:
        first = deployment_name(name)
    except PlanError:
        assert not re.search(r"[A-Za-z0-9]", name)
        return
    assert re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", first) and len(first) <= 40
    assert deployment_name(name) == first


# --- the plan depends on the PLAN_TAGS only ----------------------------------------------------

PLAN_SETTINGS: list[dict[str, Any]] = [
    {"strategy": "canary"},
    {"strategy": "canary", "steps": [50, 100], "sticky": {}},
    {"strategy": "canary", "mirror": {"percent": 20}},
    {"strategy": "canary", "approval": {"beforeFirstStep": True, "beforePromotion": True}},
    {"strategy": "canary", "hooks": [{"url": "http://hooks.example/h", "events": ["pre-rollout"]}]},
    {"strategy": "ab", "abWeight": 30},
    {"strategy": "ab", "match": [{"header": "x-group", "exact": "beta"}]},
    {"strategy": "ab", "approval": {"beforeFirstStep": True}},
    {"strategy": "ab", "mirror": {"percent": 50}},
    {"strategy": "shadow"},
    {"strategy": "shadow", "mirror": {"percent": 10}},
    {"strategy": "shadow", "approval": {"beforeFirstStep": True}},
    {"strategy": "single"},
]
KNOWN_OTHER_TAGS = [
    STATUS_TAG,
    REASON_TAG,
    DECIDED_AT_TAG,
    LEASE_TAG,
    APPROVAL_TAG_PREFIX + "first-step",
    APPROVAL_TAG_PREFIX + "promotion",
    WEIGHT_TAG + ".previous",
    "mlops.rollout.started",
    "mlflow.note.content",
    "team",
]
OTHER_TAG_KEYS = st.one_of(st.sampled_from(KNOWN_OTHER_TAGS), st.text(min_size=1, max_size=40)).filter(
    lambda key: key not in PLAN_TAGS
)
TAG_VALUES = st.one_of(
    st.sampled_from(["", "10", "50", "2026-11-27T00:00:00+00:00", "ops at now"]), st.text(max_size=20)
)


def _served(plan: DeploymentPlan) -> tuple[DeploymentPlan, dict[str, Any]]:
    """What a plan serves: the plan with the versions' tags left out (they are carried, not used), and
    its manifest."""
    bare = dataclasses.replace(
        plan,
        predictors=tuple(
            dataclasses.replace(p, version=dataclasses.replace(p.version, tags={})) for p in plan.predictors
        ),
    )
    manifest = seldon_deployment(
        plan, namespace="models", artifacts_destination=DESTINATION, storage_secret="s", service_account="sa"
    )
    return bare, manifest


def _plan_or_error(state: ModelState, settings: ModelRolloutSettings) -> object:
    try:
        return _served(plan_model(state, settings, "fd"))
    except PlanError as error:
        return ("error", str(error))


@hypothesis_settings(max_examples=300)
@given(
    overrides=st.sampled_from(PLAN_SETTINGS),
    candidate_plan_tags=st.fixed_dictionaries(
        {}, optional={WEIGHT_TAG: st.sampled_from(["10", "25", "50", "100", "7", "x"]), STARTED_TAG: TAG_VALUES}
    ),
    base_tags=st.dictionaries(OTHER_TAG_KEYS, TAG_VALUES, max_size=4),
    changes=st.lists(
        st.tuples(st.sampled_from(["stable", "candidate"]), OTHER_TAG_KEYS, st.one_of(st.none(), TAG_VALUES)),
        min_size=1,
        max_size=5,
    ),
    has_candidate=st.booleans(),
)
def test_the_plan_is_a_function_of_the_plan_tags_only(
    overrides: dict[str, Any],
    candidate_plan_tags: dict[str, str],
    base_tags: dict[str, str],
    changes: list[tuple[str, str, str | None]],
    has_candidate: bool,
) -> None:
    """Setting, changing or deleting any tag outside PLAN_TAGS, on the stable or the candidate,
    never changes what is served (nor whether planning fails): the receiver may ignore those events."""
    settings = _settings(**overrides)
    aliases = {"champion": "3", **({"challenger": "4"} if has_candidate else {})}
    tags = {"stable": dict(base_tags), "candidate": {**base_tags, **candidate_plan_tags}}
    before = _state(aliases, _version("3", **tags["stable"]), _version("4", **tags["candidate"]))
    for role, key, value in changes:
        if value is None:
            tags[role].pop(key, None)
        else:
            tags[role][key] = value
    after = _state(aliases, _version("3", **tags["stable"]), _version("4", **tags["candidate"]))
    assert _plan_or_error(after, settings) == _plan_or_error(before, settings)


@pytest.mark.parametrize("overrides", PLAN_SETTINGS)
def test_no_known_tag_outside_the_plan_tags_changes_the_plan(overrides: dict[str, Any]) -> None:
    """Exhaustively, for the tags the platform and users write: each set (to any value) or deleted,
    on either version, from each start (not started, started, at a step)."""
    settings = _settings(**overrides)
    aliases = {"champion": "3", "challenger": "4"}
    for plan_tags in ({}, {STARTED_TAG: "2026-11-27T00:00:00+00:00"}, {WEIGHT_TAG: str(settings.steps[-1])}):
        base = {key: "set" for key in KNOWN_OTHER_TAGS[::2]}
        expected = _plan_or_error(_state(aliases, _version("3", **base), _version("4", **base, **plan_tags)), settings)
        for key in KNOWN_OTHER_TAGS:
            for value in ("", "x", "50", None):
                changed = {k: v for k, v in base.items() if k != key} | ({} if value is None else {key: value})
                for stable_tags, candidate_tags in ((changed, base), (base, changed)):
                    state = _state(aliases, _version("3", **stable_tags), _version("4", **candidate_tags, **plan_tags))
                    assert _plan_or_error(state, settings) == expected, (key, value)


PLAN_TAG_CASES: list[tuple[dict[str, Any], str, str]] = [
    ({"strategy": "canary"}, WEIGHT_TAG, "50"),  # the canary's step
    ({"strategy": "canary", "mirror": {"percent": 20}}, WEIGHT_TAG, "10"),  # started by the first step
    ({"strategy": "ab", "approval": {"beforeFirstStep": True}}, STARTED_TAG, "2026-11-27T00:00:00+00:00"),
    ({"strategy": "ab", "mirror": {"percent": 50}}, STARTED_TAG, "2026-11-27T00:00:00+00:00"),
    ({"strategy": "shadow", "approval": {"beforeFirstStep": True}}, STARTED_TAG, "2026-11-27T00:00:00+00:00"),
]


@pytest.mark.parametrize(("overrides", "tag", "value"), PLAN_TAG_CASES)
def test_each_plan_tag_changes_the_plan(overrides: dict[str, Any], tag: str, value: str) -> None:
    """The other half: every tag in PLAN_TAGS changes what some model serves, so none is ignorable."""
    settings = _settings(**overrides)
    aliases = {"champion": "3", "challenger": "4"}
    before = _state(aliases, _version("3"), _version("4"))
    after = _state(aliases, _version("3"), _version("4", **{tag: value}))
    assert _plan_or_error(after, settings) != _plan_or_error(before, settings)


def test_every_plan_tag_has_a_case_that_changes_the_plan() -> None:
    assert {tag for _, tag, _ in PLAN_TAG_CASES} == set(PLAN_TAGS)
