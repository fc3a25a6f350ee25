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
from sapheneia.errors import CovariatesNotSupported, InvalidInput
from sapheneia.models.base import Capabilities, ModelAdapter, NativeForecast
from sapheneia.tasks import ForecastTask

LICENCE = "Apache-2.0 (statsforecast)"
METHODS = ("seasonal-naive", "auto-ets", "auto-arima", "auto-theta")
# Shortest series each model fits (measured on statsforecast 2.1.1 with no season: AutoETS and
# AutoTheta raise "tiny datasets" below 7 and 4 points).
MIN_CONTEXT = {"seasonal-naive": 2, "auto-ets": 7, "auto-arima": 3, "auto-theta": 4}
# AutoARIMA's default search (up to 94 candidates, seasonal orders up to 2, exact likelihood) takes
# minutes on long seasonal series. Measured per series on 2 shared cores, defaults -> these bounds:
# weekly CO2 (season 52), last 520 weeks 430 s -> 2.6 s, all 2284 weeks 719 s -> 7 s;
# AirPassengers (144 months) 0.18 s -> 0.04 s; quarterly US GDP (203) 0.52 s -> 0.1 s.
# Without max_P/max_Q the 520-week series still took 37 s. Config options override any of these.
ARIMA_BOUNDS: dict[str, Any] = {
    "approximation": True,
    "nmodels": 20,
    "max_p": 3,
    "max_q": 3,
    "max_P": 1,
    "max_Q": 1,
}
# The fit time grows with length; older history adds little to a seasonal ARIMA, so auto-arima
# reads the last 520 points (ten years of weeks) unless ``options.max_context`` says otherwise.
ARIMA_MAX_CONTEXT = 520
ADAPTER_OPTIONS = ("method", "max_context")


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
        arima = self.method == "auto-arima"
        self.model_options = {k: v for k, v in config.options.items() if k not in ADAPTER_OPTIONS}
        self.capabilities = Capabilities(
            max_context=config.options.get("max_context", ARIMA_MAX_CONTEXT if arima else None),
            min_context=MIN_CONTEXT[self.method],
            covariates=arima,
            native_quantiles=None,
            licence=LICENCE,
        )
        try:
            self._model(season=1)
        except TypeError as error:
            raise InvalidInput(
                f"model '{config.id}': options {sorted(self.model_options)} are not all settings "
                f"of statsforecast's {self.method} ({error})"
            ) from error

    def load(self) -> None:
        """Warm up: statsforecast compiles its kernels with numba on first use (seconds each),
        which would otherwise land on the first caller."""
        y = 10 + np.sin(np.arange(48) * np.pi / 6) + np.arange(48) * 0.1
        self._model(season=12).forecast(y=y, h=2, level=[80])
        super().load()

    def prepare(self, task: ForecastTask) -> ForecastTask:
        task = super().prepare(task)
        if self.method == "auto-arima" and (task.dynamic_categorical or task.static_categorical):
            raise CovariatesNotSupported(
                "auto-arima takes numeric covariates only: encode categorical columns as numbers "
                "or drop them"
            )
        return task

    @staticmethod
    def _season(task: ForecastTask) -> int:
        season = season_length(task.freq)
        # A seasonal model needs two full seasons to estimate anything.
        return season if len(task.context) >= 2 * season else 1

    def _model(self, season: int) -> Any:
        from statsforecast.models import AutoARIMA, AutoETS, AutoTheta, SeasonalNaive

        options = self.model_options
        if self.method == "seasonal-naive":
            return SeasonalNaive(season_length=season, **options)
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
        output = self._model(self._season(task)).forecast(
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
