"""Random-weight checkpoints in the layouts real ones use, loaded by the same code as real weights.

TimesFM-2.0 and 3.0 are built small (2 layers, width 32) from their config objects. TimesFM-2.5's architecture is
fixed by the ``timesfm`` package, so its checkpoint is the full 200M model with random weights,
stored in bfloat16 (~460 MB, a few seconds) and loaded into float32 like any other.
"""

from __future__ import annotations

from pathlib import Path

# Original ``timesfm`` (PyTorch) names for transformers' ones: the inverse of the 2.0 loader's map.
_TO_ORIGINAL = (
    ("decoder.input_ff_layer.input_layer.", "input_ff_layer.hidden_layer.0."),
    ("decoder.input_ff_layer.", "input_ff_layer."),
    ("decoder.freq_emb.", "freq_emb."),
    ("horizon_ff_layer.input_layer.", "horizon_ff_layer.hidden_layer.0."),
    ("decoder.layers.", "stacked_transformer.layers."),
)


def tiny_timesfm_2p0(seed: int = 0, context_length: int = 256):  # type: ignore[no-untyped-def]
    """A small random ``TimesFmModelForPrediction`` (2 layers, width 32, 128-step output patch)."""
    import torch
    from transformers import TimesFmConfig, TimesFmModelForPrediction

    torch.manual_seed(seed)
    config = TimesFmConfig(
        context_length=context_length,
        num_hidden_layers=2,
        hidden_size=32,
        intermediate_size=32,
        head_dim=8,
        num_attention_heads=4,
    )
    return TimesFmModelForPrediction(config).eval()


def write_tiny_timesfm_2p0(directory: Path, seed: int = 0) -> Path:
    """Write a tiny TimesFM-2.0 in transformers' layout (config.json + model.safetensors)."""
    directory = Path(directory)
    tiny_timesfm_2p0(seed).save_pretrained(directory)
    return directory


def write_tiny_timesfm_2p0_original(directory: Path, seed: int = 0) -> Path:
    """Write the same tiny TimesFM-2.0 in the original layout (``torch_model.ckpt``, fused qkv)."""
    import torch

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    state: dict[str, torch.Tensor] = {}
    qkv: dict[str, list[torch.Tensor]] = {}
    for key, tensor in tiny_timesfm_2p0(seed).state_dict().items():
        for new, old in _TO_ORIGINAL:
            if key.startswith(new):
                key = old + key[len(new) :]
                break
        for part in ("q_proj", "k_proj", "v_proj"):
            if f".{part}." in key:
                qkv.setdefault(key.replace(part, "qkv_proj"), []).append(tensor)
                break
        else:
            state[key] = tensor
    state.update({key: torch.cat(parts, dim=0) for key, parts in qkv.items()})
    torch.save(state, directory / "torch_model.ckpt")
    return directory


def write_random_timesfm_2p5(directory: Path, seed: int = 0) -> Path:
    """Write a full-size (200M) random-weight TimesFM-2.5 through the package's own
    ``save_pretrained``: the package fixes the architecture, so it cannot be made small."""
    import torch
    from timesfm import TimesFM_2p5_200M_torch

    directory = Path(directory)
    torch.manual_seed(seed)
    model = TimesFM_2p5_200M_torch(torch_compile=False)
    model.model.to(torch.bfloat16)  # halves the file; loading casts back to the model's float32
    model.save_pretrained(directory)
    return directory


def write_tiny_timesfm_3p0(directory: Path, seed: int = 0) -> Path:
    """Write a small random-weight TimesFM-3.0 (2 layers, width 32) through ``save_pretrained``."""
    import torch
    from timesfm3 import TimesFM3Torch
    from timesfm3.torch import configs

    directory = Path(directory)
    torch.manual_seed(seed)
    model = TimesFM3Torch(
        residual_block_config=configs.ResidualBlockConfig(
            hidden_dims=32, output_dims=32, use_bias=False, activation="relu"
        ),
        transformer_config=configs.StackedTransformersConfig(
            num_layers=2,
            transformer=configs.TransformerConfig(
                model_dims=32,
                hidden_dims=32,
                num_heads=4,
                attention_norm="rms",
                feedforward_norm="rms",
                qk_norm="rms",
                use_rope_seq=True,
                use_rope_var=True,
                use_bias=False,
                ff_activation="relu",
                deterministic=True,
            ),
        ),
    )
    model.save_pretrained(directory)
    return directory
