"""Series with a known best model or known noise, and references computed here with numpy, shared
by the in-process and the served tests of model 'auto' / 'ensemble' and calibrate."""

from __future__ import annotations

from typing import Any

import httpx
import numpy as np
import pandas as pd

PATTERN = [5, 7, 9, 11, 8, 6, 4, 3, 2, 3, 4, 6.0]
HORIZON = 6


def records(series: dict[str, np.ndarray], freq: str = "MS") -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    for uid, values in series.items():
        ds = pd.date_range("2015-01-01", periods=len(values), freq=freq)
        pairs = zip(ds, values, strict=True)
        rows += [{"unique_id": uid, "ds": str(d.date()), "y": float(v)} for d, v in pairs]
    return rows


def seasonal_and_trend() -> dict[str, np.ndarray]:
    """'season': a pure monthly pattern (seasonal naive is exact); 'trend': a line with a little
    noise (seasonal naive lags a year of growth, ETS follows it)."""
    noise = np.random.default_rng(0).normal(0, 0.1, 72)
    return {"season": np.tile(PATTERN, 6), "trend": 10 + 0.5 * np.arange(72) + noise}


def numpy_mase(
    data: dict[str, np.ndarray], forecasts: pd.DataFrame, model: str, freq: str = "MS"
) -> dict[str, float]:
    """Per series: the mean over windows of mean|y - forecast| / mean|y_t - y_(t-12)| on the
    window's own history (the values up to its cutoff), from a backtest's forecasts."""
    scores = {}
    for uid, values in data.items():
        ds = pd.date_range("2015-01-01", periods=len(values), freq=freq)
        rows = forecasts[(forecasts["unique_id"] == uid) & (forecasts["model"] == model)]
        per_window = []
        for cutoff, window in rows.groupby("cutoff"):
            history = values[ds <= pd.Timestamp(str(cutoff))]
            scale = np.mean(np.abs(history[12:] - history[:-12]))
            error = np.mean(np.abs(window["y"].to_numpy() - window["mean"].to_numpy()))
            per_window.append(error / scale if scale > 0 else (0.0 if error < 1e-6 else np.nan))
        scores[uid] = float(np.mean(per_window))
    return scores


def growing_noise(n: int = 60, length: int = 72) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Series around 20 whose noise grows from sd 0.2 to sd 2 for the last 24 points and the
    future: a model fitted on the whole history has intervals too narrow for the future, and
    calibrating on the latest windows widens them. Returns the histories and the futures
    ``(n, HORIZON)``."""
    rng = np.random.default_rng(1)
    sd = np.where(np.arange(length + HORIZON) < length - 24, 0.2, 2.0)
    series, futures = {}, []
    for i in range(n):
        y = 20 + rng.normal(0, 1, length + HORIZON) * sd
        series[f"n{i:02d}"] = y[:length]
        futures.append(y[length:])
    return series, np.array(futures)


def coverage(answer: dict[str, Any], futures: np.ndarray, lo: str, hi: str) -> float:
    frame = pd.DataFrame(answer["forecast"])
    shape = futures.shape
    low, high = frame[lo].to_numpy().reshape(shape), frame[hi].to_numpy().reshape(shape)
    return float(np.mean((low <= futures) & (futures <= high)))


def quantiles_in_order(answer: dict[str, Any]) -> bool:
    frame = pd.DataFrame(answer["forecast"])
    columns = sorted((c for c in frame.columns if c.startswith("q-")), key=lambda c: float(c[2:]))
    values = frame[columns].to_numpy()
    return bool(np.all(np.diff(values, axis=1) >= -1e-9))


def post(client: httpx.Client, path: str, body: dict[str, Any]) -> dict[str, Any]:
    response = client.post(path, json=body)
    assert response.status_code == 200, response.text
    return response.json()
