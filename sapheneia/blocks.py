"""Many tasks, or many results, as one block of arrays: the form they cross processes in.

A list of ``ForecastTask`` pickles as one object graph per series (a ``DatetimeIndex`` alone costs
tens of microseconds each way); a block is a few contiguous numpy arrays and a list of ids, whatever
the number of series. The ingress packs a request's tasks, the model replica unpacks them, and its
results come back the same way. Tasks or results a block cannot hold (covariates, errors, mixed
settings) travel as the list, as before.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from sapheneia.tasks import ForecastResult, ForecastTask


@dataclass(frozen=True)
class Clock:
    """How a block's int64 timestamps read: their unit and time zone (UTC instants if a zone)."""

    unit: str
    tz: Any = None

    @classmethod
    def of(cls, index: pd.DatetimeIndex) -> Clock:
        return cls(index.unit, index.tz)

    def same(self, index: pd.DatetimeIndex) -> bool:
        return index.unit == self.unit and str(index.tz) == str(self.tz)

    def index(self, values: np.ndarray) -> pd.DatetimeIndex:
        """``values`` as one index, to be sliced per series."""
        index = pd.DatetimeIndex(values.view(f"M8[{self.unit}]"))
        return index if self.tz is None else index.tz_localize("UTC").tz_convert(self.tz)


def _bounds(lengths: Sequence[int]) -> np.ndarray:
    return np.concatenate([[0], np.cumsum(np.asarray(lengths, dtype=np.int64))])


@dataclass
class TaskBlock:
    """Tasks without covariates that share horizon, quantile levels, batch group and time zone.

    ``context`` and ``timestamps`` are every series' history end to end, series ``i`` at
    ``bounds[i]:bounds[i + 1]``; ``future`` has shape ``(n_series, horizon)``; timestamps are
    int64 counts of ``clock``'s unit (``future_clock``'s for ``future``).
    """

    series_ids: list[str]
    freqs: list[str]
    bounds: np.ndarray
    context: np.ndarray
    timestamps: np.ndarray
    future: np.ndarray
    clock: Clock
    future_clock: Clock
    horizon: int
    quantiles: tuple[float, ...]
    group: str

    def __len__(self) -> int:
        return len(self.series_ids)

    @classmethod
    def pack(cls, tasks: Sequence[ForecastTask]) -> TaskBlock | None:
        """The block of ``tasks``; None when one block cannot hold them."""
        if not tasks:
            return None
        first = tasks[0]
        clock, future_clock = Clock.of(first.timestamps), Clock.of(first.future_timestamps)
        settings = (first.horizon, first.quantiles, first.group)
        for task in tasks:
            if (
                task.has_covariates
                or (task.horizon, task.quantiles, task.group) != settings
                or len(task.future_timestamps) != first.horizon
                or not clock.same(task.timestamps)
                or not future_clock.same(task.future_timestamps)
            ):
                return None
        return cls(
            series_ids=[t.series_id for t in tasks],
            freqs=[t.freq for t in tasks],
            bounds=_bounds([len(t.context) for t in tasks]),
            context=np.concatenate([np.asarray(t.context, dtype=np.float64) for t in tasks]),
            timestamps=np.concatenate([t.timestamps.asi8 for t in tasks]),
            future=np.stack([t.future_timestamps.asi8 for t in tasks]),
            clock=clock,
            future_clock=future_clock,
            horizon=first.horizon,
            quantiles=first.quantiles,
            group=first.group,
        )

    def tasks(self) -> list[ForecastTask]:
        """The tasks, in order; their arrays are views of the block's."""
        stamps = self.clock.index(self.timestamps)
        future = self.future_clock.index(self.future.reshape(-1))
        h = self.horizon
        bounds = self.bounds.tolist()
        return [
            ForecastTask(
                series_id=series_id,
                context=self.context[start:stop],
                horizon=h,
                quantiles=self.quantiles,
                freq=freq,
                timestamps=stamps[start:stop],
                future_timestamps=future[i * h : (i + 1) * h],
                group=self.group,
            )
            for i, (series_id, freq, start, stop) in enumerate(
                zip(self.series_ids, self.freqs, bounds[:-1], bounds[1:], strict=True)
            )
        ]


@dataclass
class ResultBlock:
    """Results of one horizon and one set of quantile levels.

    ``mean``, ``median`` and ``future`` have shape ``(n_series, horizon)``, ``values`` has shape
    ``(n_series, n_levels, horizon)`` in the order of ``levels``; ``metadata`` is one dict per
    series (batch size, replica, model seconds).
    """

    series_ids: list[str]
    mean: np.ndarray
    median: np.ndarray
    levels: tuple[float, ...]
    values: np.ndarray
    future: np.ndarray
    clock: Clock
    interpolated: list[tuple[float, ...]]
    covariates_used: list[bool]
    metadata: list[dict[str, object]]

    def __len__(self) -> int:
        return len(self.series_ids)

    @classmethod
    def pack(cls, outcomes: Sequence[object]) -> ResultBlock | None:
        """The block of ``outcomes``; None when any is not a ``ForecastResult`` or they differ in
        horizon, levels or time zone."""
        if not outcomes or not all(isinstance(o, ForecastResult) for o in outcomes):
            return None
        results: Sequence[ForecastResult] = outcomes  # type: ignore[assignment]
        first = results[0]
        horizon, levels = len(first.mean), tuple(first.quantiles)
        clock = Clock.of(first.future_timestamps)
        for result in results:
            if (
                tuple(result.quantiles) != levels
                or len(result.mean) != horizon
                or len(result.median) != horizon
                or len(result.future_timestamps) != horizon
                or any(len(v) != horizon for v in result.quantiles.values())
                or not clock.same(result.future_timestamps)
            ):
                return None
        values = (
            np.stack([np.stack([r.quantiles[q] for q in levels]) for r in results])
            if levels
            else np.empty((len(results), 0, horizon))
        )
        return cls(
            series_ids=[r.series_id for r in results],
            mean=np.stack([r.mean for r in results]),
            median=np.stack([r.median for r in results]),
            levels=levels,
            values=values,
            future=np.stack([r.future_timestamps.asi8 for r in results]),
            clock=clock,
            interpolated=[r.interpolated for r in results],
            covariates_used=[r.covariates_used for r in results],
            metadata=[r.metadata for r in results],
        )

    def results(self) -> list[ForecastResult]:
        """The results, in order; their arrays are views of the block's."""
        h = self.mean.shape[1] if self.mean.ndim == 2 else 0
        future = self.clock.index(self.future.reshape(-1))
        return [
            ForecastResult(
                series_id=series_id,
                mean=self.mean[i],
                median=self.median[i],
                quantiles={q: self.values[i, j] for j, q in enumerate(self.levels)},
                future_timestamps=future[i * h : (i + 1) * h],
                interpolated=self.interpolated[i],
                covariates_used=self.covariates_used[i],
                metadata=self.metadata[i],
            )
            for i, series_id in enumerate(self.series_ids)
        ]
