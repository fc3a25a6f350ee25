"""The one small base class every model adapter implements.

An adapter implements ``_predict`` for a group of tasks that share horizon, levels and frequency, and
returns its native output. Everything shared (validation against capabilities, context truncation,
grouping, quantile selection and interpolation, isolating one bad task) lives here, once.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from sapheneia.config import ModelConfig
from sapheneia.errors import CovariatesNotSupported, InvalidInput, SapheneiaError, SeriesTooShort
from sapheneia.tasks import ForecastResult, ForecastTask

logger = logging.getLogger(__name__)

MEDIAN = 0.5


@dataclass(frozen=True)
class Capabilities:
    """What a model can do; shown in ``/models`` and enforced before a task reaches the model.

    ``native_quantiles`` lists the levels the model produces; ``None`` means any level is native
    (statistical models derive each level from their predictive distribution).
    """

    max_context: int | None = None
    max_horizon: int | None = None
    min_context: int = 3
    covariates: bool = False
    native_quantiles: tuple[float, ...] | None = None
    licence: str = "Apache-2.0"
    needs_weights: bool = False

    def as_dict(self) -> dict[str, object]:
        return {
            "max_context": self.max_context,
            "max_horizon": self.max_horizon,
            "min_context": self.min_context,
            "covariates": self.covariates,
            "native_quantiles": list(self.native_quantiles) if self.native_quantiles else "any",
            "licence": self.licence,
        }


@dataclass
class NativeForecast:
    """A model's raw output for one task: ``mean`` ``(horizon,)``, ``values`` ``(n_levels, horizon)``."""

    mean: np.ndarray
    levels: tuple[float, ...]
    values: np.ndarray
    covariates_used: bool = False


class ModelAdapter(ABC):
    """Base of all adapters. Subclasses set ``capabilities`` and implement ``_predict``."""

    capabilities: Capabilities = Capabilities()

    def __init__(self, config: ModelConfig) -> None:
        self.config = config
        self.loaded = False

    @property
    def name(self) -> str:
        return self.config.id

    def load(self) -> None:
        """Load weights. Raise ``ModelUnavailable`` with the fix when they cannot be found."""
        self.loaded = True

    def unload(self) -> None:
        """Free weights; ``load`` brings them back."""
        self.loaded = False

    @abstractmethod
    def _predict(
        self, tasks: Sequence[ForecastTask], levels: tuple[float, ...]
    ) -> list[NativeForecast]:
        """Forecast tasks that share horizon, levels and frequency.

        ``levels`` are the quantile levels wanted (sorted, median included); a model with fixed native
        levels may ignore them and return its own.
        """

    def forecast(self, tasks: Sequence[ForecastTask]) -> list[ForecastResult | SapheneiaError]:
        """Forecast every task; a task that fails gets its error in its own slot, not the batch's."""
        results: list[ForecastResult | SapheneiaError | None] = [None] * len(tasks)
        groups: dict[tuple[object, ...], list[int]] = defaultdict(list)
        prepared: dict[int, ForecastTask] = {}
        for index, task in enumerate(tasks):
            try:
                prepared[index] = self.prepare(task)
            except SapheneiaError as error:
                results[index] = error
                continue
            groups[task.settings_key()].append(index)
        for indices in groups.values():
            group = [prepared[i] for i in indices]
            for index, outcome in zip(indices, self._forecast_group(group), strict=True):
                results[index] = outcome
        return [r if r is not None else SapheneiaError("no result") for r in results]

    def prepare(self, task: ForecastTask) -> ForecastTask:
        """Check a task against the capabilities and cut its context to what the model reads."""
        caps = self.capabilities
        if task.has_covariates and not caps.covariates:
            raise CovariatesNotSupported(
                f"model '{self.name}' does not use covariates; send the request without covariate "
                "columns or pick a model that supports them (see GET /api/v2/models)"
            )
        if caps.max_horizon is not None and task.horizon > caps.max_horizon:
            raise InvalidInput(
                f"horizon {task.horizon} is longer than model '{self.name}' allows "
                f"({caps.max_horizon}); ask for a shorter horizon"
            )
        if len(task.context) < caps.min_context:
            raise SeriesTooShort(
                f"series '{task.series_id}' has {len(task.context)} observations; model "
                f"'{self.name}' needs at least {caps.min_context}"
            )
        if caps.max_context is not None and len(task.context) > caps.max_context:
            cut = len(task.context) - caps.max_context
            task = replace(
                task,
                context=task.context[cut:],
                timestamps=task.timestamps[cut:],
                dynamic_numerical={k: v[cut:] for k, v in task.dynamic_numerical.items()},
                dynamic_categorical={k: v[cut:] for k, v in task.dynamic_categorical.items()},
            )
        return task

    def _forecast_group(self, group: list[ForecastTask]) -> list[ForecastResult | SapheneiaError]:
        levels = tuple(sorted({*group[0].quantiles, MEDIAN}))
        try:
            natives = self._predict(group, levels)
        except SapheneiaError as error:
            if len(group) == 1:
                return [error]
            return [outcome for task in group for outcome in self._forecast_group([task])]
        except Exception:
            if len(group) == 1:
                logger.exception("model %s failed on series %s", self.name, group[0].series_id)
                return [SapheneiaError(f"model '{self.name}' failed on this series")]
            # Run one by one so that one bad series fails only its own request.
            return [outcome for task in group for outcome in self._forecast_group([task])]
        return [self._to_result(task, native) for task, native in zip(group, natives, strict=True)]

    def _to_result(self, task: ForecastTask, native: NativeForecast) -> ForecastResult:
        quantiles: dict[float, np.ndarray] = {}
        interpolated: list[float] = []
        for level in task.quantiles:
            values, exact = select_level(native.levels, native.values, level)
            quantiles[level] = values
            if not exact:
                interpolated.append(level)
        median, _ = select_level(native.levels, native.values, MEDIAN)
        return ForecastResult(
            series_id=task.series_id,
            mean=np.asarray(native.mean, dtype=float)[: task.horizon],
            median=median[: task.horizon],
            quantiles={k: v[: task.horizon] for k, v in quantiles.items()},
            future_timestamps=task.future_timestamps,
            interpolated=tuple(interpolated),
            covariates_used=native.covariates_used,
        )


def select_level(
    levels: Sequence[float], values: np.ndarray, level: float
) -> tuple[np.ndarray, bool]:
    """The row of ``values`` ``(n_levels, horizon)`` at ``level``; linear in between, flat outside.

    Returns the row and whether it was native (no interpolation).
    """
    native = np.asarray(levels, dtype=float)
    match = np.flatnonzero(np.isclose(native, level, atol=1e-9))
    if match.size:
        return np.asarray(values[match[0]], dtype=float), True
    order = np.argsort(native)
    native, rows = native[order], np.asarray(values, dtype=float)[order]
    interpolated = np.array(
        [np.interp(level, native, rows[:, step]) for step in range(rows.shape[1])]
    )
    return interpolated, False
