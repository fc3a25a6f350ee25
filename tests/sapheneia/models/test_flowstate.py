"""FlowState adapter on a tiny random-weight checkpoint written by granite-tsfm itself."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sapheneia.config import ModelConfig
from sapheneia.errors import InvalidInput, ModelUnavailable
from sapheneia.models import create_adapter
from sapheneia.models.flowstate import flowstate_freq
from sapheneia.tasks import ForecastResult, ForecastTask

HORIZON = 30
SERIES_A = 20 + 10 * np.sin(np.arange(100) / 3)
SERIES_B = 5 + np.cos(np.arange(60) / 5)


def make_task(
    series_id: str, values: np.ndarray, *, freq: str = "D", group: str = "caller-a"
) -> ForecastTask:
    index = pd.date_range("2024-01-01", periods=len(values) + HORIZON, freq=freq)
    return ForecastTask(
        series_id=series_id,
        context=np.asarray(values, dtype=float),
        horizon=HORIZON,
        quantiles=(0.1, 0.5, 0.9),
        freq=freq,
        timestamps=index[: len(values)],
        future_timestamps=index[len(values) :],
        group=group,
    )


def only(results: Sequence[ForecastResult | Exception]) -> list[ForecastResult]:
    """The results, failing the test on any error in them."""
    assert all(isinstance(result, ForecastResult) for result in results), results
    return [result for result in results if isinstance(result, ForecastResult)]


@pytest.mark.parametrize(
    ("freq", "alias"),
    [
        ("h", "H"),
        ("6h", "6H"),
        ("2h", "120T"),
        ("15min", "15T"),
        ("D", "D"),
        ("W-SUN", "W"),
        ("MS", "M"),
        ("ME", "M"),
        ("QS-OCT", "Q"),
        ("YE", "A"),
    ],
)
def test_frequency_is_translated_to_the_alias_the_library_knows(freq: str, alias: str) -> None:
    assert flowstate_freq(freq) == alias


def test_frequency_without_a_scale_factor_says_what_to_do() -> None:
    with pytest.raises(InvalidInput, match=r"set `options\.scale_factor`"):
        flowstate_freq("B")


def test_missing_library_makes_the_model_unavailable_with_the_install_command(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "tsfm_public", None)
    monkeypatch.setitem(sys.modules, "tsfm_public.models.flowstate", None)
    adapter = create_adapter(ModelConfig(id="flowstate", adapter="flowstate"))
    with pytest.raises(ModelUnavailable, match=r"pip install --no-deps granite-tsfm==0\.3\.11"):
        adapter.load()


tsfm = pytest.importorskip("tsfm_public.models.flowstate", reason="granite-tsfm not installed")


@pytest.fixture(scope="module")
def flowstate(tmp_path_factory: pytest.TempPathFactory):
    from sapheneia.testing.flowstate import write_tiny_flowstate

    directory = write_tiny_flowstate(tmp_path_factory.mktemp("flowstate"))
    adapter = create_adapter(
        ModelConfig(id="flowstate", adapter="flowstate", checkpoint=str(directory))
    )
    adapter.load()
    return adapter


def model_alone(adapter, values: np.ndarray, scale: float) -> tuple[np.ndarray, np.ndarray]:
    """The model's own quantiles ``(n_levels, horizon)`` and mean for one series, alone."""
    import torch

    past = torch.tensor(values, dtype=torch.float32).reshape(1, -1, 1)
    with torch.no_grad():
        output = adapter.model(past_values=past, scale_factor=scale, prediction_length=HORIZON)
    return output.quantile_outputs[0, ..., 0].numpy(), output.prediction_outputs[0, :, 0].numpy()


def test_matches_the_model_alone_and_batched_with_another_caller(flowstate) -> None:
    from tsfm_public.models.flowstate.utils.utils import get_fixed_factor

    expected, expected_mean = model_alone(flowstate, SERIES_A, get_fixed_factor("D"))
    alone = only(flowstate.forecast([make_task("a", SERIES_A)]))[0]
    batched = only(
        flowstate.forecast([make_task("a", SERIES_A), make_task("b", SERIES_B, group="caller-b")])
    )[0]
    for result in (alone, batched):
        np.testing.assert_allclose(result.mean, expected_mean, rtol=1e-6)
        np.testing.assert_allclose(result.quantiles[0.1], expected[0], rtol=1e-6)
        np.testing.assert_allclose(result.quantiles[0.9], expected[8], rtol=1e-6)
        np.testing.assert_allclose(result.median, expected[4], rtol=1e-6)
        assert result.interpolated == ()
    # Different lengths never share a forward pass, so batching is exact.
    np.testing.assert_array_equal(batched.median, alone.median)


def test_scale_factor_follows_the_frequency_unless_fixed(flowstate, tmp_path: Path) -> None:
    daily = only(flowstate.forecast([make_task("a", SERIES_A, freq="D")]))[0]
    hourly = only(flowstate.forecast([make_task("a", SERIES_A, freq="h")]))[0]
    assert not np.allclose(daily.median, hourly.median)

    fixed = create_adapter(
        ModelConfig(
            id="flowstate",
            adapter="flowstate",
            checkpoint=flowstate.config.checkpoint,
            options={"scale_factor": 1.0},
        )
    )
    fixed.load()
    fixed_daily = only(fixed.forecast([make_task("a", SERIES_A, freq="D")]))[0]
    np.testing.assert_allclose(fixed_daily.median, hourly.median, rtol=1e-6)


def test_unsupported_frequency_fails_only_that_task(flowstate) -> None:
    (outcome,) = flowstate.forecast([make_task("a", SERIES_A, freq="B")])
    assert isinstance(outcome, InvalidInput)
    assert "options.scale_factor" in outcome.message
