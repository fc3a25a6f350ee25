"""TimesFM-3.0 through ``timesfm3`` (shipped inside the ``timesfm`` distribution): opt-in, because its
weights are licensed for non-commercial use only.

The model has no mean head: its median stands in for the mean. Covariates are not served.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import Field

from sapheneia.errors import ModelUnavailable
from sapheneia.models.base import Capabilities, NativeForecast
from sapheneia.models.timesfm_covariates import TIMESFM_LEVELS, TimesFMOptions
from sapheneia.models.torch_runtime import TorchAdapter
from sapheneia.tasks import ForecastTask

CONTEXT_LIMIT = 15360


class TimesFM30Options(TimesFMOptions):
    """``options:`` of a TimesFM-3.0 model config."""

    max_context: int = Field(
        default=2048, ge=32, le=CONTEXT_LIMIT, description="Observations the model reads."
    )


class TimesFM30Adapter(TorchAdapter):
    """Google TimesFM-3.0; ``self.model`` is ``timesfm3``'s ``TimesFM3Forecaster``."""

    Options = TimesFM30Options
    options: TimesFM30Options
    requires = ("timesfm3",)
    install = "pip install 'timesfm>=3.0.2' (it ships timesfm3)"
    default_checkpoint = "google/timesfm-3.0-pytorch"
    capabilities = Capabilities(native_quantiles=TIMESFM_LEVELS, licence="non-commercial")

    def load(self) -> None:
        if not self.config.licence_acknowledged:
            raise ModelUnavailable(
                "the TimesFM-3.0 weights are licensed for non-commercial use only; set "
                f"`licence_acknowledged: true` in the config of '{self.name}' to accept the "
                "licence and serve it"
            )
        super().load()

    def _load_weights(self, checkpoint: Path | None) -> Any:
        from timesfm3 import TimesFM3Forecaster

        try:
            model = TimesFM3Forecaster.from_pretrained(
                str(checkpoint),
                device=str(self.device),
                local_files_only=True,
                # The forecaster runs this many series per pass itself.
                per_core_batch_size=self.options.batch_size,
            )
        except (FileNotFoundError, OSError) as error:
            raise ModelUnavailable(
                f"the weights directory of '{self.name}' has no usable weights; "
                f"run `sapheneia pull {self.name}`"
            ) from error
        model.model.to(dtype=self.dtype)
        return model

    def _predict(
        self, tasks: Sequence[ForecastTask], levels: tuple[float, ...]
    ) -> list[NativeForecast]:
        with self.inference():
            outputs = list(
                self.model.predict_batch(
                    contexts=[np.asarray(task.context, dtype=np.float32) for task in tasks],
                    horizon=tasks[0].horizon,
                    return_quantiles=True,
                )
            )
        quantiles = tuple(self.model.config.quantiles)
        return [
            NativeForecast(
                mean=np.asarray(output.forecast, dtype=float),
                levels=quantiles,
                values=np.asarray(output.quantiles, dtype=float).T,
            )
            for output in outputs
        ]
