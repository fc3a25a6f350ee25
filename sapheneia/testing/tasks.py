"""``ForecastTask``s built by hand, for tests that do not go through ``sapheneia.data``."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from sapheneia.tasks import DEFAULT_QUANTILES, ForecastResult, ForecastTask


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


def wavy_series(length: int, seed: int) -> np.ndarray:
    """``(length,)`` values: a level of 10, a slow sine and a random walk (the same for a seed)."""
    rng = np.random.default_rng(seed)
    return 10 + np.sin(np.arange(length) / 4) + rng.normal(0, 0.3, length).cumsum()


def covariate_task(series_id: str, group: str, seed: int, length: int) -> ForecastTask:
    """A 12-step task of ``length`` observations whose target follows a numeric driver and a
    workday/rest day (both known ahead), with a static numeric and a static categorical covariate."""
    rng = np.random.default_rng(seed)
    horizon = 12
    driver = rng.normal(size=length + horizon)
    day = np.array(["work", "work", "rest"] * length)[: length + horizon]
    target = wavy_series(length, seed) + 4 * driver[:length] + 2 * (day[:length] == "rest")
    return make_task(
        series_id,
        target,
        horizon,
        group=group,
        dynamic_numerical={"driver": driver},
        dynamic_categorical={"day": day},
        static_numerical={"size": float(seed)},
        static_categorical={"region": "north" if seed % 2 else "south"},
    )


def result_of(outcome: object) -> ForecastResult:
    """``outcome`` as a ``ForecastResult``; the test fails with the error it is otherwise."""
    assert isinstance(outcome, ForecastResult), outcome
    return outcome
