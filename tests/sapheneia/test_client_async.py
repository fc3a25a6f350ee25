"""``sapheneia.AsyncClient`` against ``httpx.MockTransport``: the same behaviour as ``Client``,
with a split frame's requests in flight together (bounded)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pandas as pd
import pytest

from sapheneia import AsyncClient, Client, errors
from sapheneia.client import SapheneiaAPIError
from tests.sapheneia.fake_api import FakeForecastAPI, daily, error

URL = "http://sapheneia.test"
KEY = "key-0123456789abcdef"


def run_fresh(coroutine: Any) -> Any:
    """``asyncio.run`` in a thread of its own: an earlier test's loop may still be set here."""
    import concurrent.futures

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


def async_client(
    handler: Callable[[httpx.Request], Awaitable[httpx.Response]],
    sleeps: list[float] | None = None,
    **options: object,
) -> AsyncClient:
    async def sleep(seconds: float) -> None:
        if sleeps is not None:
            sleeps.append(seconds)

    return AsyncClient(URL, KEY, transport=httpx.MockTransport(handler), sleep=sleep, **options)  # type: ignore[arg-type]


def sequence(*responses: httpx.Response) -> tuple[Callable, list[httpx.Request]]:
    seen: list[httpx.Request] = []

    async def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return responses[len(seen) - 1]

    return handle, seen


class Concurrent:
    """The fake forecast route, answering after a pause and counting requests in flight."""

    def __init__(self, **options: object) -> None:
        self.api = FakeForecastAPI(**options)  # type: ignore[arg-type]
        self.in_flight = 0
        self.most = 0

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        self.in_flight += 1
        self.most = max(self.most, self.in_flight)
        await asyncio.sleep(0.05)
        self.in_flight -= 1
        return self.api(request)


def test_retries_wait_what_retry_after_asks() -> None:
    models = httpx.Response(200, json={"models": [{"id": "auto-ets"}]})
    handle, seen = sequence(
        error(429, "rate_limited", "slow down", **{"Retry-After": "3"}),
        httpx.Response(504, text="gateway timeout"),
        models,
    )
    sleeps: list[float] = []

    async def run() -> list:
        async with async_client(handle, sleeps) as c:
            return await c.models()

    assert run_fresh(run()) == [{"id": "auto-ets"}]
    assert sleeps == [3.0, 1.0] and len(seen) == 3  # the backoff counts every retry so far


def test_an_error_answer_raises_its_class() -> None:
    handle, _ = sequence(error(400, "covariates_not_supported", "model 'x' takes none"))

    async def run() -> None:
        async with async_client(handle) as c:
            await c.models()

    with pytest.raises(errors.CovariatesNotSupported) as raised:
        run_fresh(run())
    assert isinstance(raised.value, SapheneiaAPIError) and raised.value.request_id == "req-1"


def test_a_split_frame_goes_concurrently_within_the_bound_and_merges_like_the_sync_client() -> None:
    frame = daily({f"s{i}": float(i) for i in range(12)})
    route = Concurrent()

    async def run() -> pd.DataFrame:
        async with async_client(route, max_series_per_request=2, max_concurrency=3) as c:
            return await c.forecast(frame, 2, model="m", quantiles=[0.5])

    merged = run_fresh(run())
    assert len(route.api.requests) == 6
    assert route.most == 3
    with Client(URL, KEY, transport=httpx.MockTransport(FakeForecastAPI())) as c:
        one = c.forecast(frame, 2, model="m", quantiles=[0.5])
    pd.testing.assert_frame_equal(merged, one)


def test_a_refused_chunk_is_halved() -> None:
    frame = daily({f"s{i}": float(i) for i in range(5)})
    route = Concurrent(max_series=2)

    async def run() -> pd.DataFrame:
        async with async_client(route) as c:
            return await c.forecast(frame, 1, model="m")

    forecast = run_fresh(run())
    assert forecast["unique_id"].tolist() == [f"s{i}" for i in range(5)]
    assert len(route.api.requests) == 5  # 5 refused, 3 refused, then 2 + 1 + 2


def test_backtest_and_a_job_awaited() -> None:
    backtest = {"metrics": [{"model": "m", "MASE": 1.0}], "forecasts": [], "metadata": {}}
    handle, seen = sequence(
        httpx.Response(200, json=backtest),
        httpx.Response(202, json={"job_id": "j1", "status": "queued"}),
        httpx.Response(200, json={"job_id": "j1", "status": "running"}),
        httpx.Response(200, json={"job_id": "j1", "status": "succeeded"}),
        httpx.Response(
            200,
            json={"model": "m", "forecast": [{"unique_id": "a", "ds": "2024-01-11", "mean": 2.0}]},
        ),
        httpx.Response(200, json={"job_id": "j1", "status": "cancelled"}),
    )
    sleeps: list[float] = []

    async def run() -> tuple:
        async with async_client(handle, sleeps) as c:
            report = await c.backtest(daily({"a": 1.0}), 1, models=["m"])
            job = await c.submit(daily({"a": 1.0}), 1, model="m")
            state = await job.wait(poll_s=2)
            return report, state, await job.result(), await job.cancel()

    report, state, result, cancelled = run_fresh(run())
    assert report.metrics["MASE"].tolist() == [1.0]
    assert state.status == "succeeded" and sleeps == [2]
    assert result["ds"].tolist() == [pd.Timestamp("2024-01-11")]
    assert cancelled.status == "cancelled"
    assert [(r.method, r.url.path) for r in seen[1:]] == [
        ("POST", "/api/v2/jobs"),
        ("GET", "/api/v2/jobs/j1"),
        ("GET", "/api/v2/jobs/j1"),
        ("GET", "/api/v2/jobs/j1/result"),
        ("DELETE", "/api/v2/jobs/j1"),
    ]


def test_a_mistake_in_the_arguments_is_raised_when_awaited() -> None:
    handle, seen = sequence()
    frame = daily({"a": 1.0})

    async def run() -> None:
        async with async_client(handle) as c:
            pending = c.submit(frame, 3)  # a forecast job without model=: nothing raised yet
            with pytest.raises(ValueError, match="needs model="):
                await pending

    run_fresh(run())
    assert seen == []
