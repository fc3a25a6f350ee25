"""``Client``: the v2 API in Nixtla's long-format convention, blocking."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
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
from sapheneia.client.jobs import Job
from sapheneia.client.results import Backtest, backtest_result, checked, forecast_frame
from sapheneia.client.retry import RetryPolicy
from sapheneia.client.tables import Chunk, Columns, halves, plan_chunks
from sapheneia.errors import LimitExceeded, PayloadTooLarge
from sapheneia.tasks import CovariateRole

#: Series per request and frame memory per request before a frame is split (the server's own
#: defaults are 100,000 series and 20 MiB; smaller requests also spread over replicas).
MAX_SERIES_PER_REQUEST = 1000
MAX_REQUEST_BYTES = 8 * 1024 * 1024


class Client:
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
        self.retry = retry or RetryPolicy()
        self.max_series_per_request = max_series_per_request
        self.max_request_bytes = max_request_bytes
        self._sleep = sleep
        self._http = httpx.Client(
            base_url=url.rstrip("/"),
            headers={"Authorization": f"Bearer {api_key}"},
            timeout=timeout_s,
            transport=transport,
        )

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def models(self) -> list[dict[str, Any]]:
        """Served models with status, capabilities (context, horizon, covariates) and licence."""
        return list(self._send("GET", MODELS_PATH).json()["models"])

    def forecast(
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
        """``h`` steps of every series in ``df`` (long format) → ``id_col, time_col, mean, median,
        q-<level>...``, ``h`` rows per series. Columns of ``df`` other than id, time and target are
        dynamic covariates unless ``covariates`` gives the roles; their future values are
        ``X_df`` (id, time and the covariate columns, ``h`` rows per series). ``model="auto"`` or
        ``"ensemble"`` choose per series among ``candidates`` (a ``model`` column says which);
        ``calibrate=True`` conformalises the quantiles (see the README's v2 section)."""
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
        answers = [answer for chunk in chunks for answer in self._forecast(call, chunk)]
        return forecast_frame(answers, time_col)

    def backtest(
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
        """Rolling-origin evaluation of ``models`` on the same windows, in one request: metrics
        average over all series, so a frame is not split (submit a job for a very large one)."""
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
        return backtest_result(self._send("POST", call.path, **call.upload()).json(), time_col)

    def submit(
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
    ) -> Job:
        """A batch job over ``data`` (a frame, or a path or URL the server reads): ``kind`` and
        the options of ``forecast`` or ``backtest``. Returns at once with the job's handle."""
        call = job_call(
            kind, data, h, model, models, Columns(id_col, time_col, target_col), options
        )
        body = self._send("POST", JOBS_PATH, **job_request(kind, data, call)).json()
        return self.job(str(body["job_id"]), time_col)

    def job(self, job_id: str, time_col: str = "ds") -> Job:
        """The handle of a job submitted earlier."""
        return Job(self._send, self._sleep, job_id, time_col)

    def _forecast(self, call: TableCall, chunk: Chunk) -> list[dict[str, Any]]:
        try:
            return [self._send("POST", call.path, **call.upload(chunk.rows)).json()]
        except (PayloadTooLarge, LimitExceeded):
            if chunk.series < 2:
                raise
            parts = halves(chunk, call.frame, call.columns.id_col)
            return [answer for part in parts for answer in self._forecast(call, part)]

    def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        attempt = 0
        while True:
            response = self._http.request(method, path, **kwargs)
            delay = self.retry.delay_s(attempt, response)
            if delay is None:
                return checked(response)
            self._sleep(delay)
            attempt += 1
