"""TimesFM-3.0 is opt-in (non-commercial weights); once acknowledged it serves like the library."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
from timesfm3 import TimesFM3Forecaster

from sapheneia.config import ModelConfig
from sapheneia.errors import ModelUnavailable
from sapheneia.models.registry import create_adapter
from sapheneia.tasks import DECILES, ForecastResult
from sapheneia.testing import make_task, write_tiny_timesfm_3p0

LEVELS = DECILES


@pytest.fixture(autouse=True)
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


def config(**fields: object) -> ModelConfig:
    return ModelConfig.model_validate({"id": "timesfm-3.0", "adapter": "timesfm-3.0", **fields})


def test_it_is_unavailable_until_the_licence_is_acknowledged(tmp_path: Path) -> None:
    adapter = create_adapter(config(checkpoint=str(write_tiny_timesfm_3p0(tmp_path))))
    assert adapter.capabilities.licence == "non-commercial"
    assert not adapter.capabilities.covariates
    with pytest.raises(ModelUnavailable, match="licence_acknowledged: true"):
        adapter.load()


def test_an_acknowledged_licence_without_the_package_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "timesfm3" else find_spec(name),
    )
    adapter = create_adapter(config(licence_acknowledged=True))
    with pytest.raises(ModelUnavailable, match="needs the package timesfm3"):
        adapter.load()


def test_a_batch_equals_the_library_forecast_of_each_series_alone(tmp_path: Path) -> None:
    checkpoint = write_tiny_timesfm_3p0(tmp_path)
    adapter = create_adapter(config(checkpoint=str(checkpoint), licence_acknowledged=True))
    adapter.load()
    library = TimesFM3Forecaster.from_pretrained(str(checkpoint), device="cpu")
    rng = np.random.default_rng(0)
    tasks = [
        make_task(f"s{i}", 10 + rng.normal(size=n).cumsum(), 24, quantiles=LEVELS)
        for i, n in enumerate((40, 100, 300))
    ]
    for task, outcome in zip(tasks, adapter.forecast(tasks), strict=True):
        assert isinstance(outcome, ForecastResult), outcome
        expected = library.predict(task.context, 24, return_quantiles=True)
        np.testing.assert_allclose(outcome.mean, expected.forecast, rtol=1e-5, atol=1e-5)
        for index, level in enumerate(LEVELS):
            np.testing.assert_allclose(
                outcome.quantiles[level], expected.quantiles[:, index], rtol=1e-5, atol=1e-5
            )
