"""A complete custom model: random walk with drift, in one small class.

Serve it by naming its import path in a model config (see docs/custom-adapters.md):

    id: my-drift
    adapter: examples.custom_adapter:DriftAdapter

The forecast extends the line from the first to the last observation; the predictive distribution at
step ``h`` of ``n`` observations is normal with standard deviation
``sigma * sqrt(h * (1 + h / (n - 1)))``, where ``sigma`` is the spread of one-step changes around
the drift (Hyndman & Athanasopoulos, *Forecasting: Principles and Practice*, 5.5).
"""

from __future__ import annotations

from collections.abc import Sequence
from statistics import NormalDist

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from sapheneia.models import Capabilities, ModelAdapter, NativeForecast
from sapheneia.tasks import ForecastTask


class DriftOptions(BaseModel):
    """``options:`` of the example; a misspelt one fails when the config is loaded."""

    model_config = ConfigDict(extra="forbid")

    max_context: int | None = Field(
        default=None, ge=2, description="Read at most this many recent points."
    )


class DriftAdapter(ModelAdapter):
    """Random walk with drift: no weights to load, so ``_predict`` is all there is."""

    Options = DriftOptions
    # Any quantile level is native: each comes straight from the normal distribution. The option
    # max_context sets capabilities.max_context.
    capabilities = Capabilities(min_context=2, covariates=False, native_quantiles=None)

    def _predict(
        self, tasks: Sequence[ForecastTask], levels: tuple[float, ...]
    ) -> list[NativeForecast]:
        # The base class has already checked each task against the capabilities, cut its context
        # to max_context and grouped tasks that share horizon, levels and frequency.
        return [self._forecast_one(task, levels) for task in tasks]

    def _forecast_one(self, task: ForecastTask, levels: tuple[float, ...]) -> NativeForecast:
        y = np.asarray(task.context, dtype=float)
        n = len(y)
        drift = (y[-1] - y[0]) / (n - 1)
        steps = np.arange(1, task.horizon + 1)
        mean = y[-1] + drift * steps  # (horizon,)
        sigma = np.sqrt(np.sum((np.diff(y) - drift) ** 2) / (n - 1))
        spread = sigma * np.sqrt(steps * (1 + steps / (n - 1)))  # (horizon,)
        z = np.array([NormalDist().inv_cdf(level) for level in levels])
        values = mean[None, :] + z[:, None] * spread[None, :]  # (n_levels, horizon)
        return NativeForecast(mean=mean, levels=levels, values=values)
