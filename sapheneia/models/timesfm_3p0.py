"""TimesFM-3.0 through the ``timesfm3`` package: opt-in, because its weights are non-commercial.

It is served like TimesFM-2.5 (same forecast interface), without covariates.
"""

from __future__ import annotations

import importlib.util
from dataclasses import replace
from typing import Any

from sapheneia.config import ModelConfig
from sapheneia.errors import ModelUnavailable
from sapheneia.models.timesfm_2p5 import TimesFM25Adapter


class TimesFM30Adapter(TimesFM25Adapter):
    capabilities = replace(
        TimesFM25Adapter.capabilities, covariates=False, licence="non-commercial"
    )
    default_checkpoint = "google/timesfm-3.0-pytorch"

    def __init__(self, config: ModelConfig) -> None:
        super().__init__(config)
        self.capabilities = replace(self.capabilities, covariates=False, licence="non-commercial")

    def model_class(self) -> Any:
        from timesfm3 import TimesFM3Torch

        return TimesFM3Torch

    def load(self) -> None:
        if not self.config.licence_acknowledged:
            raise ModelUnavailable(
                f"the TimesFM-3.0 weights are licensed for non-commercial use only; set "
                f"`licence_acknowledged: true` in the config of '{self.config.id}' to accept the "
                "licence and serve it"
            )
        if importlib.util.find_spec("timesfm3") is None:
            raise ModelUnavailable(
                f"model '{self.config.id}' needs the package timesfm3, which this server does not "
                "have (timesfm imports it as an optional extra); install timesfm3 into the server's "
                "environment"
            )
        super().load()
