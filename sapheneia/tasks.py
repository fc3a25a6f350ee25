"""The unit of work every model sees: one series to forecast, and what comes back.

``ForecastTask`` is built by ``sapheneia.data`` from any input format and is the only thing an adapter
receives; ``ForecastResult`` is the only thing it returns. Both are plain dataclasses of numpy arrays so
they pickle cheaply between Ray processes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, get_args

import numpy as np
import pandas as pd

#: A covariate that changes over time (history, and known future values where sent).
DynamicRole = Literal["dynamic_numerical", "dynamic_categorical"]
#: What a covariate column is: changes over time, or fixed per series.
CovariateRole = Literal[DynamicRole, "static_numerical", "static_categorical"]
#: A column's role in the earlier product's ``data_definition``: the target or a covariate.
ColumnRole = Literal["target", CovariateRole]
COVARIATE_ROLES: tuple[CovariateRole, ...] = get_args(CovariateRole)
DYNAMIC_ROLES: tuple[DynamicRole, ...] = get_args(DynamicRole)

#: Q10..Q90: the levels of TimesFM, Chronos-Bolt and FlowState heads, and of the earlier
#: product's ``quantile_indices`` 1-9.
DECILES = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
#: The levels answered when a request names none: the median and the 80% interval.
DEFAULT_QUANTILES = (0.1, 0.5, 0.9)


@dataclass
class ForecastTask:
    """One series and what to forecast for it.

    ``context`` has shape ``(n_history,)``. Dynamic covariates have shape ``(n_history + horizon,)``:
    the history part aligned with ``context``, then the known future values; or ``(n_history,)``
    when the caller sent no future values for that column (a past-only covariate, listed by
    ``past_only_covariates``; models without ``Capabilities.past_covariates`` refuse it).
    ``group`` identifies the caller's request: models that fit anything across series (covariate
    regressions, cross-learning) fit only within one group, never across callers.
    """

    series_id: str
    context: np.ndarray
    horizon: int
    quantiles: tuple[float, ...]
    freq: str
    timestamps: pd.DatetimeIndex
    future_timestamps: pd.DatetimeIndex
    dynamic_numerical: dict[str, np.ndarray] = field(default_factory=dict)
    dynamic_categorical: dict[str, np.ndarray] = field(default_factory=dict)
    static_numerical: dict[str, float] = field(default_factory=dict)
    static_categorical: dict[str, str] = field(default_factory=dict)
    group: str = ""

    @property
    def has_covariates(self) -> bool:
        return bool(
            self.dynamic_numerical
            or self.dynamic_categorical
            or self.static_numerical
            or self.static_categorical
        )

    @property
    def past_only_covariates(self) -> list[str]:
        """Dynamic covariates that stop with the history (no future values)."""
        history = len(self.context)
        dynamic = {**self.dynamic_numerical, **self.dynamic_categorical}
        return [name for name, values in dynamic.items() if len(values) == history]

    def settings_key(self) -> tuple[object, ...]:
        """Tasks with equal keys can share one model call (same horizon, levels and frequency)."""
        return (self.horizon, self.quantiles, self.freq)


@dataclass
class ForecastResult:
    """A forecast for one task.

    ``quantiles`` maps each requested level to an array of shape ``(horizon,)``.
    ``interpolated`` lists the requested levels the model does not produce natively.
    """

    series_id: str
    mean: np.ndarray
    median: np.ndarray
    quantiles: dict[float, np.ndarray]
    future_timestamps: pd.DatetimeIndex
    interpolated: tuple[float, ...] = ()
    covariates_used: bool = False
    metadata: dict[str, object] = field(default_factory=dict)

    def to_frame(self, model: str | None = None) -> pd.DataFrame:
        """Long-format rows ``unique_id, ds, mean, median, q-<level>...`` for this series."""
        frame = pd.DataFrame(
            {
                "unique_id": self.series_id,
                "ds": self.future_timestamps,
                "mean": self.mean,
                "median": self.median,
            }
        )
        for level in sorted(self.quantiles):
            frame[quantile_column(level)] = self.quantiles[level]
        if model is not None:
            frame.insert(1, "model", model)
        return frame


def quantile_column(level: float) -> str:
    """Column name for a quantile level: 0.1 -> ``q-0.1``, 0.025 -> ``q-0.025``."""
    return f"q-{level:g}"


def results_columns(results: list[ForecastResult]) -> dict[str, np.ndarray]:
    """Columns ``unique_id, ds, mean, median, q-<level>...`` of many results, built with one
    concatenation per column (a DataFrame per series and ``pd.concat`` cost ~1 ms per series)."""
    levels = sorted({level for result in results for level in result.quantiles})
    columns: dict[str, np.ndarray] = {
        "unique_id": np.concatenate(
            [np.full(len(r.mean), r.series_id, dtype=object) for r in results]
        ),
        "ds": np.concatenate([r.future_timestamps.to_numpy() for r in results]),
        "mean": np.concatenate([r.mean for r in results]),
        "median": np.concatenate([r.median for r in results]),
    }
    for level in levels:
        columns[quantile_column(level)] = np.concatenate([r.quantiles[level] for r in results])
    return columns


def future_index(results: list[ForecastResult]) -> pd.DatetimeIndex | None:
    """The future timestamps of many results end to end, as one index (time zone kept); None
    when they differ in zone or unit."""
    if not results:
        return pd.DatetimeIndex([])
    first = results[0].future_timestamps
    clock = (first.unit, str(first.tz))
    if any((r.future_timestamps.unit, str(r.future_timestamps.tz)) != clock for r in results):
        return None
    values = np.concatenate([r.future_timestamps.asi8 for r in results])
    stamps = pd.DatetimeIndex(values.view(f"M8[{first.unit}]"))
    return stamps if first.tz is None else stamps.tz_localize("UTC").tz_convert(first.tz)


def iso_timestamps(results: list[ForecastResult]) -> list[str]:
    """Future timestamps of many results as ISO 8601 text; each distinct instant is written once
    (the series of a request mostly share their future dates)."""
    if not results:
        return []
    first = results[0].future_timestamps
    if future_index(results) is None:  # zones or units differ
        return [t.isoformat() for r in results for t in r.future_timestamps]
    values = np.concatenate([r.future_timestamps.asi8 for r in results])
    distinct, inverse = np.unique(values, return_inverse=True)
    stamps = pd.DatetimeIndex(distinct.view(f"M8[{first.unit}]"))
    if first.tz is not None:
        stamps = stamps.tz_localize("UTC").tz_convert(first.tz)
    per_second = {"s": 1, "ms": 10**3, "us": 10**6, "ns": 10**9}[first.unit]
    if first.tz is not None or (distinct % per_second).any():
        texts = [t.isoformat() for t in stamps]  # offsets or sub-second steps: exact text
    else:
        texts = [str(s) for s in np.datetime_as_string(stamps.to_numpy(), unit="s")]
    return np.asarray(texts, dtype=object)[inverse].tolist()  # type: ignore[no-any-return]
