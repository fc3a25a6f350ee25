"""Answers as DataFrames and typed objects; error answers as exceptions."""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
import pandas as pd

from sapheneia.client.errors import ERROR_CLASSES, SapheneiaAPIError, api_error
from sapheneia.client.retry import retry_after_s


def checked(response: httpx.Response) -> httpx.Response:
    """The response, or the exception its error answer maps to."""
    if response.status_code < 400:
        return response
    try:
        body: Any = response.json()
    except ValueError:
        body = response.text
    raise api_error(
        response.status_code,
        body,
        request_id=response.headers.get("x-request-id"),
        retry_after_s=retry_after_s(response),
    )


def forecast_frame(answers: Sequence[Mapping[str, Any]], time_col: str) -> pd.DataFrame:
    """The ``forecast`` rows of one or more answers as one long frame, timestamps parsed:
    ``id_col, time_col, mean, median, q-<level>...``."""
    rows = [row for answer in answers for row in answer["forecast"]]
    return timestamps(pd.DataFrame(rows), time_col)


def timestamps(table: pd.DataFrame, time_col: str) -> pd.DataFrame:
    """The answer's ``ds`` parsed and named like the caller's time column."""
    if "ds" in table.columns:
        table["ds"] = pd.to_datetime(table["ds"])
    return table.rename(columns={"ds": time_col})


@dataclass(frozen=True)
class Backtest:
    """``metrics``: one row per model (MASE, sMAPE, WQL, coverage_80); ``forecasts``: every
    window's forecasts next to the actuals, long format with a ``cutoff`` column."""

    metrics: pd.DataFrame
    forecasts: pd.DataFrame
    metadata: dict[str, Any] = field(default_factory=dict)


def backtest_result(answer: Mapping[str, Any], time_col: str) -> Backtest:
    forecasts = timestamps(pd.DataFrame(answer["forecasts"]), time_col)
    if "cutoff" in forecasts.columns:
        forecasts["cutoff"] = pd.to_datetime(forecasts["cutoff"])
    return Backtest(pd.DataFrame(answer["metrics"]), forecasts, dict(answer.get("metadata", {})))


#: Job statuses after which nothing changes.
FINISHED = frozenset({"succeeded", "failed", "cancelled"})


@dataclass(frozen=True)
class JobState:
    """``GET /api/v2/jobs/{id}``: the status, progress counts and, when it failed, why."""

    job_id: str
    status: str
    series_done: int | None = None
    series_total: int | None = None
    rows_written: int | None = None
    error: SapheneiaAPIError | None = None

    @property
    def finished(self) -> bool:
        return self.status in FINISHED

    def line(self) -> str:
        """One line for a progress display."""
        done = "?" if self.series_done is None else f"{self.series_done:,}"
        total = "?" if self.series_total is None else f"{self.series_total:,}"
        rows = "" if self.rows_written is None else f", {self.rows_written:,} rows written"
        return f"job {self.job_id}: {self.status}, {done}/{total} series{rows}"


def job_state(job_id: str, body: Mapping[str, Any]) -> JobState:
    progress = body.get("progress") or {}
    error = body.get("error")
    return JobState(
        job_id=str(body.get("job_id", job_id)),
        status=str(body["status"]),
        series_done=progress.get("series_done"),
        series_total=progress.get("series_total"),
        rows_written=progress.get("rows_written"),
        error=job_error(error) if isinstance(error, Mapping) else None,
    )


def job_error(error: Mapping[str, Any]) -> SapheneiaAPIError:
    """A failed job's ``error`` as the exception its code maps to (with that code's status)."""
    code = str(error.get("code", "internal_error"))
    status = ERROR_CLASSES.get(code, SapheneiaAPIError).status
    return api_error(status, {"error": dict(error)})


def job_result(response: httpx.Response, time_col: str) -> pd.DataFrame:
    """``GET /api/v2/jobs/{id}/result``: Parquet by default, forecast JSON if the server sent it."""
    if response.headers.get("content-type", "").startswith("application/json"):
        return forecast_frame([response.json()], time_col)
    return timestamps(pd.read_parquet(io.BytesIO(response.content)), time_col)
