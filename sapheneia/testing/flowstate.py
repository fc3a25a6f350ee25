"""A tiny random-weight FlowState checkpoint, written through granite-tsfm's ``save_pretrained``.

Same layout as ``ibm-granite/granite-timeseries-flowstate-r1`` (``config.json`` +
``model.safetensors``), a few thousand parameters instead of 9.1M.
"""

from __future__ import annotations

from pathlib import Path


def write_tiny_flowstate(directory: Path, *, seed: int = 0) -> Path:
    """Write a FlowState checkpoint (context 256, decoder patch 24) into ``directory``."""
    import torch
    from tsfm_public.models.flowstate import FlowStateConfig, FlowStateForPrediction

    config = FlowStateConfig(
        context_length=256,
        embedding_feature_dim=16,
        encoder_num_layers=1,
        encoder_state_dim=16,
        encoder_num_hippo_blocks=2,
        decoder_patch_len=24,
        decoder_dim=16,
    )
    torch.manual_seed(seed)
    model = FlowStateForPrediction(config).eval()
    directory.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(directory)
    return directory
