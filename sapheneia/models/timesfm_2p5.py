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
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import Field, model_validator

from sapheneia.errors import ModelUnavailable
from sapheneia.models.base import Capabilities, NativeForecast
from sapheneia.models.timesfm_covariates import (
    TIMESFM_LEVELS,
    TimesFMXRegOptions,
    forecast_by_group,
    require_xreg,
    to_native,
    xreg_forecast,
)
from sapheneia.models.torch_runtime import TorchAdapter
from sapheneia.tasks import ForecastTask

OUTPUT_PATCH = 128
CONTEXT_LIMIT = 16384
QUANTILE_HEAD_LIMIT = 1024  # the continuous quantile head covers this many steps


class TimesFM25Options(TimesFMXRegOptions):
    """``options:`` of a TimesFM-2.5 model config."""

    max_horizon: int = Field(
        default=QUANTILE_HEAD_LIMIT,
        ge=1,
        le=QUANTILE_HEAD_LIMIT,
        description="Longest horizon served; the continuous quantile head reaches 1024 steps.",
    )
    normalize_inputs: bool = Field(default=True, description="Normalise each input first.")
    torch_compile: bool = Field(default=False, description="torch.compile; slow first call.")

    @model_validator(mode="after")
    def _fits_the_model(self) -> TimesFM25Options:
        if self.max_context + self.max_horizon > CONTEXT_LIMIT:
            raise ValueError(
                f"max_context + max_horizon ({self.max_context} + {self.max_horizon}) exceed the "
                f"{CONTEXT_LIMIT} steps TimesFM-2.5 reads"
            )
        return self


class TimesFM25Adapter(TorchAdapter):
    """Google TimesFM-2.5; covariates through the package's own ``forecast_with_covariates``.

    ``self.model`` is the package's ``TimesFM_2p5_200M_torch``.
    """

    Options = TimesFM25Options
    options: TimesFM25Options
    requires = ("timesfm",)
    install = "pip install timesfm==3.0.2"
    default_checkpoint = "google/timesfm-2.5-200m-pytorch"
    capabilities = Capabilities(covariates=True, native_quantiles=TIMESFM_LEVELS)
    _compiled_for: tuple[int, int] | None = None

    def model_class(self) -> Any:
        """The ``timesfm`` class that loads the weights."""
        from timesfm import TimesFM_2p5_200M_torch

        return TimesFM_2p5_200M_torch

    def _load_weights(self, checkpoint: Path | None) -> Any:
        try:
            model = self.model_class().from_pretrained(
                str(checkpoint), torch_compile=self.options.torch_compile, local_files_only=True
            )
        except (FileNotFoundError, OSError) as error:
            raise ModelUnavailable(
                f"the weights directory of '{self.name}' has no usable model.safetensors; "
                f"run `sapheneia pull {self.name}`"
            ) from error
        # The package picks cuda:0 whenever there is a GPU; the config decides instead.
        model.model.device = self.device
        model.model.to(device=self.device, dtype=self.dtype)
        self._compiled_for = None
        return model

    def compiled(self, batch: int, horizon: int) -> Any:
        """The model with a forecast config for ``batch`` series and ``horizon`` steps."""
        from timesfm import ForecastConfig

        per_core = min(self.options.batch_size, 1 << max(batch - 1, 0).bit_length())
        max_horizon = math.ceil(horizon / OUTPUT_PATCH) * OUTPUT_PATCH
        if self._compiled_for != (per_core, max_horizon):
            self.model.compile(
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
        return self.model

    def _predict(
        self, tasks: Sequence[ForecastTask], levels: tuple[float, ...]
    ) -> list[NativeForecast]:
        with self.inference():
            return forecast_by_group(tasks, self._forecast_plain, self._forecast_with_covariates)

    def _forecast_plain(self, tasks: list[ForecastTask]) -> list[NativeForecast]:
        horizon = tasks[0].horizon
        # The package runs per_core_batch_size (at most options.batch_size) series per pass itself.
        model = self.compiled(len(tasks), horizon)
        # A fresh list: ``forecast`` pads its argument in place.
        _, quantiles = model.forecast(
            horizon=horizon, inputs=[np.asarray(task.context, dtype=float) for task in tasks]
        )
        return [to_native(output[-horizon:]) for output in quantiles]

    def _forecast_with_covariates(self, tasks: list[ForecastTask]) -> list[NativeForecast]:
        require_xreg(self.name)
        model = self.compiled(len(tasks), tasks[0].horizon)
        return xreg_forecast(model, tasks, self.options)
