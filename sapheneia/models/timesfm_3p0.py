"""TimesFM-3.0 through ``timesfm3`` (shipped inside the ``timesfm`` distribution): opt-in, because its
weights are licensed for non-commercial use only.

The model has no mean head: its median stands in for the mean. Covariates are not served.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from sapheneia.config import ModelConfig
from sapheneia.errors import ModelUnavailable
from sapheneia.models.base import Capabilities, ModelAdapter, NativeForecast
from sapheneia.models.checkpoints import resolve_checkpoint
from sapheneia.models.timesfm_covariates import (
    TIMESFM_LEVELS,
    inference,
    parse_options,
    torch_device,
    torch_dtype,
)
from sapheneia.settings import get_settings
from sapheneia.tasks import ForecastTask


class TimesFM30Adapter(ModelAdapter):
    capabilities = Capabilities(
        max_context=15360,
        max_horizon=1024,
        native_quantiles=TIMESFM_LEVELS,
        licence="non-commercial",
        needs_weights=True,
    )

    def __init__(self, config: ModelConfig) -> None:
        super().__init__(config)
        self.options = parse_options(config)
        self.capabilities = replace(
            type(self).capabilities,
            max_context=min(self.options.max_context, 15360),
            max_horizon=self.options.max_horizon,
        )
        self._model: Any = None

    def load(self) -> None:
        if not self.config.licence_acknowledged:
            raise ModelUnavailable(
                "the TimesFM-3.0 weights are licensed for non-commercial use only; set "
                f"`licence_acknowledged: true` in the config of '{self.config.id}' to accept the "
                "licence and serve it"
            )
        if importlib.util.find_spec("timesfm3") is None:
            raise ModelUnavailable(
                f"model '{self.config.id}' needs the package timesfm3, which this server does not "
                "have; install timesfm (3.0.2 or later, which ships it) into the server's "
                "environment"
            )
        from timesfm3 import TimesFM3Forecaster

        checkpoint = self.config.checkpoint or "google/timesfm-3.0-pytorch"
        path = resolve_checkpoint(self.config.id, checkpoint, get_settings().model_dir)
        self._device, self._dtype = torch_device(self.config), torch_dtype(self.config)
        try:
            model = TimesFM3Forecaster.from_pretrained(
                str(path),
                device=str(self._device),
                local_files_only=True,
                per_core_batch_size=self.options.batch_size,
            )
        except (FileNotFoundError, OSError) as error:
            raise ModelUnavailable(
                f"the weights directory of '{self.config.id}' has no usable weights; "
                f"run `sapheneia pull {self.config.id}`"
            ) from error
        model.model.to(dtype=self._dtype)
        self._model = model
        self.loaded = True

    def unload(self) -> None:
        self._model = None
        super().unload()

    def _predict(
        self, tasks: Sequence[ForecastTask], levels: tuple[float, ...]
    ) -> list[NativeForecast]:
        with inference(self._device, self._dtype):
            outputs = list(
                self._model.predict_batch(
                    contexts=[np.asarray(task.context, dtype=np.float32) for task in tasks],
                    horizon=tasks[0].horizon,
                    return_quantiles=True,
                )
            )
        quantiles = tuple(self._model.config.quantiles)
        return [
            NativeForecast(
                mean=np.asarray(output.forecast, dtype=float),
                levels=quantiles,
                values=np.asarray(output.quantiles, dtype=float).T,
            )
            for output in outputs
        ]
