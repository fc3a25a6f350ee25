"""TimesFM-2.0 adapter against transformers' own model, on a tiny random-weight checkpoint."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import TimesFmModelForPrediction

from sapheneia.config import ModelConfig
from sapheneia.errors import InvalidInput, ModelUnavailable
from sapheneia.models.timesfm_2p0 import (
    TimesFM20Adapter,
    fix_quantile_crossing,
    frequency_indicator,
)
from sapheneia.models.timesfm_covariates import covariate_arguments
from sapheneia.tasks import DECILES
from sapheneia.testing import (
    covariate_task,
    make_task,
    result_of,
    wavy_series,
    write_tiny_timesfm_2p0,
    write_tiny_timesfm_2p0_original,
)

LEVELS = DECILES


@pytest.fixture(scope="module", autouse=True)
def offline() -> Iterator[None]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HF_HUB_OFFLINE", "1")
        yield


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_timesfm_2p0(tmp_path_factory.mktemp("timesfm-2.0"))


@pytest.fixture(scope="module")
def adapter(checkpoint: Path) -> TimesFM20Adapter:
    adapter = TimesFM20Adapter(config(str(checkpoint)))
    adapter.load()
    return adapter


@pytest.fixture(scope="module")
def library(checkpoint: Path) -> TimesFmModelForPrediction:
    return TimesFmModelForPrediction.from_pretrained(checkpoint).eval()


def config(checkpoint: str, **options: object) -> ModelConfig:
    return ModelConfig(
        id="timesfm-2.0", adapter="timesfm-2.0", checkpoint=checkpoint, options=options
    )


def library_forecast(model: TimesFmModelForPrediction, context: np.ndarray, freq: int = 0):
    """transformers' forecast ``(128, 10)`` for one series alone, with the quantile-crossing fix the
    adapter applies (the same rule the timesfm package applies to 2.5)."""
    with torch.inference_mode():
        output = model(past_values=[torch.tensor(context, dtype=torch.float32)], freq=[freq])
    return fix_quantile_crossing(output.full_predictions[0].numpy())


def test_a_batch_equals_the_library_forecast_of_each_series_alone(adapter, library) -> None:
    tasks = [
        make_task(f"s{i}", wavy_series(n, i), 24, quantiles=LEVELS)
        for i, n in enumerate((40, 100, 250))
    ]
    for task, outcome in zip(tasks, adapter.forecast(tasks), strict=True):
        expected = library_forecast(library, task.context)[:24]
        result = result_of(outcome)
        np.testing.assert_allclose(result.mean, expected[:, 0], rtol=1e-5, atol=1e-5)
        for index, level in enumerate(LEVELS, start=1):
            np.testing.assert_allclose(
                result.quantiles[level], expected[:, index], rtol=1e-5, atol=1e-5
            )
        assert result.interpolated == ()
        assert not result.covariates_used


def test_horizons_past_one_output_patch_feed_the_mean_back(adapter, library) -> None:
    context = wavy_series(120, 7)
    result = result_of(adapter.forecast([make_task("long", context, 200)])[0])
    first = library_forecast(library, context)
    second = library_forecast(library, np.concatenate([context, first[:, 0]]))
    assert result.mean.shape == (200,)
    np.testing.assert_allclose(result.mean[:128], first[:, 0], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(result.mean[128:], second[:72, 0], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(result.quantiles[0.9][128:], second[:72, 9], rtol=1e-5, atol=1e-5)


def test_the_frequency_indicator_follows_the_task_frequency(adapter, library) -> None:
    context = wavy_series(64, 3)
    result = result_of(adapter.forecast([make_task("weekly", context, 8, freq="W-SUN")])[0])
    np.testing.assert_allclose(
        result.mean, library_forecast(library, context, freq=1)[:8, 0], rtol=1e-5, atol=1e-5
    )


@pytest.mark.parametrize(
    ("freq", "indicator"),
    [("min", 0), ("h", 0), ("D", 0), ("B", 0), ("W", 1), ("MS", 1), ("ME", 1), ("QS", 2),
     ("YE", 2)],
)  # fmt: skip
def test_frequency_indicator(freq: str, indicator: int) -> None:
    assert frequency_indicator(freq) == indicator


def test_the_original_layout_loads_to_the_same_model(tmp_path: Path, adapter) -> None:
    original = TimesFM20Adapter(config(str(write_tiny_timesfm_2p0_original(tmp_path))))
    original.load()
    task = make_task("s", wavy_series(90, 1), 16)
    np.testing.assert_allclose(
        result_of(original.forecast([task])[0]).mean,
        result_of(adapter.forecast([task])[0]).mean,
        rtol=1e-5,
    )


@pytest.mark.parametrize("xreg_mode", ["xreg + timesfm", "timesfm + xreg"])
def test_covariates_are_fitted_per_request(checkpoint: Path, xreg_mode: str) -> None:
    adapter = TimesFM20Adapter(config(str(checkpoint), xreg_mode=xreg_mode))
    adapter.load()
    mine = [covariate_task("a1", "caller-a", 1, 80), covariate_task("a2", "caller-a", 2, 60)]
    theirs = [covariate_task("b1", "caller-b", 3, 80), covariate_task("b2", "caller-b", 4, 100)]
    alone = [result_of(outcome) for outcome in adapter.forecast(mine)]
    shared = [result_of(outcome) for outcome in adapter.forecast([*mine, *theirs])]
    for solo, batched in zip(alone, shared[: len(mine)], strict=True):
        assert solo.covariates_used and batched.covariates_used
        np.testing.assert_allclose(batched.mean, solo.mean, rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(
            batched.quantiles[0.9], solo.quantiles[0.9], rtol=1e-6, atol=1e-6
        )
    plain = make_task("a1", mine[0].context, mine[0].horizon)
    without = result_of(adapter.forecast([plain])[0])
    assert not without.covariates_used
    assert np.abs(without.mean - alone[0].mean).max() > 1e-3
    if xreg_mode == "timesfm + xreg":
        # The regression adjusts the plain forecast: the mean and every quantile move alike.
        shift = alone[0].mean - without.mean
        for level in (0.1, 0.5, 0.9):
            moved = alone[0].quantiles[level] - without.quantiles[level]
            np.testing.assert_allclose(moved, shift, rtol=1e-4, atol=1e-4)


def test_series_of_one_request_must_share_covariate_names() -> None:
    first = covariate_task("a1", "caller-a", 1, 80)
    second = covariate_task("a2", "caller-a", 2, 80)
    second.static_numerical = {"weight": 1.0}
    with pytest.raises(InvalidInput, match="same covariate columns"):
        covariate_arguments([first, second])


def test_a_missing_weights_directory_says_how_to_fix_it(tmp_path: Path) -> None:
    adapter = TimesFM20Adapter(config(str(tmp_path / "absent")))
    with pytest.raises(ModelUnavailable, match=r"sapheneia pull timesfm-2\.0"):
        adapter.load()


def test_a_hub_id_fails_fast_offline() -> None:
    adapter = TimesFM20Adapter(config("google/timesfm-2.0-500m-pytorch"))
    started = time.monotonic()
    with pytest.raises(ModelUnavailable, match=r"sapheneia pull timesfm-2\.0"):
        adapter.load()
    assert time.monotonic() - started < 5


def test_quantile_crossing_is_fixed_outward_from_the_median() -> None:
    crossed = np.array([[5.0, 3.0, 2.0, 4.0, 4.5, 5.0, 6.0, 5.5, 7.0, 6.5]])
    fixed = fix_quantile_crossing(crossed)
    assert np.all(np.diff(fixed[0, 1:]) >= 0)
    np.testing.assert_array_equal(fixed[0, [0, 5]], crossed[0, [0, 5]])  # mean and median kept
    ordered = np.array([[5.0, 1, 2, 3, 4, 5, 6, 7, 8, 9]])
    np.testing.assert_array_equal(fix_quantile_crossing(ordered), ordered)
