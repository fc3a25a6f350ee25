"""What the TimesFM adapters share: their options and XReg covariates.

XReg (in-context covariate regression) fits one linear model over every series it is given, so it is
called once per ``task.group`` (one caller's request) and never over a batch that mixes callers.
The regression itself is the ``timesfm`` package's own (``forecast_with_covariates``); TimesFM-2.0
reuses it through ``XRegForecaster``, which lets that code drive any base forecaster.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from types import SimpleNamespace
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from sapheneia.errors import (
    CovariatesNotSupported,
    InvalidInput,
    MissingFutureCovariates,
)
from sapheneia.models.base import NativeForecast
from sapheneia.models.requirements import importable
from sapheneia.tasks import COVARIATE_ROLES, DECILES, DYNAMIC_ROLES, ForecastTask

#: Quantile levels of every TimesFM output head; output index 0 is the mean, 1..9 these levels.
TIMESFM_LEVELS = DECILES


class TimesFMOptions(BaseModel):
    """``options:`` of a TimesFM-3.0 model config, and what every TimesFM takes."""

    model_config = ConfigDict(extra="forbid")

    batch_size: int = Field(
        default=32, ge=1, description="Series per model call; match the deployment's batch size."
    )
    max_context: int = Field(default=2048, ge=32, description="Observations the model reads.")
    max_horizon: int = Field(default=1024, ge=1, description="Longest horizon served.")


class TimesFMXRegOptions(TimesFMOptions):
    """``options:`` of a TimesFM-2.0 model config: also how covariates are regressed."""

    xreg_mode: Literal["xreg + timesfm", "timesfm + xreg"] = Field(
        default="xreg + timesfm",
        description="Covariates: regress first and forecast the residuals, or the other way round.",
    )
    ridge: float = Field(default=0.0, ge=0.0, description="Ridge penalty of the XReg regression.")


def require_xreg(model_id: str) -> None:
    """Covariates need jax and scikit-learn; say so as a 4xx when the server lacks them."""
    missing = [name for name in ("jax", "sklearn") if not importable(name)]
    if missing:
        raise CovariatesNotSupported(
            f"covariates with model '{model_id}' need the packages jax and scikit-learn, which "
            "this server does not have (install them with `pip install 'sapheneia[covariates]'`); "
            "send the request without covariate columns"
        )


def forecast_by_group(
    tasks: Sequence[ForecastTask],
    plain: Callable[[list[ForecastTask]], list[NativeForecast]],
    with_covariates: Callable[[list[ForecastTask]], list[NativeForecast]],
) -> list[NativeForecast]:
    """Tasks without covariates in one call; tasks with covariates in one call per ``group``."""
    results: list[NativeForecast | None] = [None] * len(tasks)
    without = [i for i, task in enumerate(tasks) if not task.has_covariates]
    groups: dict[str, list[int]] = defaultdict(list)
    for i, task in enumerate(tasks):
        if task.has_covariates:
            groups[task.group].append(i)
    batches = [(without, plain)] if without else []
    batches += [(indices, with_covariates) for indices in groups.values()]
    for indices, forecast in batches:
        for i, native in zip(indices, forecast([tasks[i] for i in indices]), strict=True):
            results[i] = native
    return [native for native in results if native is not None]


def covariate_arguments(tasks: Sequence[ForecastTask]) -> dict[str, Any]:
    """The covariates of one group as ``forecast_with_covariates`` keyword arguments.

    Every series of a group must carry the same covariate names; dynamic ones must cover history and
    horizon (``len(context) + horizon`` values).
    """
    first = tasks[0]
    for task in tasks:
        for role in COVARIATE_ROLES:
            if sorted(getattr(task, role)) != sorted(getattr(first, role)):
                raise InvalidInput(
                    f"series '{task.series_id}' has {role} covariates "
                    f"{sorted(getattr(task, role))} but series '{first.series_id}' has "
                    f"{sorted(getattr(first, role))}; give every series of a request the same "
                    "covariate columns"
                )
        for role in DYNAMIC_ROLES:
            for name, values in getattr(task, role).items():
                if len(values) != len(task.context) + task.horizon:
                    raise MissingFutureCovariates(
                        f"covariate '{name}' of series '{task.series_id}' has {len(values)} values; "
                        f"it needs one per history row and per future step "
                        f"({len(task.context)} + {task.horizon})"
                    )
    return {
        "dynamic_numerical_covariates": {
            name: [np.asarray(t.dynamic_numerical[name], dtype=float) for t in tasks]
            for name in first.dynamic_numerical
        },
        "dynamic_categorical_covariates": {
            name: [list(t.dynamic_categorical[name]) for t in tasks]
            for name in first.dynamic_categorical
        },
        "static_numerical_covariates": {
            name: [float(t.static_numerical[name]) for t in tasks]
            for name in first.static_numerical
        },
        "static_categorical_covariates": {
            name: [t.static_categorical[name] for t in tasks] for name in first.static_categorical
        },
    }


def to_native(quantile_output: np.ndarray, covariates_used: bool = False) -> NativeForecast:
    """One series' TimesFM output ``(horizon, 10)`` (mean, then Q10..Q90) as a ``NativeForecast``."""
    output = np.asarray(quantile_output, dtype=float)
    return NativeForecast(
        mean=output[:, 0],
        levels=TIMESFM_LEVELS,
        values=output[:, 1:].T,
        covariates_used=covariates_used,
    )


def xreg_forecast(
    model: Any, tasks: Sequence[ForecastTask], options: TimesFMXRegOptions
) -> list[NativeForecast]:
    """One group's covariate forecast through the timesfm package's ``forecast_with_covariates``.

    ``model`` is a ``timesfm`` 2.5 model (or an ``XRegForecaster``) whose forecast config has
    ``return_backcast=True``.
    """
    _, quantiles = model.forecast_with_covariates(
        inputs=[np.asarray(task.context, dtype=float) for task in tasks],
        xreg_mode=options.xreg_mode,
        ridge=options.ridge,
        **covariate_arguments(tasks),
    )
    return [to_native(output, covariates_used=True) for output in quantiles]


def xreg_forecaster(
    forecast: Callable[[int, list[np.ndarray]], tuple[np.ndarray, np.ndarray]],
    horizon: int,
    patch_length: int,
) -> Any:
    """A ``timesfm`` model facade whose ``forecast_with_covariates`` runs on ``forecast``.

    ``forecast(horizon, inputs)`` returns the points ``(n, backcast + horizon)`` and the quantile
    outputs ``(n, backcast + horizon, 10)``, the backcast covering all but the first input patch.
    """
    from timesfm import ForecastConfig
    from timesfm.timesfm_2p5.timesfm_2p5_base import TimesFM_2p5

    class XRegForecaster(TimesFM_2p5):
        # The XReg orchestration lives on the 2.5 base class but only needs ``forecast``,
        # ``forecast_config`` and the patch length, so any TimesFM can stand behind it.
        def forecast(self, horizon: int, inputs: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
            return forecast(horizon, [np.asarray(x, dtype=float) for x in inputs])

    facade = XRegForecaster()
    facade.forecast_config = ForecastConfig(max_horizon=horizon, return_backcast=True)
    facade.model = SimpleNamespace(p=patch_length)  # type: ignore[attr-defined]
    return facade
