"""Header/cookie A/B, sticky canary and mirroring: settings, plans and the VirtualService.

The VirtualService is validated against Istio 1.30.3's CRD schema, and its routing is exercised
with `route_request`, a small evaluator of Istio's documented HTTPRoute semantics (routes in
order, first match wins; match blocks are ORed, conditions within a block ANDed; `regex` is a
full match; weights pick a destination; `headers.response.add` is added to the response). No
Envoy runs on this machine: this stands in for the proxy, not for what the test is about (the
declared routes).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

import pytest
from pydantic import ValidationError

from harness.mock_engine import MODELS_DIR, Evaluation, evaluate, stack_config
from harness.schema_validation import validate_object
from layout import resource_types
from rollout.planner import STARTED_TAG, WEIGHT_TAG, DeploymentPlan, declared_predictors, plan_model
from rollout.routing import API_VERSION, virtual_service
from rollout.snapshot import ModelState, VersionInfo
from settings.rollout import ModelRolloutSettings

GATEWAY = "istio-system/platform-gateway"
HOST = "models.example.com"
PATH = "/seldon/models/fd/v2/models/model/infer"


def _version(number: str, **tags: str) -> VersionInfo:
    uri = f"mlflow-artifacts:/1/models/m-{number}/artifacts"
    return VersionInfo(number, f"run{number}", f"models:/m-{number}", uri, tags=dict(tags))


def _plan(candidate_tags: Mapping[str, str] | None = None, **settings: Any) -> DeploymentPlan:
    state = ModelState(
        "fd", {"champion": "3", "challenger": "4"}, {"3": _version("3"), "4": _version("4", **(candidate_tags or {}))}
    )
    return plan_model(state, ModelRolloutSettings.model_validate({"name": "fd", **settings}), "fd")


def _vs(plan: DeploymentPlan) -> dict[str, Any]:
    manifest = virtual_service(plan, namespace="models", host=HOST, gateway=GATEWAY)
    assert validate_object(manifest, "1.34.2") == []
    return manifest


def _matches(block: Mapping[str, Any], path: str, headers: Mapping[str, str]) -> bool:
    uri = block.get("uri", {})
    if "prefix" in uri and not path.startswith(uri["prefix"]):
        return False
    if "regex" in uri and not re.fullmatch(uri["regex"], path):
        return False
    for name, condition in block.get("headers", {}).items():
        value = headers.get(name)
        if value is None:
            return False
        if "exact" in condition and value != condition["exact"]:
            return False
        if "regex" in condition and not re.fullmatch(condition["regex"], value):
            return False
    return True


def route_request(
    manifest: Mapping[str, Any], path: str, headers: Mapping[str, str], draw: float = 0.0
) -> tuple[str, dict[str, str], str | None]:
    """(destination host, response headers added, mirror host) for one request; `draw` in [0, 100)
    picks among weighted destinations like a uniform random number would."""
    for route in manifest["spec"]["http"]:
        if any(_matches(block, path, headers) for block in route["match"]):
            cumulative = 0
            for destination in route["route"]:
                cumulative += destination["weight"]
                if draw < cumulative:
                    added = destination.get("headers", {}).get("response", {}).get("add", {})
                    mirror = route.get("mirror", {}).get("host")
                    return destination["destination"]["host"], dict(added), mirror
            raise AssertionError(f"weights of {route['name']} add up to {cumulative}")
    raise AssertionError(f"no route for {path}")


STABLE = "fd-stable.models.svc.cluster.local"
CANARY = "fd-canary.models.svc.cluster.local"


def test_header_and_cookie_ab_send_matching_requests_to_the_candidate_and_the_rest_to_stable() -> None:
    plan = _plan(strategy="ab", match=[{"header": "x-user-group", "exact": "beta"}, {"cookie": "ab", "value": "b"}])
    assert plan.weights == {"stable": 100, "canary": 0}  # weights do not send anyone to it
    manifest = _vs(plan)
    assert route_request(manifest, PATH, {"x-user-group": "beta"})[0] == CANARY
    assert route_request(manifest, PATH, {"cookie": "session=1; ab=b; theme=dark"})[0] == CANARY
    assert route_request(manifest, PATH, {"cookie": "ab=b"})[0] == CANARY
    for headers in ({}, {"x-user-group": "beta2"}, {"cookie": "ab=bb"}, {"cookie": "xab=b"}):
        for draw in (0, 50, 99.9):
            assert route_request(manifest, PATH, headers, draw)[0] == STABLE, headers
    # gRPC (Seldon's header-based match) routes the same way
    grpc = "/inference.GRPCInferenceService/ModelInfer"
    seldon = {"seldon": "fd", "namespace": "models"}
    assert route_request(manifest, grpc, {**seldon, "x-user-group": "beta"})[0] == CANARY
    assert route_request(manifest, grpc, seldon)[0] == STABLE


def test_header_regex_match() -> None:
    manifest = _vs(_plan(strategy="ab", match=[{"header": "x-tenant", "regex": "acme|initech"}]))
    assert route_request(manifest, PATH, {"x-tenant": "initech"})[0] == CANARY
    assert route_request(manifest, PATH, {"x-tenant": "acme-corp"})[0] == STABLE


def test_without_match_ab_splits_by_weight() -> None:
    manifest = _vs(_plan(strategy="ab", abWeight=30))
    hosts = [route_request(manifest, PATH, {}, draw)[0] for draw in (0, 69.9, 70, 99)]
    assert hosts == [STABLE, STABLE, CANARY, CANARY]


def test_sticky_canary_keeps_a_client_on_the_candidate() -> None:
    plan = _plan(strategy="canary", sticky={"cookie": "stick", "maxAgeSeconds": 900})
    assert plan.weights == {"stable": 90, "canary": 10}
    manifest = _vs(plan)
    host, added, _ = route_request(manifest, PATH, {}, draw=95)  # lands on the canary (the 10 %)
    assert host == CANARY
    cookie = added["Set-Cookie"]
    assert cookie.startswith("stick=fd-v4;") and "Max-Age=900" in cookie and "Path=/seldon/models/fd/" in cookie
    client_cookie = "other=1; " + cookie.split(";")[0]
    for draw in (0, 10, 50, 89):  # draws that would go to stable
        assert route_request(manifest, PATH, {"cookie": client_cookie}, draw)[0] == CANARY
    assert route_request(manifest, PATH, {}, draw=0) == (STABLE, {}, None)
    # a cookie of an earlier candidate version does not pin anyone to this one
    assert route_request(manifest, PATH, {"cookie": "stick=fd-v2"}, draw=0)[0] == STABLE


def test_sticky_without_candidate_routes_everything_to_stable() -> None:
    state = ModelState("fd", {"champion": "3"}, {"3": _version("3")})
    plan = plan_model(state, ModelRolloutSettings(name="fd", sticky={"cookie": "stick"}), "fd")  # type: ignore[arg-type]
    manifest = _vs(plan)
    assert [r["name"] for r in manifest["spec"]["http"]] == ["http-default", "grpc-default"]
    assert route_request(manifest, PATH, {"cookie": "stick=fd-v4"}, 99)[0] == STABLE


def test_mirror_phase_mirrors_a_share_and_shifts_no_user_traffic_until_started() -> None:
    pending = _plan(strategy="canary", mirror={"percent": 20})
    assert pending.phase == "pending"
    assert pending.weights == {"stable": 100, "canary": 20} and pending.predictors[1].shadow
    manifest = _vs(pending)
    for draw in (0, 99):
        assert route_request(manifest, PATH, {}, draw) == (STABLE, {}, CANARY)
    assert manifest["spec"]["http"][0]["mirrorPercentage"] == {"value": 20.0}
    # declared traffic (recording rules): a mirror is not a traffic share
    declared = declared_predictors([pending], "models")
    assert {p.predictor: p.traffic_percent for p in declared} == {"stable": 100, "canary": 0}
    running = _plan({WEIGHT_TAG: "10"}, strategy="canary", mirror={"percent": 20})
    assert running.phase == "running" and running.weights == {"stable": 90, "canary": 10}
    assert "mirror" not in _vs(running)["spec"]["http"][0]


@pytest.mark.parametrize(
    "settings",
    [
        {"approval": {"beforeFirstStep": True}},
        {"hooks": [{"url": "http://hooks.example/x", "events": ["pre-rollout"]}]},
    ],
)
def test_gates_and_pre_rollout_hooks_hold_user_traffic_until_the_rollout_starts(settings: dict[str, Any]) -> None:
    for strategy in ("canary", "ab"):
        pending = _plan(strategy=strategy, **settings)
        assert pending.phase == "pending" and pending.weights == {"stable": 100, "canary": 0}, strategy
        assert route_request(_vs(pending), PATH, {}, 99)[0] == STABLE
    assert _plan({STARTED_TAG: "2026-01-01T00:00:00+00:00"}, strategy="ab", **settings).weights["canary"] == 50
    assert _plan({WEIGHT_TAG: "25"}, strategy="canary", **settings).weights["canary"] == 25
    # hooks on other events only do not hold anything
    assert _plan(hooks=[{"url": "http://h.example/x", "events": ["step"]}]).weights["canary"] == 10


def test_shadow_mirrors_its_share() -> None:
    plan = _plan(strategy="shadow", mirror={"percent": 35})
    assert plan.predictors[1].shadow and plan.predictors[1].traffic == 35  # Seldon: a shadow's traffic = mirror %
    manifest = _vs(plan)
    assert manifest["spec"]["http"][0]["mirror"]["host"] == "fd-shadow.models.svc.cluster.local"
    assert manifest["spec"]["http"][0]["mirrorPercentage"] == {"value": 35.0}


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"strategy": "canary", "match": [{"header": "x-a", "exact": "1"}]}, "with strategy `ab` only"),
        ({"strategy": "ab", "match": [{"header": "x-a"}]}, "exactly one of `exact` or `regex`"),
        ({"strategy": "ab", "match": [{"header": "x-a", "exact": "1", "cookie": "c"}]}, "exactly one of `header`"),
        ({"strategy": "ab", "match": [{"cookie": "c"}]}, "set `value`"),
        ({"strategy": "ab", "match": [{"header": "X-Upper", "exact": "1"}]}, "String should match pattern"),
        ({"strategy": "ab", "match": [{"header": "x-a", "regex": "("}]}, "does not compile"),
        ({"strategy": "shadow", "sticky": {}}, "`sticky` needs strategy"),
        ({"strategy": "ab", "sticky": {}, "match": [{"header": "x-a", "exact": "1"}]}, "exclude each other"),
        ({"strategy": "single", "mirror": {}}, "`mirror` needs a candidate"),
        ({"sticky": {"maxAgeSeconds": 5}}, "greater than or equal to 60"),
        ({"mirror": {"percent": 0}}, "greater than or equal to 1"),
        ({"hooks": [{"url": "ftp://x"}]}, "String should match pattern"),
        ({"hooks": [{"url": "http://x", "events": ["deploy"]}]}, "Input should be"),
        ({"ab": {"metric": "cpu"}}, "Input should be"),
        ({"ab": {"duration": "1w"}}, "String should match pattern"),
    ],
)
def test_bad_progressive_settings_are_refused(settings: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=re.escape(message)):
        ModelRolloutSettings.model_validate({"name": "fd", **settings})


# --- the models program declares the routing -------------------------------------------------

VS = resource_types.VIRTUAL_SERVICE
SDEP = resource_types.SELDON_DEPLOYMENT


def test_the_models_stack_declares_one_valid_virtual_service_per_model_after_its_deployment(
    models_stack: Evaluation,
) -> None:
    services = {r.inputs["metadata"]["name"]: r for r in models_stack.of_type(VS)}
    deployments = {r.inputs["metadata"]["name"]: r for r in models_stack.of_type(SDEP)}
    assert set(services) == {f"{name}-routing" for name in deployments}
    for name, deployment in deployments.items():
        service = services[f"{name}-routing"]
        assert deployment.urn in service.dependencies
        assert validate_object({"apiVersion": API_VERSION, "kind": "VirtualService", **service.inputs}, "1.34.2") == []
        spec = service.inputs["spec"]
        assert spec["gateways"] == [GATEWAY] and spec["hosts"][0].startswith("models.")
        assert spec["http"][0]["match"][0]["uri"] == {"prefix": f"/seldon/models/{name}/"}
    recommender = services["recommender-routing"].inputs["spec"]["http"][0]
    assert recommender["mirror"]["host"] == "recommender-shadow.models.svc.cluster.local"


def test_a_header_match_in_the_models_stack_file_reaches_the_virtual_service() -> None:
    config, secret_keys = stack_config("dev", MODELS_DIR)
    rollout = json.loads(config["mlops-models:rollout"])
    churn = next(m for m in rollout["models"] if m["name"] == "churn-predictor")
    churn["match"] = [{"header": "x-user-group", "exact": "beta"}]
    config["mlops-models:rollout"] = json.dumps(rollout)
    evaluation = evaluate("dev", config, secret_keys, project_dir=MODELS_DIR)
    assert evaluation.error is None, evaluation.error
    [churn_vs] = [r for r in evaluation.of_type(VS) if r.inputs["metadata"]["name"] == "churn-predictor-routing"]
    first = churn_vs.inputs["spec"]["http"][0]
    assert first["name"] == "http-candidate"
    assert first["match"][0]["headers"] == {"x-user-group": {"exact": "beta"}}
    assert first["route"][0]["destination"]["host"] == "churn-predictor-canary.models.svc.cluster.local"
