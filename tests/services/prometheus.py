"""A real Prometheus (Debian's `prometheus` binary) on 127.0.0.1 with a temporary data directory.

`PrometheusServer(targets, rule_groups).start()` writes a configuration that scrapes the given
`host:port` targets every `scrape_interval` (labels as exposed: `honor_labels`) and evaluates the
given rule groups, starts the server on a free port and waits until it is ready. `query()` runs
an instant query through the HTTP API and returns the result vector.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml


class PrometheusUnavailableError(RuntimeError):
    """The binary is missing (install Debian's `prometheus`: scripts/setup.sh all)."""


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class PrometheusServer:
    def __init__(
        self,
        targets: Sequence[str],
        rule_groups: Sequence[dict[str, Any]] = (),
        scrape_interval: str = "1s",
        binary: str = "prometheus",
        metrics_path: str = "/metrics",
    ) -> None:
        executable = shutil.which(binary)
        if executable is None:
            raise PrometheusUnavailableError(f"{binary} is not installed (Debian package `prometheus`)")
        self.executable = executable
        self.targets = list(targets)
        self.rule_groups = list(rule_groups)
        self.scrape_interval = scrape_interval
        self.metrics_path = metrics_path
        self.port = 0
        self._workdir: tempfile.TemporaryDirectory[str] | None = None
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _write_config(self, directory: Path) -> Path:
        rules = directory / "rules.yaml"
        rules.write_text(yaml.safe_dump({"groups": self.rule_groups}))
        config = {
            "global": {"scrape_interval": self.scrape_interval, "evaluation_interval": self.scrape_interval},
            "rule_files": [str(rules)],
            "scrape_configs": [
                {
                    "job_name": "synthetic",
                    "honor_labels": True,
                    "metrics_path": self.metrics_path,
                    "static_configs": [{"targets": self.targets}],
                }
            ],
        }
        path = directory / "prometheus.yml"
        path.write_text(yaml.safe_dump(config))
        return path

    def start(self, timeout: float = 30.0) -> PrometheusServer:
        self._workdir = tempfile.TemporaryDirectory(prefix="mlops-prometheus-")
        directory = Path(self._workdir.name)
        config = self._write_config(directory)
        self.port = _free_port()
        log = (directory / "prometheus.log").open("wb")
        self._process = subprocess.Popen(
            [
                self.executable,
                f"--config.file={config}",
                f"--storage.tsdb.path={directory / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--storage.tsdb.retention.time=1h",
                "--web.enable-lifecycle",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"prometheus exited: {(directory / 'prometheus.log').read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(f"{self.url}/-/ready", timeout=2) as response:
                    if response.status == 200:
                        return self
            except (urllib.error.URLError, ConnectionError):
                pass
            time.sleep(0.2)
        self.stop()
        raise TimeoutError(f"prometheus not ready on {self.url} within {timeout}s")

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._process = None
        if self._workdir is not None:
            self._workdir.cleanup()
            self._workdir = None

    def _api(self, path: str, params: dict[str, str]) -> Any:
        url = f"{self.url}/api/v1/{path}?{urllib.parse.urlencode(params)}"
        try:
            with urllib.request.urlopen(url, timeout=10) as response:
                body = json.load(response)
        except urllib.error.HTTPError as error:
            body = json.load(error)
        if body.get("status") != "success":
            raise ValueError(f"{body.get('errorType')}: {body.get('error')} in {params}")
        return body["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        """Instant query now; the result vector (`[{"metric": {...}, "value": [t, "v"]}, ...]`)."""
        data = self._api("query", {"query": expr})
        if data["resultType"] not in ("vector", "scalar"):
            raise ValueError(f"unexpected result type {data['resultType']} for {expr}")
        result: list[dict[str, Any]] = (
            data["result"] if data["resultType"] == "vector" else [{"metric": {}, "value": data["result"]}]
        )
        return result

    def values(self, expr: str) -> dict[tuple[tuple[str, str], ...], float]:
        """Instant query as {sorted label pairs: value}."""
        return {tuple(sorted(sample["metric"].items())): float(sample["value"][1]) for sample in self.query(expr)}

    def wait_for(self, expr: str, timeout: float = 30.0) -> list[dict[str, Any]]:
        """Poll `expr` until it returns data (e.g. enough scrapes for a rate)."""
        deadline = time.monotonic() + timeout
        while True:
            result = self.query(expr)
            if result or time.monotonic() > deadline:
                return result
            time.sleep(0.5)

    def rules(self) -> list[dict[str, Any]]:
        """Rules as Prometheus evaluates them (state, health, last error)."""
        groups: list[dict[str, Any]] = self._api("rules", {})["groups"]
        return [rule for group in groups for rule in group["rules"]]
