"""Chronos-Bolt (``amazon/chronos-bolt-{tiny,mini,small,base}``) through ``chronos-forecasting``.

One adapter serves every size; the config's ``checkpoint`` picks the weights. Each series is forecast
on its own (Bolt has no cross-series attention), so batching callers together changes nothing.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from sapheneia.models.base import Capabilities, NativeForecast
from sapheneia.models.chronos_pipeline import ChronosPipelineAdapter
from sapheneia.models.torch_runtime import chunks
from sapheneia.tasks import DECILES, ForecastTask

BOLT_QUANTILES = DECILES


class ChronosBoltOptions(BaseModel):
    """``options:`` of a Chronos-Bolt model config."""

    model_config = ConfigDict(extra="forbid")

    max_context: int = Field(
        default=2048, ge=1, description="Observations read (capped by the checkpoint's own)."
    )
    max_horizon: int = Field(
        default=512,
        ge=1,
        description="Longest horizon served; beyond 64 steps the pipeline rolls its own quantiles "
        "forward.",
    )
    batch_size: int = Field(default=256, ge=1, description="Series per forward pass.")


class ChronosBoltAdapter(ChronosPipelineAdapter):
    """Chronos-Bolt: univariate, quantiles 0.1-0.9, context up to 2048, 64 steps per pass."""

    Options = ChronosBoltOptions
    options: ChronosBoltOptions
    default_checkpoint = "amazon/chronos-bolt-base"
    capabilities = Capabilities(covariates=False, native_quantiles=BOLT_QUANTILES)

    def _predict(
        self, tasks: Sequence[ForecastTask], levels: tuple[float, ...]
    ) -> list[NativeForecast]:
        import torch

        native = list(self.model.quantiles)
        forecasts: list[NativeForecast] = []
        for chunk in chunks(tasks, self.options.batch_size):
            contexts = [torch.as_tensor(task.context, dtype=torch.float32) for task in chunk]
            with self.inference():
                # quantiles: (n_series, horizon, n_levels); mean: (n_series, horizon)
                quantiles, mean = self.model.predict_quantiles(
                    contexts, prediction_length=tasks[0].horizon, quantile_levels=native
                )
            forecasts.extend(
                NativeForecast(
                    mean=mean[i].numpy().astype(np.float64),
                    levels=tuple(native),
                    values=quantiles[i].numpy().T.astype(np.float64),
                )
                for i in range(len(chunk))
            )
        return forecasts
