"""TimesFM-2.5 (200M) through the ``timesfm`` package's ``TimesFM_2p5_200M_torch``.

The package pads every call to ``per_core_batch_size`` series and decodes up to ``max_horizon``, so the
forecast config is recompiled (a cheap closure, no tracing) for the batch size and horizon at hand:
batch sizes are rounded up to a power of two, capped by ``options.batch_size``, and horizons to whole
output patches. Neither changes a series' forecast; ``max_context`` does (inputs are normalised over
the padded context), so it stays fixed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from sapheneia.config import ModelConfig
from sapheneia.errors import InvalidInput, ModelUnavailable
from sapheneia.models.base import Capabilities, ModelAdapter, NativeForecast
from sapheneia.models.checkpoints import resolve_checkpoint
from sapheneia.models.timesfm_covariates import (
    TIMESFM_LEVELS,
    forecast_by_group,
    inference,
    parse_options,
    require_xreg,
    to_native,
    torch_device,
    torch_dtype,
    xreg_forecast,
)
from sapheneia.settings import get_settings
from sapheneia.tasks import ForecastTask

OUTPUT_PATCH = 128
CONTEXT_LIMIT = 16384
QUANTILE_HEAD_LIMIT = 1024  # the continuous quantile head covers this many steps


class TimesFM25Adapter(ModelAdapter):
    """Google TimesFM-2.5; covariates through the package's own ``forecast_with_covariates``."""

    capabilities = Capabilities(
        max_context=2048,
        max_horizon=QUANTILE_HEAD_LIMIT,
        covariates=True,
        native_quantiles=TIMESFM_LEVELS,
        needs_weights=True,
    )
    default_checkpoint = "google/timesfm-2.5-200m-pytorch"

    def __init__(self, config: ModelConfig) -> None:
        super().__init__(config)
        self.options = parse_options(config)
        if self.options.max_horizon > QUANTILE_HEAD_LIMIT:
            raise InvalidInput(
                f"max_horizon of model '{config.id}' is {self.options.max_horizon}; TimesFM-2.5's "
                f"quantile head reaches {QUANTILE_HEAD_LIMIT} steps"
            )
        if self.options.max_context + self.options.max_horizon > CONTEXT_LIMIT:
            raise InvalidInput(
                f"max_context + max_horizon of model '{config.id}' exceed {CONTEXT_LIMIT}"
            )
        self.capabilities = replace(
            type(self).capabilities,
            max_context=self.options.max_context,
            max_horizon=self.options.max_horizon,
        )
        self._model: Any = None
        self._compiled_for: tuple[int, int] | None = None

    def model_class(self) -> Any:
        """The ``timesfm`` class that loads the weights."""
        from timesfm import TimesFM_2p5_200M_torch

        return TimesFM_2p5_200M_torch

    def load(self) -> None:
        checkpoint = self.config.checkpoint or self.default_checkpoint
        path = resolve_checkpoint(self.config.id, checkpoint, get_settings().model_dir)
        self._device, self._dtype = torch_device(self.config), torch_dtype(self.config)
        try:
            model = self.model_class().from_pretrained(
                str(path), torch_compile=self.options.torch_compile, local_files_only=True
            )
        except (FileNotFoundError, OSError) as error:
            raise ModelUnavailable(
                f"the weights directory of '{self.config.id}' has no usable model.safetensors; "
                f"run `sapheneia pull {self.config.id}`"
            ) from error
        # The package picks cuda:0 whenever there is a GPU; the config decides instead.
        model.model.device = self._device
        model.model.to(device=self._device, dtype=self._dtype)
        self._model, self._compiled_for = model, None
        self.loaded = True

    def unload(self) -> None:
        self._model = None
        super().unload()

    def compiled(self, batch: int, horizon: int) -> Any:
        """The model with a forecast config for ``batch`` series and ``horizon`` steps."""
        from timesfm import ForecastConfig

        per_core = min(self.options.batch_size, 1 << max(batch - 1, 0).bit_length())
        max_horizon = math.ceil(horizon / OUTPUT_PATCH) * OUTPUT_PATCH
        if self._compiled_for != (per_core, max_horizon):
            self._model.compile(
                ForecastConfig(
                    max_context=self.options.max_context,
                    max_horizon=max_horizon,
                    per_core_batch_size=per_core,
                    normalize_inputs=self.options.normalize_inputs,
                    use_continuous_quantile_head=True,
                    fix_quantile_crossing=True,
                    # XReg needs the backcast; plain forecasts slice it off.
                    return_backcast=True,
                )
            )
            self._compiled_for = (per_core, max_horizon)
        return self._model

    def _predict(
        self, tasks: Sequence[ForecastTask], levels: tuple[float, ...]
    ) -> list[NativeForecast]:
        with inference(self._device, self._dtype):
            return forecast_by_group(tasks, self._forecast_plain, self._forecast_with_covariates)

    def _forecast_plain(self, tasks: list[ForecastTask]) -> list[NativeForecast]:
        horizon = tasks[0].horizon
        model = self.compiled(len(tasks), horizon)
        # A fresh list: ``forecast`` pads its argument in place.
        _, quantiles = model.forecast(
            horizon=horizon, inputs=[np.asarray(task.context, dtype=float) for task in tasks]
        )
        return [to_native(output[-horizon:]) for output in quantiles]

    def _forecast_with_covariates(self, tasks: list[ForecastTask]) -> list[NativeForecast]:
        require_xreg(self.config.id)
        model = self.compiled(len(tasks), tasks[0].horizon)
        return xreg_forecast(model, tasks, self.options)
