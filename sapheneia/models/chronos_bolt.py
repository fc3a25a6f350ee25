"""Chronos-Bolt (``amazon/chronos-bolt-{tiny,mini,small,base}``) through ``chronos-forecasting``.

One adapter serves every size; the config's ``checkpoint`` picks the weights. Each series is forecast
on its own (Bolt has no cross-series attention), so batching callers together changes nothing.
The loader here is shared with the Chronos-2 adapter.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np

from sapheneia.config import ModelConfig
from sapheneia.errors import ModelUnavailable
from sapheneia.models.base import Capabilities, ModelAdapter, NativeForecast
from sapheneia.models.checkpoints import resolve_checkpoint
from sapheneia.tasks import DECILES, ForecastTask

if TYPE_CHECKING:
    from chronos import BaseChronosPipeline

BOLT_QUANTILES = DECILES


def torch_device(config: ModelConfig) -> str:
    """``auto`` -> ``cuda`` when a GPU is visible, else ``cpu``."""
    import torch

    if config.device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return config.device


def load_chronos_pipeline(config: ModelConfig, default_checkpoint: str) -> BaseChronosPipeline:
    """Resolve the weights and load them with ``BaseChronosPipeline.from_pretrained``.

    On CPU the weights are always float32: bfloat16 matmuls there are slow and lose accuracy.
    Raises ``ModelUnavailable`` (with the fix) when the package or the weights are missing.
    """
    try:
        import torch
        from chronos import BaseChronosPipeline
    except ImportError as error:
        raise ModelUnavailable(
            f"model '{config.id}' needs the chronos extra: pip install 'sapheneia[chronos]'"
        ) from error
    from sapheneia.settings import get_settings

    checkpoint = config.checkpoint or default_checkpoint
    directory = resolve_checkpoint(config.id, checkpoint, get_settings().model_dir)
    device = torch_device(config)
    dtype = torch.float32 if device == "cpu" else getattr(torch, config.dtype)
    try:
        pipeline = BaseChronosPipeline.from_pretrained(directory, device_map=device, dtype=dtype)
    except (OSError, ValueError, AssertionError) as error:
        # The checkpoint exists but is not a Chronos model (wrong folder, partial download). The
        # message leaves out the checkpoint: it may be a server path.
        raise ModelUnavailable(
            f"weights for '{config.id}' are not a loadable Chronos checkpoint "
            f"({type(error).__name__}); point `checkpoint:` at a complete copy of {default_checkpoint}"
        ) from error
    pipeline.model.eval()
    return pipeline


class ChronosPipelineAdapter(ModelAdapter):
    """Loading shared by the Chronos families: one pipeline per replica, whose own context length
    and quantile levels refine the capabilities once it is loaded."""

    default_checkpoint: str
    pipeline: Any = None

    def load(self) -> None:
        if self.pipeline is None:
            self.pipeline = load_chronos_pipeline(self.config, self.default_checkpoint)
            self.capabilities = replace(
                self.capabilities,
                max_context=min(
                    self.capabilities.max_context or self.pipeline.model_context_length,
                    self.pipeline.model_context_length,
                ),
                native_quantiles=tuple(self.pipeline.quantiles),
            )
        super().load()

    def unload(self) -> None:
        self.pipeline = None
        super().unload()

    def loaded_pipeline(self) -> Any:
        if self.pipeline is None:
            raise ModelUnavailable(f"model '{self.name}' is not loaded; initialise it first")
        return self.pipeline


class ChronosBoltAdapter(ChronosPipelineAdapter):
    """Chronos-Bolt: univariate, quantiles 0.1-0.9, context up to 2048, 64 steps per pass.

    Options: ``max_horizon`` (default 512; beyond 64 steps the pipeline rolls its own quantiles
    forward), ``batch_size`` (series per forward pass, default 256).
    """

    default_checkpoint = "amazon/chronos-bolt-base"

    def __init__(self, config: ModelConfig) -> None:
        super().__init__(config)
        self.capabilities = Capabilities(
            max_context=int(config.options.get("max_context", 2048)),
            max_horizon=int(config.options.get("max_horizon", 512)),
            covariates=False,
            native_quantiles=BOLT_QUANTILES,
            licence="Apache-2.0",
            needs_weights=True,
        )
        self.batch_size = int(config.options.get("batch_size", 256))

    def _predict(
        self, tasks: Sequence[ForecastTask], levels: tuple[float, ...]
    ) -> list[NativeForecast]:
        import torch

        pipeline = self.loaded_pipeline()
        native = list(pipeline.quantiles)
        horizon = tasks[0].horizon
        forecasts: list[NativeForecast] = []
        for start in range(0, len(tasks), self.batch_size):
            chunk = tasks[start : start + self.batch_size]
            contexts = [torch.as_tensor(task.context, dtype=torch.float32) for task in chunk]
            # quantiles: (n_series, horizon, n_levels); mean: (n_series, horizon)
            quantiles, mean = pipeline.predict_quantiles(
                contexts, prediction_length=horizon, quantile_levels=native
            )
            forecasts.extend(
                NativeForecast(
                    mean=mean[i].numpy().astype(np.float64),
                    levels=tuple(native),
                    values=quantiles[i].numpy().T.astype(np.float64),
                )
                for i in range(len(chunk))
            )
        return forecasts
