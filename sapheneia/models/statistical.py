"""statsforecast's SeasonalNaive, AutoETS, AutoARIMA and AutoTheta as one adapter.

Each series is fitted on its own through the model classes' ``forecast`` (the same code path as
``StatsForecast(...).forecast``), which lets one batch mix horizons and frequencies.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal, cast, get_args

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from sapheneia.config import ModelConfig
from sapheneia.data import season_length
from sapheneia.errors import CovariatesNotSupported, InvalidInput
from sapheneia.models.base import Capabilities, ModelAdapter, NativeForecast
from sapheneia.tasks import ForecastTask

LICENCE = "Apache-2.0 (statsforecast)"
Method = Literal["seasonal-naive", "auto-ets", "auto-arima", "auto-theta"]
METHODS: tuple[Method, ...] = get_args(Method)
#: The statsforecast class of each method.
MODEL_CLASSES = {
    "seasonal-naive": "SeasonalNaive",
    "auto-ets": "AutoETS",
    "auto-arima": "AutoARIMA",
    "auto-theta": "AutoTheta",
}
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


def method_of(model_id: str, options: StatisticalOptions) -> Method:
    """``options.method``, or the config id when it names a method."""
    if options.method is not None:
        return options.method
    if model_id in METHODS:
        return cast(Method, model_id)
    raise InvalidInput(
        f"model '{model_id}': set options.method to one of {', '.join(METHODS)} (the id names none)"
    )


def is_median(q: float) -> bool:
    """``np.isclose(q, 0.5)`` for one number, without numpy's per-call overhead (per series)."""
    return math.isclose(q, 0.5, rel_tol=1e-5, abs_tol=1e-8)


def interval_levels(quantiles: Sequence[float]) -> list[int | float]:
    """Prediction-interval levels (percent) whose edges are the requested quantiles."""
    levels = {round(abs(2 * q - 1) * 100, 6) for q in quantiles if not is_median(q)}
    return sorted(int(v) if float(v).is_integer() else v for v in levels)


def edge_key(quantile: float) -> str:
    level = round(abs(2 * quantile - 1) * 100, 6)
    text = f"{int(level)}" if float(level).is_integer() else f"{level}"
    return f"{'lo' if quantile < 0.5 else 'hi'}-{text}"


class StatisticalOptions(BaseModel):
    """``options:`` of a statistical model config: the adapter's own, then any keyword argument of
    the method's statsforecast class (``model: AAN`` for AutoETS, ``max_p: 5`` for AutoARIMA, ...),
    checked against that class's signature by ``StatisticalAdapter.parse_options``."""

    model_config = ConfigDict(extra="allow")

    method: Method | None = Field(default=None, description="The model; default: the config id.")
    max_context: int | None = Field(
        default=None,
        ge=1,
        description="Most recent observations read; default 520 for auto-arima, else all.",
    )


class StatisticalAdapter(ModelAdapter):
    """``options.method`` picks the model (default: the config id)."""

    Options = StatisticalOptions
    options: StatisticalOptions
    requires = ("statsforecast",)
    install = "pip install statsforecast==2.1.1"

    def __init__(self, config: ModelConfig) -> None:
        super().__init__(config)
        self.method: Method = method_of(config.id, self.options)
        self.model_options: dict[str, Any] = dict(self.options.model_extra or {})
        arima = self.method == "auto-arima"
        bounded = "max_context" in self.options.model_fields_set
        self.capabilities = Capabilities(
            max_context=self.options.max_context
            if bounded
            else ARIMA_MAX_CONTEXT
            if arima
            else None,
            min_context=MIN_CONTEXT[self.method],
            covariates=arima,
            native_quantiles=None,
            licence=LICENCE,
        )

    @classmethod
    def parse_options(cls, config: ModelConfig) -> BaseModel:
        """The adapter's options, and the rest checked against the statsforecast class's settings
        (``season_length`` is the adapter's: it follows each series' frequency; a setting named
        like one of the adapter's options, AutoARIMA's ``method``, is the adapter's)."""
        options = cast(StatisticalOptions, super().parse_options(config))
        method = method_of(config.id, options)
        import statsforecast.models

        model_class = getattr(statsforecast.models, MODEL_CLASSES[method])
        own = {"season_length", *StatisticalOptions.model_fields}
        settings = set(inspect.signature(model_class).parameters) - own
        unknown = sorted(set(options.model_extra or {}) - settings)
        if unknown:
            valid = ", ".join(["max_context", "method", *sorted(settings)])
            raise InvalidInput(
                f"model '{config.id}': unknown option '{unknown[0]}' (not a setting of "
                f"statsforecast's {model_class.__name__}). Valid options: {valid}"
            )
        return options

    def _load_weights(self, checkpoint: Path | None) -> None:
        """Warm up: statsforecast compiles its kernels with numba on first use (seconds each),
        which would otherwise land on the first caller."""
        y = 10 + np.sin(np.arange(48) * np.pi / 6) + np.arange(48) * 0.1
        self._model(season=12).forecast(y=y, h=2, level=[80])

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
        import statsforecast.models

        model_class = getattr(statsforecast.models, MODEL_CLASSES[self.method])
        bounds = ARIMA_BOUNDS if self.method == "auto-arima" else {}
        return model_class(season_length=season, **{**bounds, **self.model_options})

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
            mean if is_median(q) else np.asarray(output[edge_key(q)], dtype=float) for q in levels
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
