"""Event hooks' retries against a real HTTP server on 127.0.0.1 that fails its first N requests:
bounded retries with exponential backoff for connection errors, timeouts and 5xx, never for 4xx,
every attempt signed identically (same delivery id, timestamp and signature)."""

from __future__ import annotations

import itertools
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from pydantic import ValidationError

from rollout import hooks
from settings.rollout import HOOK_MAX_SECONDS, HookSettings

SECRET = "hook-retry-test-secret"
BACKOFF = 0.2


class FlakyHook:
    """Answers `failure` (a status, or `hang` = no answer within the client's timeout) to the first
    `failures` requests, then 200; records every request's headers, body and arrival time."""

    def __init__(self) -> None:
        self.failures = 0
        self.failure: int | str = 503
        self.requests: list[tuple[dict[str, str], str, float]] = []
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0"))).decode()
                hook.requests.append(({k.lower(): v for k, v in self.headers.items()}, body, time.monotonic()))
                status = 200
                if hook.failures > 0:
                    hook.failures -= 1
                    if hook.failure == "hang":
                        time.sleep(1.5)
                    else:
                        status = int(hook.failure)
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *_: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def fail(self, failures: int, failure: int | str = 503) -> None:
        self.failures, self.failure, self.requests = failures, failure, []


@pytest.fixture
def flaky() -> Iterator[FlakyHook]:
    hook = FlakyHook()
    yield hook
    hook.server.shutdown()
    hook.server.server_close()


def _hook(url: str, **overrides: Any) -> HookSettings:
    return HookSettings.model_validate({"url": url, "timeoutSeconds": 1, "retryBackoffSeconds": BACKOFF, **overrides})


def _deliver(hook: HookSettings) -> hooks.HookResult:
    (result,) = hooks.deliver([hook], "pre-rollout", {"model": "m", "candidateVersion": "2"}, SECRET)
    return result


def test_5xx_is_retried_with_backoff_and_the_same_signed_delivery(flaky: FlakyHook) -> None:
    flaky.fail(2, 503)
    result = _deliver(_hook(flaky.url, retries=2))
    assert result.ok and result.status == 200 and result.attempts == 3
    assert result.detail == "HTTP 200 (after 3 attempts)"
    identities = {
        (h["x-mlops-delivery-id"], h["x-mlops-timestamp"], h["x-mlops-signature"], body)
        for h, body, _ in flaky.requests
    }
    assert len(flaky.requests) == 3 and len(identities) == 1  # one delivery, three attempts
    assert result.delivery_id == flaky.requests[0][0]["x-mlops-delivery-id"]
    assert all(hooks.verify(SECRET, h, body) for h, body, _ in flaky.requests)
    arrivals = [arrived for _, _, arrived in flaky.requests]
    gaps = [b - a for a, b in itertools.pairwise(arrivals)]
    assert gaps[0] >= BACKOFF and gaps[1] >= 2 * BACKOFF  # exponential backoff


def test_a_hook_still_failing_after_its_retries_fails(flaky: FlakyHook) -> None:
    flaky.fail(3, 500)
    result = _deliver(_hook(flaky.url, retries=2))
    assert not result.ok and result.status == 500 and result.attempts == 3
    assert "HTTP 500 (after 3 attempts)" in result.detail
    assert len(flaky.requests) == 3


@pytest.mark.parametrize("status", [400, 401, 404, 409, 429])
def test_4xx_is_final(flaky: FlakyHook, status: int) -> None:
    flaky.fail(1, status)
    result = _deliver(_hook(flaky.url, retries=3))
    assert (result.ok, result.status, result.attempts, len(flaky.requests)) == (False, status, 1, 1)


def test_a_timeout_is_retried(flaky: FlakyHook) -> None:
    flaky.fail(1, "hang")
    result = _deliver(_hook(flaky.url, timeoutSeconds=0.5, retries=1))
    assert result.ok and result.attempts == 2 and len(flaky.requests) == 2


def test_a_refused_connection_is_retried_then_reported() -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{probe.getsockname()[1]}/hook"
    slept: list[float] = []
    (result,) = hooks.deliver([_hook(url, retries=2)], "rollback", {"model": "m"}, SECRET, sleep=slept.append)
    assert result.status is None and result.attempts == 3 and result.detail.startswith("no answer")
    assert slept == [BACKOFF, 2 * BACKOFF]


def test_retries_zero_is_one_attempt(flaky: FlakyHook) -> None:
    flaky.fail(1, 503)
    result = _deliver(_hook(flaky.url, retries=0))
    assert (result.status, result.attempts, result.detail) == (503, 1, "HTTP 503")


def test_retry_settings_are_validated_and_bounded() -> None:
    hook = HookSettings.model_validate({"url": "https://h.example/x"})
    assert (hook.retries, hook.retry_backoff_seconds, hook.worst_case_seconds) == (2, 1.0, 33.0)
    for bad in ({"retries": -1}, {"retries": 6}, {"retryBackoffSeconds": 0}, {"retryBackoffSeconds": 31}):
        with pytest.raises(ValidationError):
            HookSettings.model_validate({"url": "https://h.example/x", **bad})
    with pytest.raises(ValidationError, match=f"at most {HOOK_MAX_SECONDS} s"):
        HookSettings.model_validate({"url": "https://h.example/x", "timeoutSeconds": 30, "retries": 4})
