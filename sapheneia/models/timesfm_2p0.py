"""TimesFM-2.0 (500M) through transformers' ``TimesFmModelForPrediction``.

The transformers model forecasts one output patch (128 steps); longer horizons are decoded
autoregressively, feeding the mean forecast back as context, as the original ``timesfm`` library did.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sapheneia.errors import ModelUnavailable
from sapheneia.models.base import Capabilities, NativeForecast
from sapheneia.models.timesfm_covariates import (
    TIMESFM_LEVELS,
    TimesFMXRegOptions,
    forecast_by_group,
    require_xreg,
    to_native,
    xreg_forecast,
    xreg_forecaster,
)
from sapheneia.models.torch_runtime import TorchAdapter, chunks
from sapheneia.tasks import ForecastTask

ORIGINAL_WEIGHTS = "torch_model.ckpt"

# Original ``timesfm`` (PyTorch) key prefixes -> transformers', as transformers'
# ``convert_timesfm_orignal_to_hf.py`` maps them; the fused qkv projection is split separately.
_ORIGINAL_PREFIXES = (
    ("input_ff_layer.hidden_layer.0.", "decoder.input_ff_layer.input_layer."),
    ("input_ff_layer.", "decoder.input_ff_layer."),
    ("freq_emb.", "decoder.freq_emb."),
    ("horizon_ff_layer.hidden_layer.0.", "horizon_ff_layer.input_layer."),
    ("stacked_transformer.layers.", "decoder.layers."),
)


def frequency_indicator(freq: str) -> int:
    """TimesFM's frequency input: 0 up to daily, 1 weekly to monthly, 2 quarterly and longer.

    Judged by the mean spacing of the pandas frequency over a year, so multiples ('7D', '2MS') and
    anchored offsets ('W-SUN', 'QE-DEC') land where the TimesFM paper puts them.
    """
    try:
        steps = pd.date_range("2001-01-01", periods=13, freq=freq)
    except ValueError:
        return 0
    days = float(np.mean(np.diff(steps.asi8))) / 86_400e9
    if days < 7:
        return 0
    return 1 if days < 80 else 2


def convert_original_state_dict(state: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    """A ``torch_model.ckpt`` state dict as a ``TimesFmConfig`` and transformers-named tensors.

    The sizes come from the tensor shapes (the head size from the per-dimension query scaling).
    """
    from transformers import TimesFmConfig

    try:
        hidden = state["freq_emb.weight"].shape[1]
        head_dim = state["stacked_transformer.layers.0.self_attn.scaling"].shape[0]
        config = TimesFmConfig(
            patch_length=state["input_ff_layer.hidden_layer.0.weight"].shape[1] // 2,
            horizon_length=state["horizon_ff_layer.output_layer.weight"].shape[0]
            // (1 + len(TIMESFM_LEVELS)),
            freq_size=state["freq_emb.weight"].shape[0],
            num_hidden_layers=1
            + max(
                int(m[1])
                for k in state
                if (m := re.match(r"stacked_transformer\.layers\.(\d+)", k))
            ),
            hidden_size=hidden,
            intermediate_size=state["stacked_transformer.layers.0.mlp.gate_proj.weight"].shape[0],
            head_dim=head_dim,
            num_attention_heads=hidden // head_dim,
            use_positional_embedding=False,
        )
    except (KeyError, IndexError, ValueError) as error:
        raise ModelUnavailable(
            f"{ORIGINAL_WEIGHTS} is not a TimesFM-2.0 checkpoint ({type(error).__name__}: {error})"
        ) from error
    converted: dict[str, Any] = {}
    for key, tensor in state.items():
        for old, new in _ORIGINAL_PREFIXES:
            if key.startswith(old):
                key = new + key[len(old) :]
                break
        if ".qkv_proj." in key:
            for name, part in zip(("q", "k", "v"), tensor.chunk(3, dim=0), strict=True):
                converted[key.replace("qkv_proj", f"{name}_proj")] = part
        else:
            converted[key] = tensor
    return config, converted


def load_original_layout(path: Path, context_length: int) -> Any:
    """A ``TimesFmModelForPrediction`` from an original-layout ``torch_model.ckpt``."""
    import torch
    from transformers import TimesFmModelForPrediction

    state = torch.load(path, map_location="cpu", weights_only=True)
    config, converted = convert_original_state_dict(state)
    config.context_length = context_length
    model = TimesFmModelForPrediction(config)
    model.load_state_dict(converted, strict=True)
    return model


class TimesFM20Adapter(TorchAdapter):
    """Google TimesFM-2.0 via transformers; XReg covariates via the timesfm package.

    ``self.model`` is transformers' ``TimesFmModelForPrediction``.
    """

    Options = TimesFMXRegOptions
    options: TimesFMXRegOptions
    requires = ("transformers",)
    install = "pip install 'transformers>=5,<6'"
    default_checkpoint = "google/timesfm-2.0-500m-pytorch"
    capabilities = Capabilities(covariates=True, native_quantiles=TIMESFM_LEVELS)

    def _load_weights(self, checkpoint: Path | None) -> Any:
        from transformers import TimesFmModelForPrediction

        assert checkpoint is not None  # default_checkpoint is set
        model: Any
        if (checkpoint / "config.json").is_file():
            model = TimesFmModelForPrediction.from_pretrained(
                checkpoint, dtype=self.dtype, local_files_only=True
            )
        elif (checkpoint / ORIGINAL_WEIGHTS).is_file():
            model = load_original_layout(checkpoint / ORIGINAL_WEIGHTS, self.options.max_context)
        else:
            raise ModelUnavailable(
                f"the weights directory of '{self.name}' holds neither config.json + "
                f"model.safetensors nor {ORIGINAL_WEIGHTS}; run `sapheneia pull {self.name}`"
            )
        self.capabilities = replace(
            self.capabilities,
            max_context=min(self.options.max_context, model.config.context_length),
        )
        return model.to(device=self.device, dtype=self.dtype).eval()

    def _predict(
        self, tasks: Sequence[ForecastTask], levels: tuple[float, ...]
    ) -> list[NativeForecast]:
        return forecast_by_group(tasks, self._forecast_plain, self._forecast_with_covariates)

    def _forecast_plain(self, tasks: list[ForecastTask]) -> list[NativeForecast]:
        horizon, freq = tasks[0].horizon, frequency_indicator(tasks[0].freq)
        natives: list[NativeForecast] = []
        for chunk in chunks(tasks, self.options.batch_size):
            outputs = self.decode([task.context for task in chunk], freq, horizon)
            natives += [to_native(output) for output in outputs]
        return natives

    def _forecast_with_covariates(self, tasks: list[ForecastTask]) -> list[NativeForecast]:
        require_xreg(self.name)
        freq = frequency_indicator(tasks[0].freq)
        backcast = self.options.xreg_mode == "timesfm + xreg"

        def forecast(horizon: int, inputs: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
            outputs = self.decode(inputs, freq, horizon, backcast=backcast)
            return outputs[..., 0], outputs

        patch_length = self.model.config.patch_length
        model = xreg_forecaster(forecast, tasks[0].horizon, patch_length)
        return xreg_forecast(model, tasks, self.options)

    def decode(
        self, contexts: Sequence[np.ndarray], freq: int, horizon: int, backcast: bool = False
    ) -> np.ndarray:
        """Forecast ``(n, horizon, 10)`` (mean, Q10..Q90) for equal-frequency series in one batch.

        With ``backcast`` the output is prefixed by the model's forecasts over the context after its
        first patch (``return_forecast_on_context``), which "timesfm + xreg" regresses on.
        """
        import torch

        model = self.model
        patch, output_patch = model.config.patch_length, model.config.horizon_length
        max_context = self.capabilities.max_context or model.config.context_length
        history = [torch.as_tensor(np.asarray(c, dtype=np.float32)) for c in contexts]
        history = [h.to(device=self.device, dtype=self.dtype) for h in history]
        outputs = []
        with self.inference():
            for step in range(math.ceil(horizon / output_patch)):
                longest = min(max(len(h) for h in history), max_context)
                result = model(
                    past_values=history,
                    freq=[freq] * len(history),
                    forecast_context_len=math.ceil(longest / patch) * patch,
                    return_forecast_on_context=backcast and step == 0,
                )
                full = result.full_predictions
                outputs.append(full)
                mean = full[:, -output_patch:, 0]
                history = [torch.cat([h, m]) for h, m in zip(history, mean, strict=True)]
        forecast = torch.cat(outputs, dim=1).float().cpu().numpy()
        backcast_length = forecast.shape[1] - math.ceil(horizon / output_patch) * output_patch
        return fix_quantile_crossing(forecast[:, : backcast_length + horizon])


def fix_quantile_crossing(forecast: np.ndarray) -> np.ndarray:
    """Order the quantile heads ``(..., 10)`` (mean, Q10..Q90) outward from the median.

    TimesFM-2.0's heads are trained independently and can cross (Q10 above Q30), which would give a
    band whose lower edge is above its upper one. This is the rule the timesfm package applies to
    2.5 (``fix_quantile_crossing``): below the median each level is capped by the one above it,
    above the median each is raised to the one below it. Ordered output is left unchanged.
    """
    fixed = np.array(forecast, copy=True)
    for level in (4, 3, 2, 1):
        fixed[..., level] = np.minimum(fixed[..., level], fixed[..., level + 1])
    for level in (6, 7, 8, 9):
        fixed[..., level] = np.maximum(fixed[..., level], fixed[..., level - 1])
    return fixed
