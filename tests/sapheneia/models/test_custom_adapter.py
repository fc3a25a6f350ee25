"""The worked example of docs/custom-adapters.md, created from config like any other model and
checked against statsforecast's own random walk with drift."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from statsforecast.models import RandomWalkWithDrift

from sapheneia.config import ModelConfig
from sapheneia.errors import InvalidInput
from sapheneia.models import create_adapter, validate_config
from sapheneia.tasks import ForecastResult, ForecastTask

HORIZON = 6


def make_task(values: np.ndarray, quantiles: tuple[float, ...]) -> ForecastTask:
    index = pd.date_range("2024-01-01", periods=len(values) + HORIZON, freq="W-SUN")
    return ForecastTask(
        series_id="s",
        context=np.asarray(values, dtype=float),
        horizon=HORIZON,
        quantiles=quantiles,
        freq="W-SUN",
        timestamps=index[: len(values)],
        future_timestamps=index[len(values) :],
    )


def test_custom_adapter_from_config_matches_statsforecast_drift() -> None:
    adapter = create_adapter(
        ModelConfig(id="my-drift", adapter="examples.custom_adapter:DriftAdapter")
    )
    adapter.load()
    values = 50 + np.cumsum(np.random.default_rng(3).normal(0.5, 2.0, size=40))

    (result,) = adapter.forecast([make_task(values, (0.1, 0.9))])

    assert isinstance(result, ForecastResult)
    expected = RandomWalkWithDrift().fit(values).predict(HORIZON, level=[80])
    np.testing.assert_allclose(result.mean, expected["mean"], rtol=1e-12)
    np.testing.assert_allclose(result.quantiles[0.1], expected["lo-80"], rtol=1e-9)
    np.testing.assert_allclose(result.quantiles[0.9], expected["hi-80"], rtol=1e-9)
    np.testing.assert_allclose(result.median, result.mean, rtol=1e-12)
    assert result.interpolated == ()
    assert list(result.future_timestamps) == list(
        pd.date_range("2024-01-01", periods=40 + HORIZON, freq="W-SUN")[40:]
    )


def test_custom_adapter_gets_the_base_class_checks() -> None:
    adapter = create_adapter(
        ModelConfig(
            id="my-drift",
            adapter="examples.custom_adapter:DriftAdapter",
            options={"max_context": 10},
        )
    )
    adapter.load()
    short, long = adapter.forecast(
        [make_task(np.array([1.0]), (0.5,)), make_task(np.arange(100.0), (0.5,))]
    )
    assert getattr(short, "code", None) == "series_too_short"
    assert isinstance(long, ForecastResult)
    np.testing.assert_allclose(long.mean, 99 + np.arange(1, HORIZON + 1))


def test_custom_adapter_options_are_checked_like_the_built_in_ones() -> None:
    config = ModelConfig(
        id="my-drift", adapter="examples.custom_adapter:DriftAdapter", options={"max_contxt": 9}
    )
    with pytest.raises(InvalidInput) as raised:
        validate_config(config)
    assert raised.value.message == (
        "model 'my-drift': unknown option 'max_contxt'. Valid options: max_context"
    )
    unloaded = create_adapter(config.model_copy(update={"options": {}}))
    (outcome,) = unloaded.forecast([make_task(np.arange(10.0), (0.5,))])
    assert getattr(outcome, "code", None) == "model_unavailable"
    assert "is not loaded" in str(outcome)
