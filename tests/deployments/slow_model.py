"""A model of known speed for overload tests: each batch takes a fixed time, whatever its size.

It sleeps instead of computing, so its capacity does not depend on how busy the machine's cores are
with the load generator, the proxy and the ingress. Served by import path:
``adapter: tests.deployments.slow_model:SlowNaiveAdapter``.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from sapheneia.models import Capabilities, ModelAdapter, NativeForecast
from sapheneia.tasks import ForecastTask


class SlowOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    seconds_per_batch: float = Field(default=0.1, ge=0, description="Time one model call takes.")


class SlowNaiveAdapter(ModelAdapter):
    """The last value repeated, after ``seconds_per_batch``."""

    Options = SlowOptions
    capabilities = Capabilities(min_context=1, covariates=False, native_quantiles=None)

    def _predict(
        self, tasks: Sequence[ForecastTask], levels: tuple[float, ...]
    ) -> list[NativeForecast]:
        time.sleep(self.options.seconds_per_batch)
        forecasts = []
        for task in tasks:
            mean = np.full(task.horizon, float(task.context[-1]))
            values = np.repeat(mean[None, :], len(levels), axis=0)  # (n_levels, horizon)
            forecasts.append(NativeForecast(mean=mean, levels=levels, values=values))
        return forecasts
