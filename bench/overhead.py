"""4. Stack overhead: a one-series seasonal-naive request over HTTP against the adapter called
directly, and the cost of each ingress step (auth, JSON parsing, load_table, build_tasks, response)
measured in-process."""

from __future__ import annotations

import json
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pandas as pd

from bench.common import API_KEY, HORIZON, forecast_body, percentile, table
from deployments.auth import KeyChecker
from deployments.schemas import ForecastRequest
from sapheneia.config import load_model_configs
from sapheneia.data import ColumnRoles, DataLimits, build_tasks, load_table
from sapheneia.keys import digest
from sapheneia.models import create_adapter
from sapheneia.tasks import ForecastResult, ForecastTask


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


def ingress_steps(n_series: int, n: int) -> list[list[object]]:
    """Median ms of each step the ingress runs per request, outside Serve."""
    raw = forecast_body("seasonal-naive", n_series)
    checker = KeyChecker([digest(API_KEY)])
    limits = DataLimits(data_dir=Path(tempfile.gettempdir()))
    adapter = create_adapter(load_model_configs(Path("configs/models"))["seasonal-naive"])
    body = ForecastRequest.model_validate_json(raw)
    frame = load_table(body.data or [], limits)
    tasks = build_tasks(frame, ColumnRoles(), HORIZON, tuple(body.quantiles), group="g")
    results = [r for r in adapter.forecast(tasks) if isinstance(r, ForecastResult)]

    def shape() -> bytes:
        out = pd.concat([r.to_frame() for r in results], ignore_index=True)
        out["ds"] = out["ds"].map(lambda t: t.isoformat())
        return json.dumps({"forecast": out.to_dict(orient="records")}).encode()

    steps: dict[str, Callable[[], object]] = {
        "auth (KeyChecker.check)": lambda: checker.check(f"Bearer {API_KEY}"),
        "JSON parsing (ForecastRequest.model_validate_json)": lambda: (
            ForecastRequest.model_validate_json(raw)
        ),
        "load_table (records -> DataFrame)": lambda: load_table(body.data or [], limits),
        "build_tasks": lambda: build_tasks(
            frame, ColumnRoles(), HORIZON, tuple(body.quantiles), group="g"
        ),
        "seasonal-naive adapter.forecast": lambda: adapter.forecast(tasks),
        "response (to_frame, concat, isoformat, json.dumps)": shape,
    }
    rows: list[list[object]] = []
    for name, call in steps.items():
        rows.append([n_series, name, statistics.median(timings(call, n)) * 1000])
    return rows


def run(serve_url: str, quick: bool) -> str:
    n = 30 if quick else 200
    adapter = create_adapter(load_model_configs(Path("configs/models"))["seasonal-naive"])
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
    steps = ingress_steps(1, n) + ingress_steps(32, max(n // 10, 10))
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
            f"- stack overhead at p50 (HTTP - direct), seasonal-naive as configured: {served:.1f} ms "
            f"(target <= 15 ms: {'met' if served <= 15 else 'not met'}); with no batch wait: "
            f"{overhead['seasonal-naive-nowait']:.1f} ms",
            "",
            "Ingress steps in-process (median ms per request):",
            "",
            table(["series/request", "step", "median ms"], steps),
        ]
    )
