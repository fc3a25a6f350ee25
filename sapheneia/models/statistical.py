"""statsforecast's SeasonalNaive, AutoETS, AutoARIMA and AutoTheta as one adapter.

Each series is fitted on its own through the model classes' ``forecast`` (the same code path as
``StatsForecast(...).forecast``), which lets one batch mix horizons and frequencies.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from sapheneia.config import ModelConfig
from sapheneia.data import season_length
from sapheneia.errors import InvalidInput
from sapheneia.models.base import Capabilities, ModelAdapter, NativeForecast
from sapheneia.tasks import ForecastTask

LICENCE = "Apache-2.0 (statsforecast)"
METHODS = ("seasonal-naive", "auto-ets", "auto-arima", "auto-theta")
# AutoARIMA's default search fits up to 94 candidate models per series; the CSS approximation and
# at most 20 candidates bound it (AirPassengers, warm: 0.11 s against 0.26 s for the default, and
# far less on long series where the exact likelihood dominates).
ARIMA_BOUNDS: dict[str, Any] = {"approximation": True, "nmodels": 20, "max_p": 3, "max_q": 3}


def interval_levels(quantiles: Sequence[float]) -> list[int | float]:
    """Prediction-interval levels (percent) whose edges are the requested quantiles."""
    levels = {round(abs(2 * q - 1) * 100, 6) for q in quantiles if not np.isclose(q, 0.5)}
    return sorted(int(v) if float(v).is_integer() else v for v in levels)


def edge_key(quantile: float) -> str:
    level = round(abs(2 * quantile - 1) * 100, 6)
    text = f"{int(level)}" if float(level).is_integer() else f"{level}"
    return f"{'lo' if quantile < 0.5 else 'hi'}-{text}"


class StatisticalAdapter(ModelAdapter):
    """``options.method`` picks the model (default: the config id)."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__(config)
        self.method = str(config.options.get("method", config.id))
        if self.method not in METHODS:
            raise InvalidInput(f"unknown statistical method '{self.method}'; use one of {METHODS}")
        self.capabilities = Capabilities(
            min_context=3,
            covariates=self.method == "auto-arima",
            native_quantiles=None,
            licence=LICENCE,
        )

    def load(self) -> None:
        """Warm up: statsforecast compiles its kernels with numba on first use (seconds each),
        which would otherwise land on the first caller."""
        from statsforecast.models import AutoARIMA, AutoETS, AutoTheta, SeasonalNaive

        y = 10 + np.sin(np.arange(48) * np.pi / 6) + np.arange(48) * 0.1
        model: Any = {
            "seasonal-naive": SeasonalNaive(season_length=12),
            "auto-ets": AutoETS(season_length=12),
            "auto-theta": AutoTheta(season_length=12),
            "auto-arima": AutoARIMA(season_length=12, **ARIMA_BOUNDS),
        }[self.method]
        model.forecast(y=y, h=2, level=[80])
        super().load()

    def prepare(self, task: ForecastTask) -> ForecastTask:
        task = super().prepare(task)
        if self.method == "auto-arima" and (task.dynamic_categorical or task.static_categorical):
            raise InvalidInput(
                "auto-arima takes numeric covariates only: encode categorical columns as numbers "
                "or drop them"
            )
        return task

    def _model(self, task: ForecastTask) -> Any:
        from statsforecast.models import AutoARIMA, AutoETS, AutoTheta, SeasonalNaive

        season = season_length(task.freq)
        # A seasonal model needs two full seasons to estimate anything.
        if len(task.context) < 2 * season:
            season = 1
        options = {k: v for k, v in self.config.options.items() if k != "method"}
        if self.method == "seasonal-naive":
            return SeasonalNaive(season_length=season)
        if self.method == "auto-ets":
            return AutoETS(season_length=season, **options)
        if self.method == "auto-theta":
            return AutoTheta(season_length=season, **options)
        return AutoARIMA(season_length=season, **{**ARIMA_BOUNDS, **options})

    def _predict(
        self, tasks: Sequence[ForecastTask], levels: tuple[float, ...]
    ) -> list[NativeForecast]:
        return [self._predict_one(task, levels) for task in tasks]

    def _predict_one(self, task: ForecastTask, levels: tuple[float, ...]) -> NativeForecast:
        y = np.asarray(task.context, dtype=float)
        X, X_future = self._regressors(task)
        output = self._model(task).forecast(  # type: ignore[attr-defined]
            y=y, h=task.horizon, X=X, X_future=X_future, level=interval_levels(levels) or None
        )
        mean = np.asarray(output["mean"], dtype=float)
        rows = [
            mean if np.isclose(q, 0.5) else np.asarray(output[edge_key(q)], dtype=float)
            for q in levels
        ]
        return NativeForecast(
            mean=mean, levels=levels, values=np.vstack(rows), covariates_used=X is not None
        )

    @staticmethod
    def _regressors(task: ForecastTask) -> tuple[np.ndarray | None, np.ndarray | None]:
        """History and future exogenous matrices ``(n, k)`` from dynamic numeric covariates.

        Static covariates are constant within one series, so they cannot inform a per-series fit.
        """
        columns = [np.asarray(v, dtype=float) for v in task.dynamic_numerical.values()]
        if not columns:
            return None, None
        matrix = np.column_stack(columns)
        n = len(task.context)
        return matrix[:n], matrix[n:]
