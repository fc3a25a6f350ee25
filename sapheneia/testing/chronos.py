"""Tiny random-weight Chronos checkpoints, written through the library's own ``save_pretrained``.

They have the layout of the published ``amazon/chronos-bolt-*`` and ``amazon/chronos-2`` checkpoints
(``config.json`` with ``chronos_pipeline_class`` and ``chronos_config``, ``model.safetensors``), so
``BaseChronosPipeline.from_pretrained`` loads them through the same code path as the real weights;
only the sizes are cut down to a few kilobytes.
"""

from __future__ import annotations

from pathlib import Path

from sapheneia.tasks import DECILES

# The published checkpoints' own quantile heads: Bolt's are the deciles, Chronos-2 adds the tails.
QUANTILES_BOLT = list(DECILES)
QUANTILES_CHRONOS_2 = [0.01, 0.05, *QUANTILES_BOLT, 0.95, 0.99]


def write_tiny_chronos_bolt(directory: Path, *, seed: int = 0) -> Path:
    """Write a Chronos-Bolt checkpoint (context 64, prediction length 8) into ``directory``."""
    import torch
    from chronos.chronos_bolt import ChronosBoltModelForForecasting
    from transformers import T5Config

    # from_dict: T5Config declares only T5 fields; Chronos keeps its own as extra attributes.
    config = T5Config.from_dict(
        {
            "d_model": 16,
            "d_kv": 4,
            "d_ff": 32,
            "num_layers": 1,
            "num_decoder_layers": 1,
            "num_heads": 2,
            "dropout_rate": 0.0,
            "initializer_factor": 0.05,
            "decoder_start_token_id": 0,
            "pad_token_id": 0,
            "eos_token_id": 1,
            "chronos_pipeline_class": "ChronosBoltPipeline",
            "chronos_config": {
                "context_length": 64,
                "prediction_length": 8,
                "input_patch_size": 4,
                "input_patch_stride": 4,
                "quantiles": QUANTILES_BOLT,
                "use_reg_token": True,
            },
            "architectures": ["ChronosBoltModelForForecasting"],
        }
    )
    torch.manual_seed(seed)
    model = ChronosBoltModelForForecasting(config).eval()
    directory.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(directory)
    return directory


def write_tiny_chronos_2(directory: Path, *, seed: int = 0) -> Path:
    """Write a Chronos-2 checkpoint (context 128, 4 output patches of 4 steps) into ``directory``."""
    import torch
    from chronos.chronos2 import Chronos2CoreConfig, Chronos2Model

    config = Chronos2CoreConfig(
        d_model=16,
        d_kv=4,
        d_ff=32,
        num_layers=2,
        num_heads=2,
        dropout_rate=0.0,
        initializer_factor=0.05,
        chronos_pipeline_class="Chronos2Pipeline",
        chronos_config={
            "context_length": 128,
            "input_patch_size": 4,
            "input_patch_stride": 4,
            "output_patch_size": 4,
            "max_output_patches": 4,
            "quantiles": QUANTILES_CHRONOS_2,
            "use_reg_token": True,
            "use_arcsinh": True,
        },
        architectures=["Chronos2Model"],
    )
    torch.manual_seed(seed)
    model = Chronos2Model(config).eval()
    directory.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(directory)
    return directory
