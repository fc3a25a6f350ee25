"""Request bodies for the unified API, built from the UI's choices; pure functions, no I/O."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import PurePath
from typing import Any

import pandas as pd

from frontend.columns import IGNORE, ColumnMapping

DEFAULT_QUANTILES = "0.1, 0.3, 0.5, 0.7, 0.9"


@dataclass(frozen=True)
class Table:
    """The data the user loaded: the parsed frame and the bytes the API is sent."""

    frame: pd.DataFrame
    file_name: str
    content: bytes

    @classmethod
    def from_frame(cls, frame: pd.DataFrame, name: str) -> Table:
        return cls(
            frame, f"{PurePath(name).stem or 'data'}.csv", frame.to_csv(index=False).encode()
        )


def parse_quantiles(text: str) -> list[float]:
    """``"0.1, 0.5 0.9"`` -> ``[0.1, 0.5, 0.9]``; ValueError with a readable message otherwise."""
    parts = [p for p in re.split(r"[,;\s]+", text or "") if p]
    if not parts:
        raise ValueError("enter at least one quantile level, e.g. 0.1, 0.5, 0.9")
    levels: set[float] = set()
    for part in parts:
        try:
            level = float(part)
        except ValueError:
            raise ValueError(f"quantile level '{part}' is not a number") from None
        if not 0 < level < 1:
            raise ValueError(f"quantile level {part} must be between 0 and 1 (exclusive)")
        levels.add(round(level, 6))
    return sorted(levels)


def _columns(mapping: ColumnMapping, use_covariates: bool) -> dict[str, Any]:
    body: dict[str, Any] = {
        # Without a series column the API treats the table as one series: it looks for this
        # column and does not find it.
        "id_column": mapping.series_id or "unique_id",
        "timestamp_column": mapping.timestamp,
        "target_column": mapping.target,
    }
    covariates = {c: r for c, r in mapping.covariates.items() if r != IGNORE}
    if use_covariates and covariates:
        body["covariates"] = covariates
    return body


def forecast_request(
    model: str,
    mapping: ColumnMapping,
    *,
    horizon: int,
    quantiles: list[float],
    context_length: int | None = None,
    freq: str | None = None,
    use_covariates: bool = False,
    calibrate: bool = False,
) -> dict[str, Any]:
    """The ``POST /api/v2/forecast`` body, without the data (sent as a file). ``model`` may be
    ``auto`` or ``ensemble`` (a model chosen per series); ``calibrate`` conformalises quantiles."""
    body: dict[str, Any] = {"model": model, "horizon": int(horizon), "quantiles": quantiles}
    body.update(_columns(mapping, use_covariates))
    _optional(body, context_length, freq)
    if calibrate:
        body["calibrate"] = True
    return body


def _optional(body: dict[str, Any], context_length: int | None, freq: str | None) -> None:
    if context_length:
        body["context_length"] = int(context_length)
    if freq and freq.strip():
        body["freq"] = freq.strip()


def anomalies_request(
    model: str,
    mapping: ColumnMapping,
    *,
    level: float,
    last_n: int | None = None,
    context_length: int | None = None,
    freq: str | None = None,
) -> dict[str, Any]:
    """The ``POST /api/v2/anomalies`` body, without the data (sent as a file). ``level`` is the
    central interval in percent; ``last_n`` (0 or None: the server's default) points per series."""
    if not 0 < level < 100:
        raise ValueError(f"the interval level is a percentage between 0 and 100; got {level:g}")
    body: dict[str, Any] = {"model": model, "level": float(level)}
    body.update(_columns(mapping, use_covariates=False))
    if last_n:
        body["last_n"] = int(last_n)
    _optional(body, context_length, freq)
    return body


def job_request(
    kind: str,
    models: list[str],
    columns: tuple[str, str, str],
    *,
    horizon: int,
    quantiles: list[float],
    n_windows: int | None = None,
    source: str | None = None,
) -> dict[str, Any]:
    """The ``POST /api/v2/jobs`` body: a forecast with one model or a backtest of several, over
    ``source`` (a path in the server's data directory, a URL) or, without it, an uploaded file.
    ``columns``: the (series id, timestamp, target) column names."""
    if not models:
        raise ValueError("pick a model for the job")
    if kind == "forecast" and len(models) > 1:
        raise ValueError(
            "a forecast job runs one model; pick one, or run a backtest job to compare several"
        )
    if kind not in ("forecast", "backtest"):
        raise ValueError(f"a job is a forecast or a backtest, not '{kind}'")
    series_id, timestamp, target = (c.strip() if c else "" for c in columns)
    if not timestamp or not target:
        raise ValueError("name the timestamp and the target column of the file")
    body: dict[str, Any] = {
        "kind": kind,
        "horizon": int(horizon),
        "quantiles": quantiles,
        "id_column": series_id or "unique_id",
        "timestamp_column": timestamp,
        "target_column": target,
    }
    if kind == "forecast":
        body["model"] = models[0]
    else:
        body["models"] = list(models)
        if n_windows:
            body["n_windows"] = int(n_windows)
    if source is not None:
        body["source"] = source.strip()
    return body


def backtest_request(
    models: list[str],
    mapping: ColumnMapping,
    frame: pd.DataFrame,
    *,
    horizon: int,
    n_windows: int,
    step: int | None,
    quantiles: list[float],
    use_covariates: bool = False,
) -> dict[str, Any]:
    """The ``POST /api/v2/backtest`` body with the rows inline."""
    body: dict[str, Any] = {
        "models": models,
        "horizon": int(horizon),
        "n_windows": int(n_windows),
        "quantiles": quantiles,
        "data": records(frame),
    }
    if step:
        body["step"] = int(step)
    body.update(_columns(mapping, use_covariates))
    return body


def records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """JSON-safe rows: timestamps as ISO text, missing values as null."""
    rows = json.loads(frame.to_json(orient="records", date_format="iso"))
    return list(rows)


def forecast_frame(answer: dict[str, Any], key: str = "forecast") -> pd.DataFrame:
    """The rows under ``key`` of an answer as a frame with parsed ``ds`` (and ``cutoff``)."""
    frame = pd.DataFrame(answer.get(key) or [])
    for column in ("ds", "cutoff"):
        if column in frame.columns:
            frame[column] = pd.to_datetime(frame[column])
    return frame


def quantile_columns(frame: pd.DataFrame) -> dict[float, str]:
    """``{0.1: "q-0.1", ...}`` for the quantile columns of a forecast frame."""
    found: dict[float, str] = {}
    for column in frame.columns:
        match = re.fullmatch(r"q-(0?\.\d+)", str(column))
        if match:
            found[float(match.group(1))] = str(column)
    return dict(sorted(found.items()))
