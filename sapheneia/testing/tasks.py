"""``ForecastTask``s built by hand, for tests that do not go through ``sapheneia.data``."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from sapheneia.tasks import DEFAULT_QUANTILES, ForecastTask


def make_task(
    series_id: str,
    context: Sequence[float] | np.ndarray,
    horizon: int,
    *,
    freq: str = "D",
    quantiles: tuple[float, ...] = DEFAULT_QUANTILES,
    group: str = "",
    start: str = "2024-01-01",
    dynamic_numerical: dict[str, np.ndarray] | None = None,
    dynamic_categorical: dict[str, np.ndarray] | None = None,
    static_numerical: dict[str, float] | None = None,
    static_categorical: dict[str, str] | None = None,
) -> ForecastTask:
    """A task with regular timestamps from ``start``; dynamic covariates span history + horizon."""
    values = np.asarray(context, dtype=float)
    stamps = pd.date_range(start, periods=len(values) + horizon, freq=freq)
    return ForecastTask(
        series_id=series_id,
        context=values,
        horizon=horizon,
        quantiles=quantiles,
        freq=freq,
        timestamps=stamps[: len(values)],
        future_timestamps=stamps[len(values) :],
        dynamic_numerical=dict(dynamic_numerical or {}),
        dynamic_categorical=dict(dynamic_categorical or {}),
        static_numerical=dict(static_numerical or {}),
        static_categorical=dict(static_categorical or {}),
        group=group,
    )
