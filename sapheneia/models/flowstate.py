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
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from sapheneia.errors import InvalidInput, ModelUnavailable
from sapheneia.models.base import Capabilities, NativeForecast
from sapheneia.models.torch_runtime import TorchAdapter, chunks
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


class FlowStateOptions(BaseModel):
    """``options:`` of a FlowState model config."""

    model_config = ConfigDict(extra="forbid")

    scale_factor: float | None = Field(
        default=None, gt=0, description="Fixed scale factor; overrides the one of the frequency."
    )
    domain: str | None = Field(
        default=None,
        description="Passed to get_fixed_factor: 'Transport', 'Healthcare' or 'Sales' give daily "
        "data a weekly cycle.",
    )
    max_horizon: int = Field(default=1024, ge=1, description="Longest horizon served.")
    batch_size: int = Field(default=256, ge=1, description="Series per forward pass.")


class FlowStateAdapter(TorchAdapter):
    """FlowState forecaster; ``self.model`` is granite-tsfm's ``FlowStateForPrediction``."""

    Options = FlowStateOptions
    options: FlowStateOptions
    requires = ("tsfm_public",)
    extra = "flowstate"
    install = INSTALL
    default_checkpoint = "ibm-granite/granite-timeseries-flowstate-r1"
    # Its S5 layers discretise in complex64, which half precision cannot feed.
    float32 = "always"
    capabilities = Capabilities(
        # The model itself reads at most context_length / scale_factor steps, capped at 16k.
        max_context=16 * 1024,
        covariates=False,
        native_quantiles=FLOWSTATE_QUANTILES,
    )

    def _load_weights(self, checkpoint: Path | None) -> Any:
        from tsfm_public.models.flowstate import FlowStateForPrediction

        try:
            model = FlowStateForPrediction.from_pretrained(checkpoint)
        except (OSError, ValueError) as error:
            raise ModelUnavailable(
                f"weights for '{self.name}' are not a loadable FlowState checkpoint "
                f"({type(error).__name__}); point `checkpoint:` at a complete copy of "
                f"{self.default_checkpoint}"
            ) from error
        return model.to(device=self.device, dtype=self.dtype).eval()

    def scale_factor(self, freq: str) -> float:
        if self.options.scale_factor is not None:
            return self.options.scale_factor
        from tsfm_public.models.flowstate.utils.utils import get_fixed_factor

        return float(get_fixed_factor(flowstate_freq(freq), self.options.domain))

    def _predict(
        self, tasks: Sequence[ForecastTask], levels: tuple[float, ...]
    ) -> list[NativeForecast]:
        scale = self.scale_factor(tasks[0].freq)
        # One forward pass per context length: FlowState reads padding as missing values, which
        # would change a series' forecast depending on who else is in the batch.
        by_length: dict[int, list[int]] = defaultdict(list)
        for index, task in enumerate(tasks):
            by_length[len(task.context)].append(index)
        results: dict[int, NativeForecast] = {}
        for indices in by_length.values():
            for chunk in chunks(indices, self.options.batch_size):
                forecasts = self._forward([tasks[i] for i in chunk], scale)
                results.update(zip(chunk, forecasts, strict=True))
        return [results[i] for i in range(len(tasks))]

    def _forward(self, tasks: list[ForecastTask], scale: float) -> list[NativeForecast]:
        import torch

        # past_values: (batch, n_history, 1)
        past = torch.as_tensor(np.stack([task.context for task in tasks]), dtype=torch.float32)
        with self.inference():
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
