"""``Client``: the v2 API in Nixtla's long-format convention, blocking."""

from __future__ import annotations

import time
from collections.abc import Callable
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
from sapheneia.client.jobs import Job
from sapheneia.client.results import Backtest, backtest_result, checked, forecast_frame
from sapheneia.client.retry import RetryPolicy
from sapheneia.client.tables import Chunk, halves
from sapheneia.errors import LimitExceeded, PayloadTooLarge


class Client(BaseClient[list[dict[str, Any]], pd.DataFrame, Backtest, Job]):
    """``Client(url, api_key)``; ``forecast``, ``backtest``, ``models``, ``submit``.

    Answers of 429 / 503 / 504 are retried after ``Retry-After`` (or an exponential backoff), a
    frame over ``max_series_per_request`` series or ``max_request_bytes`` is sent as several
    requests (and a chunk the server still refuses with 413 is halved), and every error answer
    raises the ``SapheneiaAPIError`` subclass of its code.
    """

    def __init__(
        self,
        url: str,
        api_key: str,
        *,
        timeout_s: float = 300.0,
        retry: RetryPolicy | None = None,
        max_series_per_request: int = MAX_SERIES_PER_REQUEST,
        max_request_bytes: int = MAX_REQUEST_BYTES,
        sleep: Callable[[float], None] = time.sleep,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        super().__init__(
            retry=retry,
            max_series_per_request=max_series_per_request,
            max_request_bytes=max_request_bytes,
        )
        self._sleep = sleep
        self._http = httpx.Client(**connection(url, api_key, timeout_s), transport=transport)

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def job(self, job_id: str, time_col: str = "ds") -> Job:
        """The handle of a job submitted earlier."""
        return Job(self._send, self._sleep, job_id, time_col)

    def _models(self) -> list[dict[str, Any]]:
        return list(self._send("GET", MODELS_PATH).json()["models"])

    def _forecast(self, request: Callable[[], tuple[TableCall, list[Chunk]]]) -> pd.DataFrame:
        call, chunks = request()
        answers = [answer for chunk in chunks for answer in self._chunk(call, chunk)]
        return forecast_frame(answers, call.columns.time_col)

    def _backtest(self, request: Callable[[], TableCall]) -> Backtest:
        call = request()
        answer = self._send("POST", call.path, **call.upload()).json()
        return backtest_result(answer, call.columns.time_col)

    def _submit(
        self, kind: JobKind, data: pd.DataFrame | str, request: Callable[[], TableCall]
    ) -> Job:
        call = request()
        body = self._send("POST", JOBS_PATH, **job_request(kind, data, call)).json()
        return self.job(str(body["job_id"]), call.columns.time_col)

    def _chunk(self, call: TableCall, chunk: Chunk) -> list[dict[str, Any]]:
        try:
            return [self._send("POST", call.path, **call.upload(chunk.rows)).json()]
        except (PayloadTooLarge, LimitExceeded):
            if chunk.series < 2:
                raise
            parts = halves(chunk, call.frame, call.columns.id_col)
            return [answer for part in parts for answer in self._chunk(call, part)]

    def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        attempt = 0
        while True:
            response = self._http.request(method, path, **kwargs)
            delay = self.retry.delay_s(attempt, response)
            if delay is None:
                return checked(response)
            self._sleep(delay)
            attempt += 1
