"""What the Chronos families share: one ``chronos-forecasting`` pipeline per replica, loaded through
``BaseChronosPipeline.from_pretrained``, whose own context length and quantile levels refine the
capabilities once it is loaded.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from sapheneia.errors import ModelUnavailable
from sapheneia.models.torch_runtime import TorchAdapter


class ChronosPipelineAdapter(TorchAdapter):
    """Base of the Chronos-Bolt and Chronos-2 adapters; ``self.model`` is the pipeline."""

    requires = ("chronos",)
    extra = "chronos"
    # bfloat16 matmuls on CPU are slow and lose accuracy.
    float32 = "on cpu"

    def _load_weights(self, checkpoint: Path | None) -> Any:
        from chronos import BaseChronosPipeline

        try:
            pipeline = BaseChronosPipeline.from_pretrained(
                checkpoint, device_map=str(self.device), dtype=self.dtype
            )
        except (OSError, ValueError, AssertionError) as error:
            # The checkpoint exists but is not a Chronos model (wrong folder, partial download). The
            # message leaves out the checkpoint: it may be a server path.
            raise ModelUnavailable(
                f"weights for '{self.name}' are not a loadable Chronos checkpoint "
                f"({type(error).__name__}); point `checkpoint:` at a complete copy of "
                f"{self.default_checkpoint}"
            ) from error
        pipeline.model.eval()
        context = pipeline.model_context_length
        self.capabilities = replace(
            self.capabilities,
            max_context=min(self.capabilities.max_context or context, context),
            native_quantiles=tuple(pipeline.quantiles),
        )
        return pipeline
