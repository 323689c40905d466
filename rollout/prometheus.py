"""A minimal Prometheus HTTP API client for the rollout analysis (instant queries only)."""

from __future__ import annotations

import json
import math
import urllib.error
import urllib.parse
import urllib.request


class PrometheusError(RuntimeError):
    """Prometheus could not be queried, or rejected the query."""


class PrometheusClient:
    def __init__(self, url: str, timeout_seconds: float = 10.0) -> None:
        self.url = url.rstrip("/")
        self.timeout_seconds = timeout_seconds
        self.queries: list[str] = []
        """Every expression sent, in order (the tests compare them with the dashboards')."""

    def vector(self, expression: str) -> list[tuple[dict[str, str], float]]:
        self.queries.append(expression)
        url = f"{self.url}/api/v1/query?{urllib.parse.urlencode({'query': expression})}"
        try:
            with urllib.request.urlopen(url, timeout=self.timeout_seconds) as response:
                document = json.loads(response.read())
        except urllib.error.HTTPError as error:
            detail = error.read().decode(errors="replace")[:300]
            raise PrometheusError(f"{self.url} rejected a query (HTTP {error.code}): {detail}") from error
        except (urllib.error.URLError, TimeoutError, OSError) as error:
            raise PrometheusError(f"{self.url} did not answer: {getattr(error, 'reason', error)}") from error
        if document.get("status") != "success":
            raise PrometheusError(f"{self.url}: {document.get('error', 'query failed')}")
        data = document["data"]
        if data["resultType"] != "vector":
            raise PrometheusError(f"{self.url}: expected a vector, got {data['resultType']}")
        return [(item["metric"], float(item["value"][1])) for item in data["result"]]

    def scalar(self, expression: str) -> float | None:
        """The sum of the result's values; None when there is no (finite) value."""
        values = [value for _, value in self.vector(expression) if math.isfinite(value)]
        return sum(values) if values else None
