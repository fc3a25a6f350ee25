"""Shared by the benchmarks: request payloads, an async closed-loop load generator, a real Serve
instance on loopback, markdown tables and the RESULTS.md writer."""

from __future__ import annotations

import asyncio
import json
import os
import platform
import socket
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd

API_KEY = "bench-key-0123456789"
CONTEXT = 512
HORIZON = 128
QUANTILES = [0.1, 0.5, 0.9]
RESULTS = Path(__file__).resolve().parent / "RESULTS.md"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def series_rows(n_series: int, length: int = CONTEXT, seed: int = 0) -> list[dict[str, Any]]:
    """Long-format rows: ``n_series`` daily random walks of ``length`` points."""
    rng = np.random.default_rng(seed)
    days = pd.date_range("2020-01-01", periods=length, freq="D").strftime("%Y-%m-%d")
    rows = []
    for s in range(n_series):
        values = 100 + rng.normal(size=length).cumsum()
        rows += [
            {"unique_id": f"s{s}", "ds": d, "y": float(v)}
            for d, v in zip(days, values, strict=True)
        ]
    return rows


def forecast_body(model: str, n_series: int, horizon: int = HORIZON) -> bytes:
    """A ``POST /api/v2/forecast`` JSON body."""
    request = {
        "model": model,
        "horizon": horizon,
        "quantiles": QUANTILES,
        "data": series_rows(n_series),
    }
    return json.dumps(request).encode()


@dataclass
class LoadResult:
    """One load-generator run: throughput, latency percentiles (ms) and batch sizes seen."""

    concurrency: int
    requests: int
    series: int
    seconds: float
    latencies_s: list[float] = field(default_factory=list)
    batch_sizes: list[int] = field(default_factory=list)
    errors: int = 0

    @property
    def series_per_s(self) -> float:
        return self.series / self.seconds if self.seconds else 0.0

    def latency_ms(self, q: float) -> float:
        return percentile(self.latencies_s, q) * 1000

    def batch_summary(self) -> str:
        """Median and max batch size the model ran this run's series in."""
        if not self.batch_sizes:
            return "-"
        return f"{statistics.median(self.batch_sizes):g} / {max(self.batch_sizes)}"


def percentile(values: Sequence[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


async def drive(
    url: str,
    body: bytes,
    concurrency: int,
    duration_s: float,
    min_requests: int = 0,
    headers: dict[str, str] | None = None,
    n_series: int | None = None,
) -> LoadResult:
    """Closed loop: ``concurrency`` clients send ``body`` back to back until ``duration_s`` has
    passed (and at least ``min_requests`` were sent). Throughput counts every series answered over
    the time until the last answer. A body other than JSON rows (Arrow) comes with its
    ``headers`` and ``n_series``."""
    if n_series is None:
        n_series = len({row["unique_id"] for row in json.loads(body)["data"]})
    headers = {
        "Authorization": f"Bearer {API_KEY}",
        **(headers or {"Content-Type": "application/json"}),
    }
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    result = LoadResult(concurrency, 0, 0, 0.0)
    sent = 0
    async with httpx.AsyncClient(headers=headers, limits=limits, timeout=600) as client:
        started = time.perf_counter()
        deadline = started + duration_s

        async def client_loop() -> None:
            nonlocal sent
            while time.perf_counter() < deadline or sent < min_requests:
                sent += 1
                t0 = time.perf_counter()
                response = await client.post(url, content=body)
                result.latencies_s.append(time.perf_counter() - t0)
                if response.status_code != 200:
                    result.errors += 1
                    continue
                metadata = answer_metadata(response)
                result.batch_sizes += [b for b in metadata.get("batch_sizes", []) if b]
                result.requests += 1
                result.series += n_series

        await asyncio.gather(*(client_loop() for _ in range(concurrency)))
        result.seconds = time.perf_counter() - started
    return result


def answer_metadata(response: httpx.Response) -> dict[str, Any]:
    """A forecast answer's metadata: the JSON answer's, or an Arrow answer's schema metadata."""
    if response.headers.get("content-type", "").startswith("application/vnd.apache.arrow"):
        import pyarrow as pa

        schema = pa.ipc.open_stream(response.content).schema
        return dict(json.loads(schema.metadata[b"sapheneia"]).get("metadata", {}))
    return dict(response.json().get("metadata", {}))


def run_load(
    url: str,
    body: bytes,
    concurrency: int,
    duration_s: float,
    min_requests: int = 0,
    headers: dict[str, str] | None = None,
    n_series: int | None = None,
) -> LoadResult:
    return asyncio.run(drive(url, body, concurrency, duration_s, min_requests, headers, n_series))


def wait_for_health(url: str, models: set[str], timeout_s: float = 300) -> dict[str, str]:
    """Until ``/health`` lists every model and none is 'initializing'; their statuses."""
    deadline = time.monotonic() + timeout_s
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = httpx.get(f"{url}/health", timeout=5).json()
            statuses = {m: s["status"] for m, s in last["models"].items()}
            if models <= set(statuses) and "initializing" not in statuses.values():
                return statuses
        except (httpx.HTTPError, KeyError, ValueError, TypeError):
            pass
        time.sleep(0.25)
    raise TimeoutError(f"service not ready after {timeout_s:.0f} s: {last}")


class ServeInstance:
    """A real Ray Serve instance on 127.0.0.1 in this process, as the test suite starts one."""

    def __init__(self, data_dir: Path, state_dir: Path, num_cpus: int = 8) -> None:
        import ray
        from ray import serve

        os.environ["HF_HUB_OFFLINE"] = "1"
        self.data_dir, self.state_dir = data_dir, state_dir
        # "local": a new instance even when /tmp/ray names someone's running `ray start`.
        ray.init(
            address="local",
            _node_ip_address="127.0.0.1",
            num_cpus=num_cpus,
            include_dashboard=False,
            _metrics_export_port=free_port(),
            configure_logging=False,
            log_to_driver=False,
            runtime_env={"env_vars": {"HF_HUB_OFFLINE": "1"}},
        )
        self.port = free_port()
        serve.start(http_options={"host": "127.0.0.1", "port": self.port})
        self.url = f"http://127.0.0.1:{self.port}"

    def deploy(self, args: dict[str, Any], **settings_fields: Any) -> dict[str, str]:
        """``serve.run(build_app(args))`` with the bench's key and no practical rate limit (plus
        ``settings_fields``); waits until every model has left 'initializing'. Deploying again
        reconfigures the running app: a changed user_config keeps the weights loaded."""
        from ray import serve

        from deployments.builder import build_app_with_settings
        from sapheneia.settings import Settings

        settings = Settings(
            api_keys=API_KEY,
            data_dir=self.data_dir,
            state_dir=self.state_dir,
            rate_limit_per_minute=10_000_000,
            **settings_fields,
        )
        serve.run(build_app_with_settings(args, settings), name="api", route_prefix="/")
        return wait_for_health(self.url, {m["id"] for m in args["models"]})

    def close(self) -> None:
        import ray
        from ray import serve

        serve.shutdown()
        ray.shutdown()


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A markdown table; floats with 3 significant digits at least one decimal."""

    def cell(value: object) -> str:
        if isinstance(value, float):
            return f"{value:.3g}" if abs(value) < 100 else f"{value:.0f}"
        return str(value)

    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def machine() -> str:
    import torch

    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return (
        f"{os.cpu_count()} cores, torch {torch.__version__} with {torch.get_num_threads()} threads "
        f"in the bench process, Python {platform.python_version()}, load average at start {load}"
    )


def write_results(sections: Sequence[str], started: float, header_machine: str) -> None:
    """Replace bench/RESULTS.md with the command, machine, date and each section."""
    command = "python -m bench.run_all " + " ".join(sys.argv[1:])
    date = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    head = [
        "# Benchmark results",
        "",
        f"- command: `{command.strip()}` (from the repository root, venv active)",
        f"- machine: {header_machine}",
        f"- date: {date}; the whole run took {(time.time() - started) / 60:.1f} min",
        "- the machine is shared with other engineers' test runs: compare ratios measured side by "
        "side in one run, not absolute times across runs",
        "",
    ]
    RESULTS.write_text("\n".join(head) + "\n" + "\n\n".join(sections) + "\n")
