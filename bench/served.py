"""2./3. TimesFM-2.5 behind the real service over HTTP, batching on and off, against the earlier
one-request-at-a-time architecture (bench/seed_baseline.py), driven by an async load generator.

Batching on and off are two deployments of the same checkpoint in one app (``timesfm-2.5`` with
``max_batch_size: 32``, ``timesfm-2.5-b1`` with ``max_batch_size: 1``), so that the variants can be
measured in turns, side by side, on this shared machine.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.common import CONTEXT, HORIZON, LoadResult, forecast_body, free_port, run_load, table
from bench.seed_baseline import SeedServer

TIMESFM_OPTIONS = {"max_context": CONTEXT, "max_horizon": HORIZON, "batch_size": 32}
MODEL_CPUS = 2  # Ray sets a replica's OMP_NUM_THREADS to floor(num_cpus): match the ceiling's 2
BATCH_WAIT_S = 0.02  # serve_config.yaml's value for TimesFM


def timesfm_entry(
    model_id: str, checkpoint: Path, max_batch_size: int, batch_wait_s: float = BATCH_WAIT_S
) -> dict[str, Any]:
    return {
        "id": model_id,
        "adapter": "timesfm-2.5",
        "checkpoint": str(checkpoint),
        "device": "cpu",
        "options": TIMESFM_OPTIONS,
        "ray_actor_options": {"num_cpus": MODEL_CPUS},
        "user_config": {"max_batch_size": max_batch_size, "batch_wait_timeout_s": batch_wait_s},
    }


def app_args(checkpoint: Path) -> dict[str, Any]:
    """The benchmark app: TimesFM-2.5 batched and unbatched, seasonal-naive with and without wait."""
    naive = {"ray_actor_options": {"num_cpus": 0.25}}
    return {
        "models_dir": "configs/models",
        "ingress": {"ray_actor_options": {"num_cpus": 0.25}},
        "models": [
            timesfm_entry("timesfm-2.5", checkpoint, 32),
            timesfm_entry("timesfm-2.5-b1", checkpoint, 1),
            timesfm_entry("timesfm-2.5-wait200", checkpoint, 32, batch_wait_s=0.2),
            {
                **naive,
                "id": "seasonal-naive",
                "user_config": {"max_batch_size": 64, "batch_wait_timeout_s": 0.005},
            },
            {
                **naive,
                "id": "seasonal-naive-nowait",
                "adapter": "statsforecast",
                "options": {"method": "seasonal-naive"},
                "user_config": {"max_batch_size": 64, "batch_wait_timeout_s": 0.0},
            },
        ],
    }


def statistical_args() -> dict[str, Any]:
    """The benchmark app's statistical models alone (what bench/overhead.py calls)."""
    args = app_args(Path("unused"))
    args["models"] = [m for m in args["models"] if m["id"].startswith("seasonal-naive")]
    return args


VARIANTS = {
    "batching on": "timesfm-2.5",
    "batching off": "timesfm-2.5-b1",
    "seed baseline": "timesfm-2.5",
    "batching on, wait 0.2 s": "timesfm-2.5-wait200",
}


def run(
    serve_url: str, checkpoint: Path, ceilings: dict[tuple[str, int], float], quick: bool
) -> str:
    """Measure in turns and return the section for RESULTS.md."""
    seed = SeedServer(checkpoint, free_port())
    urls = {
        "batching on": f"{serve_url}/api/v2/forecast",
        "batching off": f"{serve_url}/api/v2/forecast",
        "seed baseline": f"{seed.url}/api/v2/forecast",
        "batching on, wait 0.2 s": f"{serve_url}/api/v2/forecast",
    }
    bodies = {name: forecast_body(model, 1) for name, model in VARIANTS.items()}
    duration, repeats = (4.0, 1) if quick else (8.0, 3)
    concurrencies = [1, 8] if quick else [1, 8, 32]
    results: dict[tuple[str, int, int], list[LoadResult]] = defaultdict(list)
    try:
        for name in VARIANTS:  # warm-up: load paths, compile the batch shapes
            run_load(urls[name], bodies[name], 8, 2.0)
        for repeat in range(repeats):
            order = list(VARIANTS)[repeat % 4 :] + list(VARIANTS)[: repeat % 4]
            for concurrency in concurrencies:
                for name in order:
                    if "wait" in name and concurrency == 1:
                        continue  # a longer wait only adds latency when nothing else arrives
                    outcome = run_load(urls[name], bodies[name], concurrency, duration, concurrency)
                    results[(name, 1, concurrency)].append(outcome)
                    print(name, concurrency, f"{outcome.series_per_s:.2f} series/s", flush=True)
        big = {name: forecast_body(model, 32) for name, model in VARIANTS.items()}
        big_cells = [("batching on", 1), ("seed baseline", 1), ("batching off", 1)]
        if not quick:
            big_cells += [("batching on", 8), ("seed baseline", 8)]
        for name, concurrency in big_cells:
            outcome = run_load(urls[name], big[name], concurrency, 0.0, concurrency)
            results[(name, 32, concurrency)].append(outcome)
            print(
                name, "32/request", concurrency, f"{outcome.series_per_s:.2f} series/s", flush=True
            )
    finally:
        seed.close()
    return report(results, ceilings, repeats, duration)


def merged(runs: Sequence[LoadResult]) -> LoadResult:
    out = LoadResult(runs[0].concurrency, 0, 0, 0.0)
    for r in runs:
        out.requests, out.series, out.errors = (
            out.requests + r.requests,
            out.series + r.series,
            out.errors + r.errors,
        )
        out.latencies_s += r.latencies_s
        out.batch_sizes += r.batch_sizes
    return out


def report(
    results: dict[tuple[str, int, int], list[LoadResult]],
    ceilings: dict[tuple[str, int], float],
    repeats: int,
    duration: float,
) -> str:
    rows = []
    for (name, per_request, concurrency), runs in sorted(
        results.items(), key=lambda kv: (kv[0][1], kv[0][2], kv[0][0])
    ):
        all_runs = merged(runs)
        rows.append(
            [
                name,
                per_request,
                concurrency,
                statistics.median(r.series_per_s for r in runs),
                all_runs.latency_ms(50),
                all_runs.latency_ms(95),
                all_runs.latency_ms(99),
                all_runs.batch_summary(),
                all_runs.requests,
                all_runs.errors,
            ]
        )
    headers = [
        "variant",
        "series/req",
        "concurrency",
        "series/s (median)",
        "p50 ms",
        "p95 ms",
        "p99 ms",
    ]
    headers += ["batch median / max", "requests", "errors"]
    lines = [
        "## 2./3. Served over HTTP vs one request at a time",
        "",
        f"TimesFM-2.5 (full size, random weights, context {CONTEXT}, horizon {HORIZON}) behind the "
        f"real service (Ray Serve on 127.0.0.1, model replica num_cpus {MODEL_CPUS}, "
        f"batch wait {BATCH_WAIT_S} s), closed-loop httpx.AsyncClient clients. One-series cells: "
        f"{repeats} turn(s) of {duration:.0f} s per variant, variants in rotating order; series/s is "
        "the median over turns, latencies pooled. 32-series cells: one round per client. "
        "'seed baseline' = bench/seed_baseline.py (uvicorn, one worker, one model call at a time).",
        "",
        table(headers, rows),
        "",
        "### Ratios and targets",
        "",
    ]
    lines += ratios(results, ceilings)
    return "\n".join(lines)


def ratios(
    results: dict[tuple[str, int, int], list[LoadResult]], ceilings: dict[tuple[str, int], float]
) -> list[str]:
    def per_turn(a: str, b: str, per_request: int, concurrency: int) -> float | None:
        pairs = zip(
            results.get((a, per_request, concurrency), []),
            results.get((b, per_request, concurrency), []),
            strict=False,
        )
        values = [x.series_per_s / y.series_per_s for x, y in pairs if y.series_per_s]
        return statistics.median(values) if values else None

    lines = []
    top = max((c for (_, p, c) in results if p == 1), default=1)
    for other in ("batching off", "seed baseline"):
        value = per_turn("batching on", other, 1, top)
        if value is not None:
            met = "met" if value >= 3 else "not met"
            lines.append(
                f"- batching on / {other}, 1 series/request, concurrency {top}: {value:.2f}x (target >= 3x: {met})"
            )
    ceiling = ceilings.get(("timesfm-2.5", 32))
    for per_request, concurrency in ((1, top), (32, 8), (32, 1)):
        runs = results.get(("batching on", per_request, concurrency))
        if ceiling and runs:
            value = statistics.median(r.series_per_s for r in runs) / ceiling
            met = "met" if value >= 0.9 else "not met"
            lines.append(
                f"- served (batching on, {per_request} series/request, concurrency {concurrency}) / "
                f"ceiling at batch 32 ({ceiling:.2f} series/s): {value:.2f} (target >= 0.9: {met})"
            )
    return lines
