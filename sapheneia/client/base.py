"""What ``Client`` and ``AsyncClient`` share: their settings and each method's request, written once.

A method here says how to build its request and hands that to the subclass, which builds and sends
it, blocking or awaited, and returns the answer (``AsyncClient``'s is awaitable, and a mistake in the
arguments is raised when it is awaited, as any other error). So the two clients keep one signature
and one docstring per method, and differ only in how they send.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from typing import Any, Generic, TypeVar

import pandas as pd

from sapheneia.client.calls import JobKind, TableCall, backtest_call, forecast_call, job_call
from sapheneia.client.retry import RetryPolicy
from sapheneia.client.tables import Chunk, Columns, plan_chunks
from sapheneia.tasks import CovariateRole

#: Series per request and frame memory per request before a frame is split (the server's own
#: defaults are 100,000 series and 20 MiB; smaller requests also spread over replicas).
MAX_SERIES_PER_REQUEST = 1000
MAX_REQUEST_BYTES = 8 * 1024 * 1024

# What each method answers: a value for ``Client``, an awaitable of it for ``AsyncClient``.
ModelsT = TypeVar("ModelsT")
FrameT = TypeVar("FrameT")
BacktestT = TypeVar("BacktestT")
JobT = TypeVar("JobT")


def connection(url: str, api_key: str, timeout_s: float) -> dict[str, Any]:
    """The ``httpx`` client's settings: base URL, the key as a bearer token, the timeout."""
    return {
        "base_url": url.rstrip("/"),
        "headers": {"Authorization": f"Bearer {api_key}"},
        "timeout": timeout_s,
    }


class BaseClient(ABC, Generic[ModelsT, FrameT, BacktestT, JobT]):
    """The v2 API in Nixtla's long-format convention; a subclass sends the requests."""

    def __init__(
        self,
        *,
        retry: RetryPolicy | None,
        max_series_per_request: int,
        max_request_bytes: int,
    ) -> None:
        self.retry = retry or RetryPolicy()
        self.max_series_per_request = max_series_per_request
        self.max_request_bytes = max_request_bytes

    def models(self) -> ModelsT:
        """Served models with status, capabilities (context, horizon, covariates) and licence."""
        return self._models()

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
    ) -> FrameT:
        """``h`` steps of every series in ``df`` (long format) → ``id_col, time_col, mean, median,
        q-<level>...``, ``h`` rows per series. Columns of ``df`` other than id, time and target are
        dynamic covariates unless ``covariates`` gives the roles; their future values are
        ``X_df`` (id, time and the covariate columns, ``h`` rows per series). ``model="auto"`` or
        ``"ensemble"`` choose per series among ``candidates`` (a ``model`` column says which);
        ``calibrate=True`` conformalises the quantiles (see the README's v2 section)."""

        def request() -> tuple[TableCall, list[Chunk]]:
            call = forecast_call(
                df,
                h,
                model=model,
                quantiles=quantiles,
                X_df=X_df,
                columns=Columns(id_col, time_col, target_col),
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
            return call, chunks

        return self._forecast(request)

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
    ) -> BacktestT:
        """Rolling-origin evaluation of ``models`` on the same windows, in one request: metrics
        average over all series, so a frame is not split (submit a job for a very large one)."""
        request = partial(
            backtest_call,
            df,
            h,
            models=models,
            n_windows=n_windows,
            step=step,
            quantiles=quantiles,
            columns=Columns(id_col, time_col, target_col),
            covariates=covariates,
            context_length=context_length,
            freq=freq,
        )
        return self._backtest(request)

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
    ) -> JobT:
        """A batch job over ``data`` (a frame, or a path or URL the server reads): ``kind`` and
        the options of ``forecast`` or ``backtest``. Returns at once with the job's handle."""
        columns = Columns(id_col, time_col, target_col)
        request = partial(job_call, kind, data, h, model, models, columns, options)
        return self._submit(kind, data, request)

    @abstractmethod
    def _models(self) -> ModelsT:
        """``GET /api/v2/models``'s list."""

    @abstractmethod
    def _forecast(self, request: Callable[[], tuple[TableCall, list[Chunk]]]) -> FrameT:
        """One request per chunk (a chunk refused as too large is sent in halves), as one frame."""

    @abstractmethod
    def _backtest(self, request: Callable[[], TableCall]) -> BacktestT:
        """The whole frame in one request."""

    @abstractmethod
    def _submit(
        self, kind: JobKind, data: pd.DataFrame | str, request: Callable[[], TableCall]
    ) -> JobT:
        """``POST /api/v2/jobs``, and the handle of the job it started."""
