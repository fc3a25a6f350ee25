"""FlowState (``ibm-granite/granite-timeseries-flowstate-r1``) through ``granite-tsfm``.

FlowState is an SSM whose time step scales with the data's sampling rate: the scale factor comes from
the series' frequency through the library's own ``get_fixed_factor``, which speaks the older pandas
aliases (``H``, ``T``, ``M``), so the task's frequency is translated to those first. Univariate;
nine native quantiles (0.1-0.9); the mean is the model's own ``prediction_outputs``.

granite-tsfm 0.3.11 pins ``torch<2.12`` while this project pins torch 2.13, so it is installed with
``--no-deps``; without it ``load`` reports the model unavailable with that command.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from sapheneia.config import ModelConfig
from sapheneia.errors import InvalidInput, ModelUnavailable
from sapheneia.models.base import Capabilities, ModelAdapter, NativeForecast
from sapheneia.models.checkpoints import resolve_checkpoint
from sapheneia.tasks import DECILES, ForecastTask

FLOWSTATE_QUANTILES = DECILES
INSTALL = (
    "pip install --no-deps granite-tsfm==0.3.11 && pip install datasets deprecated "
    "(granite-tsfm pins an older torch than this server, so its dependencies are not resolved)"
)


def flowstate_freq(freq: str) -> str:
    """A pandas frequency as the alias ``get_fixed_factor`` knows: ``h`` -> ``H``, ``15min`` -> ``15T``.

    Raises ``InvalidInput`` for a frequency FlowState has no scale factor for.
    """
    try:
        offset = pd.tseries.frequencies.to_offset(freq)
    except ValueError as error:
        raise InvalidInput(f"frequency '{freq}' is not a pandas frequency") from error
    n = offset.n
    kind = type(offset).__name__
    if kind == "Second" and n in (4, 10):
        return f"{n}S"
    if kind == "Minute":
        return "T" if n == 1 else f"{n}T"
    if kind == "Hour":
        return {1: "H", 6: "6H"}.get(n, f"{60 * n}T")
    if kind == "Day":
        return "D" if n == 1 else f"{n}D"
    if kind == "Week":
        return "W"
    if kind in {"MonthEnd", "MonthBegin", "BusinessMonthEnd", "BusinessMonthBegin"}:
        return "M"
    if kind in {"QuarterEnd", "QuarterBegin", "BQuarterEnd", "BQuarterBegin"}:
        return "Q"
    if kind in {"YearEnd", "YearBegin", "BYearEnd", "BYearBegin"}:
        return "A"
    raise InvalidInput(
        f"FlowState has no scale factor for frequency '{freq}'; resample the data to minutes, "
        "hours, days, weeks, months, quarters or years, or set `options.scale_factor` in the model "
        "config"
    )


class FlowStateAdapter(ModelAdapter):
    """FlowState forecaster.

    Options: ``scale_factor`` (fixed, overrides the frequency's), ``domain`` (passed to
    ``get_fixed_factor``: "Transport", "Healthcare" or "Sales" give daily data a weekly cycle),
    ``max_horizon`` (default 1024), ``batch_size`` (default 256).
    """

    default_checkpoint = "ibm-granite/granite-timeseries-flowstate-r1"

    def __init__(self, config: ModelConfig) -> None:
        super().__init__(config)
        self.capabilities = Capabilities(
            # The model itself reads at most context_length / scale_factor steps, capped at 16k.
            max_context=16 * 1024,
            max_horizon=int(config.options.get("max_horizon", 1024)),
            covariates=False,
            native_quantiles=FLOWSTATE_QUANTILES,
            licence="Apache-2.0",
            needs_weights=True,
        )
        self.batch_size = int(config.options.get("batch_size", 256))
        self.model: Any = None
        self.device = "cpu"

    def load(self) -> None:
        if self.model is None:
            self.model = self._load_model()
        super().load()

    def _load_model(self) -> Any:
        try:
            import torch
            from tsfm_public.models.flowstate import FlowStateForPrediction
        except ImportError as error:
            raise ModelUnavailable(
                f"model '{self.name}' needs granite-tsfm (the flowstate extra): {INSTALL}"
            ) from error
        from sapheneia.models.chronos_bolt import torch_device
        from sapheneia.settings import get_settings

        checkpoint = self.config.checkpoint or self.default_checkpoint
        directory = resolve_checkpoint(self.name, checkpoint, get_settings().model_dir)
        self.device = torch_device(self.config)
        try:
            model = FlowStateForPrediction.from_pretrained(directory)
        except (OSError, ValueError) as error:
            raise ModelUnavailable(
                f"weights for '{self.name}' are not a loadable FlowState checkpoint "
                f"({type(error).__name__}); point `checkpoint:` at a complete copy of "
                f"{self.default_checkpoint}"
            ) from error
        return model.to(device=self.device, dtype=torch.float32).eval()

    def unload(self) -> None:
        self.model = None
        super().unload()

    def scale_factor(self, freq: str) -> float:
        fixed = self.config.options.get("scale_factor")
        if fixed is not None:
            return float(fixed)
        from tsfm_public.models.flowstate.utils.utils import get_fixed_factor

        return float(get_fixed_factor(flowstate_freq(freq), self.config.options.get("domain")))

    def _predict(
        self, tasks: Sequence[ForecastTask], levels: tuple[float, ...]
    ) -> list[NativeForecast]:
        if self.model is None:
            raise ModelUnavailable(f"model '{self.name}' is not loaded; initialise it first")
        scale = self.scale_factor(tasks[0].freq)
        # One forward pass per context length: FlowState reads padding as missing values, which
        # would change a series' forecast depending on who else is in the batch.
        by_length: dict[int, list[int]] = defaultdict(list)
        for index, task in enumerate(tasks):
            by_length[len(task.context)].append(index)
        results: dict[int, NativeForecast] = {}
        for indices in by_length.values():
            for start in range(0, len(indices), self.batch_size):
                chunk = indices[start : start + self.batch_size]
                forecasts = self._forward([tasks[i] for i in chunk], scale)
                results.update(zip(chunk, forecasts, strict=True))
        return [results[i] for i in range(len(tasks))]

    def _forward(self, tasks: list[ForecastTask], scale: float) -> list[NativeForecast]:
        import torch

        # past_values: (batch, n_history, 1)
        past = torch.as_tensor(np.stack([task.context for task in tasks]), dtype=torch.float32)
        with torch.no_grad():
            output = self.model(
                past_values=past.unsqueeze(-1).to(self.device),
                scale_factor=scale,
                prediction_length=tasks[0].horizon,
            )
        mean = output.prediction_outputs[..., 0].cpu().numpy()  # (batch, horizon)
        quantiles = output.quantile_outputs[..., 0].cpu().numpy()  # (batch, n_levels, horizon)
        native = tuple(float(q) for q in self.model.config.quantiles)
        return [
            NativeForecast(
                mean=mean[i].astype(np.float64),
                levels=native,
                values=quantiles[i].astype(np.float64),
            )
            for i in range(len(tasks))
        ]
