"""Chronos-2 (``amazon/chronos-2``) through ``chronos-forecasting``, with its native covariates.

Our roles map onto Chronos-2's inputs as follows: a ``dynamic_numerical`` or ``dynamic_categorical``
column with values over the horizon is a known-future covariate (history in ``past_covariates``,
horizon in ``future_covariates``); one sent without future values is a past-only covariate (in
``past_covariates`` only), which Chronos-2 reads natively. Categorical ones are passed as strings and
encoded by the pipeline (per-series target encoding). Chronos-2 has no static covariates: a value
that is constant over a series carries nothing after its per-series normalisation, so static columns
are not sent, and ``covariates_used`` is true only when a dynamic covariate was.

Cross-learning (information shared between series in one forward pass) is off by default. With
option ``cross_learning: true`` it is enabled only among the series of one ``task.group``, i.e. of
one caller's request; another caller's series never share a pass with it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from sapheneia.models.base import Capabilities, NativeForecast
from sapheneia.models.chronos_pipeline import ChronosPipelineAdapter
from sapheneia.tasks import DECILES, ForecastTask

CHRONOS_2_QUANTILES = (0.01, 0.05, *DECILES, 0.95, 0.99)


class Chronos2Options(BaseModel):
    """``options:`` of a Chronos-2 model config."""

    model_config = ConfigDict(extra="forbid")

    max_context: int = Field(
        default=8192, ge=1, description="Observations read (capped by the checkpoint's own)."
    )
    max_horizon: int = Field(default=1024, ge=1, description="Longest horizon served.")
    batch_size: int = Field(default=256, ge=1, description="Series per forward pass.")
    cross_learning: bool = Field(
        default=False,
        description="Share information between the series of one request (never between requests).",
    )


def chronos_2_input(task: ForecastTask) -> dict[str, Any]:
    """One task as the pipeline's dict input: ``target`` ``(n_history,)``; each dynamic covariate in
    ``past_covariates`` ``(n_history,)`` and, when it has future values, ``future_covariates``
    ``(horizon,)``."""
    history = len(task.context)
    end = history + task.horizon
    past: dict[str, np.ndarray] = {}
    future: dict[str, np.ndarray] = {}
    columns = [
        *((name, np.asarray(v, dtype=np.float64)) for name, v in task.dynamic_numerical.items()),
        *((name, np.asarray(v).astype(str)) for name, v in task.dynamic_categorical.items()),
    ]
    for name, values in columns:
        past[name] = values[:history]
        if len(values) > history:
            future[name] = values[history:end]
    item: dict[str, Any] = {"target": np.asarray(task.context, dtype=np.float64)}
    if past:
        item["past_covariates"] = past
    if future:
        item["future_covariates"] = future
    return item


class Chronos2Adapter(ChronosPipelineAdapter):
    """Chronos-2: 21 native quantiles, context up to 8192, up to 1024 steps in one pass; known-future
    and past-only covariates."""

    Options = Chronos2Options
    options: Chronos2Options
    default_checkpoint = "amazon/chronos-2"
    capabilities = Capabilities(
        covariates=True, past_covariates=True, native_quantiles=CHRONOS_2_QUANTILES
    )

    def _predict(
        self, tasks: Sequence[ForecastTask], levels: tuple[float, ...]
    ) -> list[NativeForecast]:
        # One pipeline call per covariate schema (the pipeline requires one schema per call) and,
        # with cross-learning, per caller.
        calls: dict[tuple[object, ...], list[int]] = defaultdict(list)
        for index, task in enumerate(tasks):
            schema = (
                tuple(sorted(task.dynamic_numerical)),
                tuple(sorted(task.dynamic_categorical)),
                tuple(sorted(task.past_only_covariates)),
            )
            calls[(task.group if self.options.cross_learning else "", schema)].append(index)
        results: dict[int, NativeForecast] = {}
        for indices in calls.values():
            forecasts = self._predict_call([tasks[i] for i in indices])
            results.update(zip(indices, forecasts, strict=True))
        return [results[i] for i in range(len(tasks))]

    def _predict_call(self, tasks: list[ForecastTask]) -> list[NativeForecast]:
        native = list(self.model.quantiles)
        # The pipeline chunks the call into batch_size series itself.
        with self.inference():
            # quantiles: per task (1, horizon, n_levels); mean: per task (1, horizon)
            quantiles, mean = self.model.predict_quantiles(
                [chronos_2_input(task) for task in tasks],
                prediction_length=tasks[0].horizon,
                quantile_levels=native,
                batch_size=self.options.batch_size,
                cross_learning=self.options.cross_learning,
            )
        return [
            NativeForecast(
                mean=mean[i][0].numpy().astype(np.float64),
                levels=tuple(native),
                values=quantiles[i][0].numpy().T.astype(np.float64),
                covariates_used=bool(task.dynamic_numerical or task.dynamic_categorical),
            )
            for i, task in enumerate(tasks)
        ]
