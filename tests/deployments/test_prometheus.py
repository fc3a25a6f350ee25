"""A real Prometheus (Debian's package) scrapes the running service; the shipped config and dashboard
hold against what the service exports."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from tests.deployments.conftest import assert_error, free_port
from tests.deployments.test_unified import rows

MONITORING = Path(__file__).resolve().parents[2] / "deploy" / "monitoring"
DASHBOARD = MONITORING / "sapheneia-dashboard.json"
# What the issue asks the dashboard to show, as the series that show it.
REQUIRED = {
    "ray_sapheneia_series_forecasted_total",  # series/s per model
    "ray_sapheneia_batch_size_bucket",  # batch sizes
    "ray_sapheneia_model_latency_seconds_bucket",  # latency quantiles (model)
    "ray_serve_http_request_latency_ms_bucket",  # latency quantiles (HTTP)
    "ray_sapheneia_requests_total",  # errors by code
    "ray_serve_deployment_queued_queries",  # queue depth
    "ray_serve_deployment_replica_healthy",  # replicas
}
METRIC_NAME = re.compile(r"\bray_[a-z0-9_]+\b")


def tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"{name} is missing: make prometheus (apt-get install prometheus)")
    return path


def metrics_targets() -> list[str]:
    """Every live node's metrics endpoint (one node today, more in a multi-node test cluster).

    On loopback: the test nodes all run on this machine, and a node's reported address may be the
    machine's network address, which would scrape the same endpoint twice and count it double.
    """
    import os

    import ray

    ports = {int(p) for p in os.environ["SAPHENEIA_TEST_METRICS_PORTS"].split(",") if p}
    ports |= {
        int(node["MetricsExportPort"])
        for node in ray.nodes()
        if node.get("Alive", node.get("alive"))
    }
    return [f"127.0.0.1:{port}" for port in sorted(ports)]


def report_interval_s() -> float:
    """How often Ray's workers push their metrics to the node's endpoint."""
    import ray

    return float(ray._config.metrics_report_interval_ms()) / 1000


class Prometheus:
    def __init__(self, url: str, targets: list[str]) -> None:
        self.url = url
        self.targets = targets

    def query(self, expr: str) -> list[dict]:
        response = httpx.get(f"{self.url}/api/v1/query", params={"query": expr}, timeout=10)
        body = response.json()
        assert response.status_code == 200 and body["status"] == "success", (expr, body)
        return list(body["data"]["result"])

    def by_model(self, expr: str) -> dict[str, float]:
        return {r["metric"]["model"]: float(r["value"][1]) for r in self.query(expr)}


def until(check, timeout_s: float, pause_s: float = 1.0):  # type: ignore[no-untyped-def]
    """``check()`` once it is truthy, polled for at most ``timeout_s``; its last value otherwise."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(pause_s)


@pytest.fixture(scope="module")
def prometheus(serve_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Prometheus]:
    binary = tool("prometheus")
    root = tmp_path_factory.mktemp("prometheus")
    targets = metrics_targets()
    config = {
        # A loaded node's endpoint can take over a second to answer: allow two.
        "global": {"scrape_interval": "2s", "scrape_timeout": "2s"},
        "scrape_configs": [{"job_name": "ray", "static_configs": [{"targets": targets}]}],
    }
    (root / "prometheus.yml").write_text(yaml.safe_dump(config))
    port = free_port()
    log = (root / "prometheus.log").open("w")
    process = subprocess.Popen(
        [
            binary,
            f"--config.file={root / 'prometheus.yml'}",
            f"--storage.tsdb.path={root / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        server = Prometheus(f"http://127.0.0.1:{port}", targets)

        def ready() -> bool:
            assert process.poll() is None, (root / "prometheus.log").read_text()[-2000:]
            try:
                return httpx.get(f"{server.url}/-/ready", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        assert until(ready, 30, 0.2), "Prometheus did not get ready"

        # Every node's endpoint scraped, and up.
        def all_up() -> bool:
            return len(server.query('up{job="ray"} == 1')) == len(targets)

        if not until(all_up, 60):
            response = httpx.get(f"{server.url}/api/v1/targets", timeout=10).json()
            health = [
                (t["scrapeUrl"], t["health"], t["lastError"])
                for t in response["data"]["activeTargets"]
            ]
            raise AssertionError(f"not every node's endpoint is up: {health}")
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def settled(prometheus: Prometheus, expr: str, timeout_s: float) -> dict[str, float]:
    """Per-model values once they stay put for longer than Ray's report interval, so that counts
    from earlier tests that are still on their way to the endpoint are not taken for ours."""
    still_for = report_interval_s() + 2
    deadline = time.monotonic() + timeout_s
    last, since = prometheus.by_model(expr), time.monotonic()
    while time.monotonic() - since < still_for:
        assert time.monotonic() < deadline, f"{expr} kept changing: {last}"
        time.sleep(1)
        now = prometheus.by_model(expr)
        if now != last:
            last, since = now, time.monotonic()
    return last


def test_prometheus_reads_series_forecasted_per_model(
    prometheus: Prometheus, client: httpx.Client
) -> None:
    # Ray exports the counter sapheneia_series_forecasted as ray_..._total; replicas and nodes are
    # summed, so auto-theta's two replicas count as one model.
    expr = "sum by (model) (ray_sapheneia_series_forecasted_total)"
    before = settled(prometheus, expr, timeout_s=25)
    sent = {"seasonal-naive": 3, "auto-theta": 4}
    requests = [
        ("seasonal-naive", {"a": 1.0, "b": 2.0, "c": 3.0}),
        ("auto-theta", {"a": 1.0, "b": 2.0}),
        ("auto-theta", {"c": 3.0, "d": 4.0}),
    ]
    for model, series in requests:
        body = {"model": model, "horizon": 3, "data": rows(series)}
        response = client.post("/api/v2/forecast", json=body)
        assert response.status_code == 200, response.text
    expected = {model: before.get(model, 0.0) + n for model, n in sent.items()}

    def counted() -> dict[str, float]:
        now = prometheus.by_model(expr)
        return {model: now.get(model, 0.0) for model in sent}

    assert until(lambda: counted() == expected, 30), (counted(), expected, before)


def test_errors_are_counted_by_route_template_and_code(
    prometheus: Prometheus, client: httpx.Client, anonymous: httpx.Client
) -> None:
    assert_error(anonymous.post("/api/v1/seasonal-naive/inference", json={}), 401, "unauthorized")
    bad = {"model": "seasonal-naive", "horizon": 0, "data": rows({"a": 1.0})}
    assert_error(client.post("/api/v2/forecast", json=bad), 400, "invalid_input")
    wanted = [
        'route="/api/v1/{model}/inference",status="401",code="unauthorized"',
        'route="/api/v2/forecast",status="400",code="invalid_input"',
    ]
    for labels in wanted:
        found = until(lambda: prometheus.query(f"ray_sapheneia_requests_total{{{labels}}}"), 30)  # noqa: B023
        assert found, labels
    # Route templates only: a caller-chosen path never becomes a series of its own.
    routes = {r["metric"]["route"] for r in prometheus.query("ray_sapheneia_requests_total")}
    assert "/api/v1/{model}/inference" in routes
    assert not any("seasonal-naive" in route for route in routes), routes


def dashboard_exprs() -> list[tuple[str, str]]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [
        (panel["title"], target["expr"])
        for panel in dashboard["panels"]
        for target in panel["targets"]
    ]


def test_dashboard_structure() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] and dashboard["title"] and dashboard["schemaVersion"] >= 36
    variables = {v["name"] for v in dashboard["templating"]["list"]}
    panels = dashboard["panels"]
    assert len({p["id"] for p in panels}) == len(panels)
    for panel in panels:
        assert panel["title"] and panel["type"] == "timeseries", panel
        assert set(panel["gridPos"]) == {"h", "w", "x", "y"}, panel["title"]
        # Every query through the dashboard's data source variable, so it works on any Grafana.
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        assert panel["targets"], panel["title"]
        assert len({t["refId"] for t in panel["targets"]}) == len(panel["targets"])
        for target in panel["targets"]:
            used = set(re.findall(r"\$(\w+)", target["expr"])) - {"__rate_interval"}
            assert used <= variables, (panel["title"], used - variables)
    names = {name for _, expr in dashboard_exprs() for name in METRIC_NAME.findall(expr)}
    assert not REQUIRED - names, REQUIRED - names


def exported_names() -> set[str]:
    """Sample names on every node's metrics endpoint, read directly (not through Prometheus)."""
    names: set[str] = set()
    for target in metrics_targets():
        text = httpx.get(f"http://{target}/metrics", timeout=10).text
        names |= {
            re.split(r"[{ ]", line, maxsplit=1)[0]
            for line in text.splitlines()
            if line and not line.startswith("#")
        }
    return names


def test_dashboard_metrics_are_exported_and_its_queries_answer(
    prometheus: Prometheus, client: httpx.Client
) -> None:
    body = {"model": "seasonal-naive", "horizon": 3, "data": rows({"a": 1.0})}
    assert client.post("/api/v2/forecast", json=body).status_code == 200
    assert_error(client.post("/api/v2/forecast", json={**body, "horizon": 0}), 400)
    used = {name for _, expr in dashboard_exprs() for name in METRIC_NAME.findall(expr)}
    # Ray's endpoint shows a series once a worker has reported it, a few seconds after the fact.
    until(lambda: used <= exported_names(), 30, 2)
    missing = used - exported_names()
    assert not missing, f"the dashboard queries series the service does not export: {missing}"
    # Each query, as Grafana would send it with every variable at "All", is valid PromQL and finds
    # series (Prometheus has scraped them by now).
    for title, expr in dashboard_exprs():
        concrete = (
            expr.replace("$__rate_interval", "30s")
            .replace("$model", ".*")
            .replace("$application", ".*")
        )
        assert until(lambda: prometheus.query(concrete), 15), (title, concrete)  # noqa: B023


def test_shipped_config_passes_promtool() -> None:
    from ray._private.ray_constants import PROMETHEUS_SERVICE_DISCOVERY_FILE

    shipped = MONITORING / "prometheus.yml"
    result = subprocess.run(
        [tool("promtool"), "check", "config", str(shipped)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    # It reads the file Ray's head node writes with every node's metrics endpoint.
    (job,) = yaml.safe_load(shipped.read_text())["scrape_configs"]
    (files,) = job["file_sd_configs"]
    assert files["files"] == [f"/tmp/ray/{PROMETHEUS_SERVICE_DISCOVERY_FILE}"]
