"""``AsyncClient``: ``Client``'s twin for asyncio; the chunks of a split frame go concurrently."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pandas as pd

from sapheneia.client.base import (
    MAX_REQUEST_BYTES,
    MAX_SERIES_PER_REQUEST,
    BaseClient,
    connection,
)
from sapheneia.client.calls import JOBS_PATH, MODELS_PATH, JobKind, TableCall, job_request
from sapheneia.client.jobs import AsyncJob
from sapheneia.client.results import Backtest, backtest_result, checked, forecast_frame
from sapheneia.client.retry import RetryPolicy
from sapheneia.client.tables import Chunk, halves
from sapheneia.errors import LimitExceeded, PayloadTooLarge

#: Requests of one split frame in flight at once.
MAX_CONCURRENT_REQUESTS = 4


class AsyncClient(
    BaseClient[
        Awaitable[list[dict[str, Any]]],
        Awaitable[pd.DataFrame],
        Awaitable[Backtest],
        Awaitable[AsyncJob],
    ]
):
    """``Client`` for asyncio, with the same methods awaited; at most ``max_concurrency``
    requests of one split frame are in flight at once."""

    def __init__(
        self,
        url: str,
        api_key: str,
        *,
        timeout_s: float = 300.0,
        retry: RetryPolicy | None = None,
        max_series_per_request: int = MAX_SERIES_PER_REQUEST,
        max_request_bytes: int = MAX_REQUEST_BYTES,
        max_concurrency: int = MAX_CONCURRENT_REQUESTS,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        super().__init__(
            retry=retry,
            max_series_per_request=max_series_per_request,
            max_request_bytes=max_request_bytes,
        )
        self.max_concurrency = max_concurrency
        self._sleep = sleep
        self._http = httpx.AsyncClient(**connection(url, api_key, timeout_s), transport=transport)

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    def job(self, job_id: str, time_col: str = "ds") -> AsyncJob:
        """The handle of a job submitted earlier."""
        return AsyncJob(self._send, self._sleep, job_id, time_col)

    async def _models(self) -> list[dict[str, Any]]:
        return list((await self._send("GET", MODELS_PATH)).json()["models"])

    async def _forecast(self, request: Callable[[], tuple[TableCall, list[Chunk]]]) -> pd.DataFrame:
        call, chunks = request()
        slots = asyncio.Semaphore(self.max_concurrency)
        parts = await asyncio.gather(*(self._chunk(call, chunk, slots) for chunk in chunks))
        return forecast_frame([answer for part in parts for answer in part], call.columns.time_col)

    async def _backtest(self, request: Callable[[], TableCall]) -> Backtest:
        call = request()
        answer = (await self._send("POST", call.path, **call.upload())).json()
        return backtest_result(answer, call.columns.time_col)

    async def _submit(
        self, kind: JobKind, data: pd.DataFrame | str, request: Callable[[], TableCall]
    ) -> AsyncJob:
        call = request()
        body = (await self._send("POST", JOBS_PATH, **job_request(kind, data, call))).json()
        return self.job(str(body["job_id"]), call.columns.time_col)

    async def _chunk(
        self, call: TableCall, chunk: Chunk, slots: asyncio.Semaphore
    ) -> list[dict[str, Any]]:
        try:
            async with slots:
                response = await self._send("POST", call.path, **call.upload(chunk.rows))
            return [response.json()]
        except (PayloadTooLarge, LimitExceeded):
            if chunk.series < 2:
                raise
            parts = halves(chunk, call.frame, call.columns.id_col)
            answers = await asyncio.gather(*(self._chunk(call, p, slots) for p in parts))
            return [answer for part in answers for answer in part]

    async def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        attempt = 0
        while True:
            response = await self._http.request(method, path, **kwargs)
            delay = self.retry.delay_s(attempt, response)
            if delay is None:
                return checked(response)
            await self._sleep(delay)
            attempt += 1
