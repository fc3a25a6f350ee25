"""Random-weight Chronos checkpoints, written through the library's own ``save_pretrained``.

They have the layout of the published ``amazon/chronos-bolt-*`` and ``amazon/chronos-2`` checkpoints
(``config.json`` with ``chronos_pipeline_class`` and ``chronos_config``, ``model.safetensors``), so
``BaseChronosPipeline.from_pretrained`` loads them through the same code path as the real weights.
The tiny ones (a few kilobytes) are for tests; the full-size ones (T5-base dimensions, as the
published base models) are for benchmarks, where only the cost of a forward pass matters.
"""

from __future__ import annotations

from pathlib import Path

from sapheneia.tasks import DECILES

# The published checkpoints' own quantile heads: Bolt's are the deciles, Chronos-2 adds the tails.
QUANTILES_BOLT = list(DECILES)
QUANTILES_CHRONOS_2 = [0.01, 0.05, *QUANTILES_BOLT, 0.95, 0.99]


# T5-base, the size of chronos-bolt-base and of Chronos-2 (d_model, d_kv, d_ff, layers, heads).
BASE = {"d_model": 768, "d_kv": 64, "d_ff": 3072, "num_layers": 12, "num_heads": 12}
TINY = {"d_model": 16, "d_kv": 4, "d_ff": 32, "num_layers": 1, "num_heads": 2}


def write_tiny_chronos_bolt(directory: Path, *, seed: int = 0) -> Path:
    """Write a Chronos-Bolt checkpoint (context 64, prediction length 8) into ``directory``."""
    return _write_chronos_bolt(directory, TINY, context=64, prediction=8, patch=4, seed=seed)


def write_random_chronos_bolt_base(directory: Path, *, seed: int = 0) -> Path:
    """Write a Chronos-Bolt checkpoint of chronos-bolt-base's size (about 200M parameters; context
    2048, prediction length 64, patches of 16) with random weights."""
    return _write_chronos_bolt(directory, BASE, context=2048, prediction=64, patch=16, seed=seed)


def _write_chronos_bolt(
    directory: Path, dims: dict[str, int], *, context: int, prediction: int, patch: int, seed: int
) -> Path:
    import torch
    from chronos.chronos_bolt import ChronosBoltModelForForecasting
    from transformers import T5Config

    # from_dict: T5Config declares only T5 fields; Chronos keeps its own as extra attributes.
    config = T5Config.from_dict(
        {
            **dims,
            "num_decoder_layers": dims["num_layers"],
            "dropout_rate": 0.0,
            "initializer_factor": 0.05,
            "decoder_start_token_id": 0,
            "pad_token_id": 0,
            "eos_token_id": 1,
            "chronos_pipeline_class": "ChronosBoltPipeline",
            "chronos_config": {
                "context_length": context,
                "prediction_length": prediction,
                "input_patch_size": patch,
                "input_patch_stride": patch,
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
    dims = {**TINY, "num_layers": 2}
    return _write_chronos_2(directory, dims, context=128, patch=4, patches=4, seed=seed)


def write_random_chronos_2(directory: Path, *, seed: int = 0) -> Path:
    """Write a Chronos-2 checkpoint of the published size (T5-base dimensions; context 8192,
    patches of 16, up to 64 output patches) with random weights."""
    return _write_chronos_2(directory, BASE, context=8192, patch=16, patches=64, seed=seed)


def _write_chronos_2(
    directory: Path, dims: dict[str, int], *, context: int, patch: int, patches: int, seed: int
) -> Path:
    import torch
    from chronos.chronos2 import Chronos2CoreConfig, Chronos2Model

    config = Chronos2CoreConfig(
        **dims,
        dropout_rate=0.0,
        initializer_factor=0.05,
        chronos_pipeline_class="Chronos2Pipeline",
        chronos_config={
            "context_length": context,
            "input_patch_size": patch,
            "input_patch_stride": patch,
            "output_patch_size": patch,
            "max_output_patches": patches,
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
