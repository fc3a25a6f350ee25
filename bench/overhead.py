"""4. Stack overhead: a one-series seasonal-naive request over HTTP against the adapter called
directly, with the pieces of the path (a bare route, a handle call). The ingress's own steps are
bench/ingress.py's."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from bench.common import API_KEY, HORIZON, forecast_body, percentile, table
from sapheneia.config import load_model_configs
from sapheneia.data import ColumnRoles, DataLimits, build_tasks, load_table
from sapheneia.models import create_adapter
from sapheneia.tasks import ForecastTask


def timings(call: Callable[[], object], n: int) -> list[float]:
    call()
    out = []
    for _ in range(n):
        started = time.perf_counter()
        call()
        out.append(time.perf_counter() - started)
    return out


def http_latencies(url: str, model: str, n: int) -> tuple[list[float], list[float]]:
    """Client latency and the ingress route's own time (metadata.total_time_seconds), seconds."""
    body = forecast_body(model, 1)
    headers = {"Authorization": f"Bearer {API_KEY}", "Content-Type": "application/json"}
    client_s, route_s = [], []
    with httpx.Client(headers=headers, timeout=60) as client:
        for i in range(n + 5):
            started = time.perf_counter()
            response = client.post(f"{url}/api/v2/forecast", content=body)
            elapsed = time.perf_counter() - started
            response.raise_for_status()
            if i >= 5:  # warm-up
                client_s.append(elapsed)
                route_s.append(response.json()["metadata"]["total_time_seconds"])
    return client_s, route_s


def hops(url: str, tasks: list[ForecastTask], n: int) -> list[list[object]]:
    """The pieces of the path: proxy + ingress with no work, and the model call through a handle."""
    from ray import serve

    rows: list[list[object]] = []
    with httpx.Client(timeout=60) as client:
        root = timings(lambda: client.get(f"{url}/").raise_for_status(), n)
    rows.append(["HTTP GET / (proxy + ingress, no work)", *p50_p99(root), "-"])
    for model in ("seasonal-naive", "seasonal-naive-nowait"):
        handle = serve.get_deployment_handle(f"model-{model}", app_name="api")

        def call_model(handle: Any = handle) -> object:
            return handle.forecast.remote(tasks).result()

        call = timings(call_model, n)
        rows.append([f"handle.forecast.remote from the driver ({model})", *p50_p99(call), "-"])
    return rows


def p50_p99(seconds: list[float]) -> list[float]:
    return [percentile(seconds, 50) * 1e3, percentile(seconds, 99) * 1e3]


def run(serve_url: str, quick: bool) -> str:
    n = 30 if quick else 200
    adapter = create_adapter(load_model_configs(Path("configs/models"))["seasonal-naive"])
    adapter.load()  # unloaded, forecast only answers 'not loaded'
    frame = load_table(
        json.loads(forecast_body("seasonal-naive", 1))["data"], DataLimits(data_dir=Path("/tmp"))
    )
    task = build_tasks(frame, ColumnRoles(), HORIZON, (0.1, 0.5, 0.9))
    direct = timings(lambda: adapter.forecast(task), n)
    rows: list[list[object]] = [
        [
            "adapter.forecast, in-process",
            percentile(direct, 50) * 1e3,
            percentile(direct, 99) * 1e3,
            "-",
        ]
    ]
    overhead = {}
    for model, wait in (("seasonal-naive", "5 ms"), ("seasonal-naive-nowait", "0")):
        client_s, route_s = http_latencies(serve_url, model, n)
        p50 = percentile(client_s, 50) * 1e3
        rows.append(
            [
                f"HTTP {model} (batch wait {wait})",
                p50,
                percentile(client_s, 99) * 1e3,
                percentile(route_s, 50) * 1e3,
            ]
        )
        overhead[model] = p50 - percentile(direct, 50) * 1e3
    rows += hops(serve_url, task, n)
    served = overhead["seasonal-naive"]
    return "\n".join(
        [
            "## 4. Stack overhead",
            "",
            f"One series of 512 points, horizon {HORIZON}, {n} sequential requests (keep-alive) after "
            "5 warm-up ones. 'route ms' is the ingress handler's own time (metadata."
            "total_time_seconds); the rest of the client latency is the Serve proxy, HTTP and the "
            "FastAPI middleware/auth.",
            "",
            table(["path", "p50 ms", "p99 ms", "route p50 ms"], rows),
            "",
            f"- stack overhead at p50 (HTTP - direct), no batch wait (serve_config.yaml's "
            f"setting for the statistical models): {overhead['seasonal-naive-nowait']:.1f} ms "
            f"(target <= 15 ms: {'met' if overhead['seasonal-naive-nowait'] <= 15 else 'not met'}); "
            f"with a 5 ms batch wait: {served:.1f} ms; the floor, a bare route (GET /), is in the "
            "table",
            "",
            "The ingress's own steps, per request and per series: bench/ingress.py.",
        ]
    )
