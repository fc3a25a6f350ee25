"""Chronos-2 (``amazon/chronos-2``) through ``chronos-forecasting``, with its native covariates.

Our roles map onto Chronos-2's inputs as follows: ``dynamic_numerical`` and ``dynamic_categorical``
carry values for the horizon, so they go in as known-future covariates (history in
``past_covariates``, horizon in ``future_covariates``); categorical ones are passed as strings and
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

from sapheneia.config import ModelConfig
from sapheneia.models.base import Capabilities, NativeForecast
from sapheneia.models.chronos_bolt import ChronosPipelineAdapter
from sapheneia.tasks import ForecastTask

CHRONOS_2_QUANTILES = (
    0.01,
    0.05,
    *(round(0.1 * i, 1) for i in range(1, 10)),
    0.95,
    0.99,
)


def chronos_2_input(task: ForecastTask) -> dict[str, Any]:
    """One task as the pipeline's dict input: ``target`` ``(n_history,)``, covariates by name."""
    history = len(task.context)
    end = history + task.horizon
    past: dict[str, np.ndarray] = {}
    future: dict[str, np.ndarray] = {}
    for name, values in task.dynamic_numerical.items():
        numeric = np.asarray(values, dtype=np.float64)
        past[name], future[name] = numeric[:history], numeric[history:end]
    for name, values in task.dynamic_categorical.items():
        labels = np.asarray(values).astype(str)
        past[name], future[name] = labels[:history], labels[history:end]
    item: dict[str, Any] = {"target": np.asarray(task.context, dtype=np.float64)}
    if past:
        item["past_covariates"] = past
        item["future_covariates"] = future
    return item


class Chronos2Adapter(ChronosPipelineAdapter):
    """Chronos-2: 21 native quantiles, context up to 8192, up to 1024 steps in one pass.

    Options: ``max_horizon`` (default 1024), ``batch_size`` (default 256), ``cross_learning``
    (default false; when true, only within one caller's request).
    """

    default_checkpoint = "amazon/chronos-2"

    def __init__(self, config: ModelConfig) -> None:
        super().__init__(config)
        self.capabilities = Capabilities(
            max_context=int(config.options.get("max_context", 8192)),
            max_horizon=int(config.options.get("max_horizon", 1024)),
            covariates=True,
            native_quantiles=CHRONOS_2_QUANTILES,
            licence="Apache-2.0",
            needs_weights=True,
        )
        self.batch_size = int(config.options.get("batch_size", 256))
        self.cross_learning = bool(config.options.get("cross_learning", False))

    def _predict(
        self, tasks: Sequence[ForecastTask], levels: tuple[float, ...]
    ) -> list[NativeForecast]:
        pipeline = self.loaded_pipeline()
        # One pipeline call per covariate schema (the pipeline requires one schema per call) and,
        # with cross-learning, per caller.
        calls: dict[tuple[object, ...], list[int]] = defaultdict(list)
        for index, task in enumerate(tasks):
            schema = (
                tuple(sorted(task.dynamic_numerical)),
                tuple(sorted(task.dynamic_categorical)),
            )
            calls[(task.group if self.cross_learning else "", schema)].append(index)
        results: dict[int, NativeForecast] = {}
        for indices in calls.values():
            forecasts = self._predict_call(pipeline, [tasks[i] for i in indices])
            results.update(zip(indices, forecasts, strict=True))
        return [results[i] for i in range(len(tasks))]

    def _predict_call(self, pipeline: Any, tasks: list[ForecastTask]) -> list[NativeForecast]:
        native = list(pipeline.quantiles)
        # quantiles: per task (1, horizon, n_levels); mean: per task (1, horizon)
        quantiles, mean = pipeline.predict_quantiles(
            [chronos_2_input(task) for task in tasks],
            prediction_length=tasks[0].horizon,
            quantile_levels=native,
            batch_size=self.batch_size,
            cross_learning=self.cross_learning,
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
