"""``AsyncClient``: ``Client``'s twin for asyncio; the chunks of a split frame go concurrently."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

import httpx
import pandas as pd

from sapheneia.client.calls import (
    JOBS_PATH,
    MODELS_PATH,
    JobKind,
    TableCall,
    backtest_call,
    forecast_call,
    job_call,
    job_request,
)
from sapheneia.client.jobs import AsyncJob
from sapheneia.client.results import Backtest, backtest_result, checked, forecast_frame
from sapheneia.client.retry import RetryPolicy
from sapheneia.client.sync import MAX_REQUEST_BYTES, MAX_SERIES_PER_REQUEST
from sapheneia.client.tables import Chunk, Columns, halves, plan_chunks
from sapheneia.errors import LimitExceeded, PayloadTooLarge
from sapheneia.tasks import CovariateRole

#: Requests of one split frame in flight at once.
MAX_CONCURRENT_REQUESTS = 4


class AsyncClient:
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
        self.retry = retry or RetryPolicy()
        self.max_series_per_request = max_series_per_request
        self.max_request_bytes = max_request_bytes
        self.max_concurrency = max_concurrency
        self._sleep = sleep
        self._http = httpx.AsyncClient(
            base_url=url.rstrip("/"),
            headers={"Authorization": f"Bearer {api_key}"},
            timeout=timeout_s,
            transport=transport,
        )

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def models(self) -> list[dict[str, Any]]:
        """Served models with status, capabilities (context, horizon, covariates) and licence."""
        return list((await self._send("GET", MODELS_PATH)).json()["models"])

    async def forecast(
        self,
        df: pd.DataFrame,
        h: int,
        *,
        model: str,
        quantiles: Sequence[float] | None = None,
        X_df: pd.DataFrame | None = None,
        id_col: str = "unique_id",
        time_col: str = "ds",
        target_col: str = "y",
        covariates: Mapping[str, CovariateRole] | None = None,
        context_length: int | None = None,
        freq: str | None = None,
        candidates: Sequence[str] | None = None,
        windows: int | None = None,
        metric: str | None = None,
        k: int | None = None,
        calibrate: bool | None = None,
    ) -> pd.DataFrame:
        """As ``Client.forecast``."""
        columns = Columns(id_col, time_col, target_col)
        call = forecast_call(
            df,
            h,
            model=model,
            quantiles=quantiles,
            X_df=X_df,
            columns=columns,
            covariates=covariates,
            context_length=context_length,
            freq=freq,
            candidates=list(candidates) if candidates is not None else None,
            windows=windows,
            metric=metric,
            k=k,
            calibrate=calibrate,
        )
        chunks = plan_chunks(
            call.frame, id_col, self.max_series_per_request, self.max_request_bytes
        )
        slots = asyncio.Semaphore(self.max_concurrency)
        parts = await asyncio.gather(*(self._forecast(call, chunk, slots) for chunk in chunks))
        return forecast_frame([answer for part in parts for answer in part], time_col)

    async def backtest(
        self,
        df: pd.DataFrame,
        h: int,
        *,
        models: Sequence[str],
        n_windows: int | None = None,
        step: int | None = None,
        quantiles: Sequence[float] | None = None,
        id_col: str = "unique_id",
        time_col: str = "ds",
        target_col: str = "y",
        covariates: Mapping[str, CovariateRole] | None = None,
        context_length: int | None = None,
        freq: str | None = None,
    ) -> Backtest:
        """As ``Client.backtest``."""
        columns = Columns(id_col, time_col, target_col)
        call = backtest_call(
            df,
            h,
            models=models,
            n_windows=n_windows,
            step=step,
            quantiles=quantiles,
            columns=columns,
            covariates=covariates,
            context_length=context_length,
            freq=freq,
        )
        answer = (await self._send("POST", call.path, **call.upload())).json()
        return backtest_result(answer, time_col)

    async def submit(
        self,
        data: pd.DataFrame | str,
        h: int,
        *,
        kind: JobKind = "forecast",
        model: str | None = None,
        models: Sequence[str] | None = None,
        id_col: str = "unique_id",
        time_col: str = "ds",
        target_col: str = "y",
        **options: Any,
    ) -> AsyncJob:
        """As ``Client.submit``."""
        call = job_call(
            kind, data, h, model, models, Columns(id_col, time_col, target_col), options
        )
        body = (await self._send("POST", JOBS_PATH, **job_request(kind, data, call))).json()
        return self.job(str(body["job_id"]), time_col)

    def job(self, job_id: str, time_col: str = "ds") -> AsyncJob:
        return AsyncJob(self._send, self._sleep, job_id, time_col)

    async def _forecast(
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
            answers = await asyncio.gather(*(self._forecast(call, p, slots) for p in parts))
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
