"""The one small base class every model adapter implements.

An adapter family declares what it needs (``Options``, ``requires``/``extra``,
``default_checkpoint``, ``capabilities``) and implements two things: ``_load_weights`` and
``_predict``. Everything else lives here, once: option checking, the optional-library check,
checkpoint resolution, the loaded state, refusing to forecast before ``load``, validation against
capabilities, context truncation, grouping, quantile selection and interpolation, and isolating one
bad task.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from pydantic import BaseModel, ValidationError

from sapheneia.config import ModelConfig
from sapheneia.data.covariates import missing_future_covariates
from sapheneia.errors import (
    CovariatesNotSupported,
    InvalidInput,
    ModelOutputInvalid,
    ModelUnavailable,
    SapheneiaError,
    SeriesTooShort,
    ValuesOutOfRange,
)
from sapheneia.models.levels import select_level
from sapheneia.models.options import NoOptions, options_message
from sapheneia.models.requirements import check_requirements
from sapheneia.tasks import ForecastResult, ForecastTask

logger = logging.getLogger(__name__)
# Beyond this, squares and sums of a series' values overflow float64 (about 1.8e308).
HUGE_VALUE = 1e150

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
    #: Dynamic covariates without future values (history only) are used rather than refused.
    past_covariates: bool = False
    native_quantiles: tuple[float, ...] | None = None
    licence: str = "Apache-2.0"

    def as_dict(self) -> dict[str, object]:
        return {
            "max_context": self.max_context,
            "max_horizon": self.max_horizon,
            "min_context": self.min_context,
            "covariates": self.covariates,
            "past_covariates": self.past_covariates,
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


#: Options that, when an adapter's options model has them, set the capability of the same name.
LIMIT_OPTIONS = ("max_context", "max_horizon")


class ModelAdapter(ABC):
    """Base of all adapters.

    A subclass sets the class attributes below and implements ``_predict`` (and ``_load_weights``
    when it has anything to load). ``options`` is the config's ``options`` parsed by ``Options``;
    ``model`` is what ``_load_weights`` returned, kept until ``unload``.
    """

    #: The family's limits; options ``max_context``/``max_horizon`` override them per config.
    capabilities: Capabilities = Capabilities()
    #: pydantic model of ``config.options`` (``extra="forbid"``, so a misspelt option fails).
    Options: ClassVar[type[BaseModel]] = NoOptions
    #: Modules that must be importable for ``load`` to work, and the pip extra that installs them.
    requires: ClassVar[tuple[str, ...]] = ()
    extra: ClassVar[str | None] = None
    #: The install command when it is not ``pip install 'sapheneia[<extra>]'``.
    install: ClassVar[str | None] = None
    #: Hub id of the weights when the config names none; ``None`` for models without weights.
    default_checkpoint: ClassVar[str | None] = None

    def __init__(self, config: ModelConfig) -> None:
        self.config = config
        self.options: Any = self.parse_options(config)
        fields = type(self.options).model_fields
        limits = {name: getattr(self.options, name) for name in LIMIT_OPTIONS if name in fields}
        self.capabilities = replace(type(self).capabilities, **limits)
        self.model: Any = None
        self.loaded = False

    @property
    def name(self) -> str:
        return self.config.id

    @classmethod
    def parse_options(cls, config: ModelConfig) -> BaseModel:
        """``config.options`` as ``Options``; raises ``InvalidInput`` naming the bad option and the
        valid ones."""
        try:
            return cls.Options.model_validate(config.options)
        except ValidationError as error:
            raise InvalidInput(options_message(config.id, cls.Options, error)) from error

    # -- lifecycle -------------------------------------------------------------------------------

    def load(self) -> None:
        """Load the weights (once). Raises ``ModelUnavailable`` with the fix when the library or
        the weights are missing."""
        if self.loaded:
            return
        self.check_requirements()
        self.model = self._load_weights(self.checkpoint_path())
        self.loaded = True

    def unload(self) -> None:
        """Free the weights; ``load`` brings them back."""
        self._unload_weights()
        self.model = None
        self.loaded = False

    def check_requirements(self) -> None:
        """Raise ``ModelUnavailable`` with the install command when a required module is missing."""
        check_requirements(self.name, self.requires, self.extra, self.install)

    def checkpoint_path(self) -> Path | None:
        """The local directory of the weights (``config.checkpoint`` or ``default_checkpoint``),
        or ``None`` for a model without weights."""
        checkpoint = self.config.checkpoint or self.default_checkpoint
        if checkpoint is None:
            return None
        from sapheneia.models.checkpoints import resolve_checkpoint
        from sapheneia.settings import get_settings

        return resolve_checkpoint(
            self.name, checkpoint, get_settings().model_dir, self.config.revision
        )

    def _load_weights(self, checkpoint: Path | None) -> Any:
        """Load what ``_predict`` needs from ``checkpoint`` (``None`` without weights) and return it
        (kept as ``self.model``). Raise ``ModelUnavailable`` when it is not a usable checkpoint."""
        return None

    def _unload_weights(self) -> None:
        """Release what dropping ``self.model`` does not (processes, files); nothing by default."""
        return None

    @abstractmethod
    def _predict(
        self, tasks: Sequence[ForecastTask], levels: tuple[float, ...]
    ) -> list[NativeForecast]:
        """Forecast tasks that share horizon, levels and frequency.

        ``levels`` are the quantile levels wanted (sorted, median included); a model with fixed native
        levels may ignore them and return its own.
        """

    # -- forecasting -----------------------------------------------------------------------------

    def forecast(self, tasks: Sequence[ForecastTask]) -> list[ForecastResult | SapheneiaError]:
        """Forecast every task; a task that fails gets its error in its own slot, not the batch's."""
        if not self.loaded:
            error = ModelUnavailable(f"model '{self.name}' is not loaded; initialise it first")
            return [error for _ in tasks]
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
        if task.past_only_covariates and not caps.past_covariates:
            name = task.past_only_covariates[0]
            raise missing_future_covariates(
                task.series_id, name, task.future_timestamps, task.future_timestamps
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
                # A model that raises on values this large is the caller's to fix, as is one
                # that overflows to inf or NaN.
                too_large = self._too_large(group[0])
                return [too_large or SapheneiaError(f"model '{self.name}' failed on this series")]
            # Run one by one so that one bad series fails only its own request.
            return [outcome for task in group for outcome in self._forecast_group([task])]
        return [
            self._to_result(task, native)
            if np.isfinite(native.mean[: task.horizon]).all()
            and np.isfinite(native.values[:, : task.horizon]).all()
            # NaN or inf would make the response invalid JSON, and is no forecast anyway.
            else self._not_finite(task)
            for task, native in zip(group, natives, strict=True)
        ]

    def _not_finite(self, task: ForecastTask) -> SapheneiaError:
        """A non-finite forecast: the caller's to fix when the series' own values are so large
        that arithmetic on them overflows, else the model's fault."""
        too_large = self._too_large(task)
        return too_large or ModelOutputInvalid(
            f"model '{self.name}' returned values that are not numbers"
        )

    def _too_large(self, task: ForecastTask) -> ValuesOutOfRange | None:
        """The caller's error when ``task``'s values are so large that arithmetic on them
        overflows; None for ordinary values."""
        largest = float(np.nanmax(np.abs(task.context))) if task.context.size else 0.0
        if largest <= HUGE_VALUE:
            return None
        return ValuesOutOfRange(
            f"series '{task.series_id}' has values up to {largest:.3g}, too large for "
            f"model '{self.name}' to forecast without overflowing; rescale the series (for "
            "example divide it by a power of ten) and scale the forecast back"
        )

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
