"""TimesFM-2.5 adapter against the timesfm package's own forecast, on random full-size weights.

The package fixes the 2.5 architecture, so the checkpoint is the real 200M shape with random
weights; a short ``max_context`` keeps each call quick.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from timesfm import ForecastConfig, TimesFM_2p5_200M_torch

from sapheneia.config import ModelConfig
from sapheneia.errors import ModelUnavailable
from sapheneia.models.timesfm_2p5 import TimesFM25Adapter
from sapheneia.tasks import DECILES
from sapheneia.testing import (
    covariate_task,
    make_task,
    result_of,
    wavy_series,
    write_random_timesfm_2p5,
)

LEVELS = DECILES
MAX_CONTEXT = 64
LIBRARY_CONFIG = ForecastConfig(
    max_context=MAX_CONTEXT,
    max_horizon=128,
    normalize_inputs=True,
    use_continuous_quantile_head=True,
    fix_quantile_crossing=True,
)


@pytest.fixture(scope="module", autouse=True)
def offline() -> Iterator[None]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HF_HUB_OFFLINE", "1")
        yield


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_random_timesfm_2p5(tmp_path_factory.mktemp("timesfm-2.5"))


@pytest.fixture(scope="module")
def adapter(checkpoint: Path) -> TimesFM25Adapter:
    adapter = TimesFM25Adapter(config(str(checkpoint), max_context=MAX_CONTEXT, batch_size=4))
    adapter.load()
    return adapter


@pytest.fixture(scope="module")
def library(checkpoint: Path) -> Any:
    return TimesFM_2p5_200M_torch.from_pretrained(str(checkpoint), torch_compile=False)


def config(checkpoint: str, **options: object) -> ModelConfig:
    return ModelConfig(
        id="timesfm-2.5", adapter="timesfm-2.5", checkpoint=checkpoint, options=options
    )


def test_a_batch_equals_the_library_forecast_of_each_series_alone(adapter, library) -> None:
    library.compile(LIBRARY_CONFIG)
    tasks = [
        make_task(f"s{i}", wavy_series(n, i), 24, quantiles=LEVELS)
        for i, n in enumerate((30, 64, 100))
    ]
    for task, outcome in zip(tasks, adapter.forecast(tasks), strict=True):
        with torch.inference_mode():
            _, quantiles = library.forecast(horizon=24, inputs=[task.context])
        result = result_of(outcome)
        np.testing.assert_allclose(result.mean, quantiles[0, :, 0], rtol=1e-5, atol=1e-5)
        for index, level in enumerate(LEVELS, start=1):
            np.testing.assert_allclose(
                result.quantiles[level], quantiles[0, :, index], rtol=1e-5, atol=1e-5
            )
        assert result.interpolated == ()


def test_covariates_are_fitted_per_request(adapter, library) -> None:
    mine = [covariate_task("a1", "caller-a", 1, 60), covariate_task("a2", "caller-a", 2, 40)]
    theirs = [covariate_task("b1", "caller-b", 3, 60), covariate_task("b2", "caller-b", 4, 50)]
    alone = [result_of(outcome) for outcome in adapter.forecast(mine)]
    shared = [result_of(outcome) for outcome in adapter.forecast([*theirs, *mine])]
    for solo, batched in zip(alone, shared[len(theirs) :], strict=True):
        assert solo.covariates_used and batched.covariates_used
        np.testing.assert_allclose(batched.mean, solo.mean, rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(batched.quantiles[0.1], solo.quantiles[0.1], rtol=1e-6)

    # The package's own covariate forecast of this request alone.
    library.compile(dataclasses.replace(LIBRARY_CONFIG, return_backcast=True))
    with torch.inference_mode():
        _, quantiles = library.forecast_with_covariates(
            inputs=[task.context for task in mine],
            dynamic_numerical_covariates={"driver": [t.dynamic_numerical["driver"] for t in mine]},
            dynamic_categorical_covariates={
                "day": [list(t.dynamic_categorical["day"]) for t in mine]
            },
            static_numerical_covariates={"size": [t.static_numerical["size"] for t in mine]},
            static_categorical_covariates={
                "region": [t.static_categorical["region"] for t in mine]
            },
        )
    for result, expected in zip(alone, quantiles, strict=True):
        np.testing.assert_allclose(result.mean, expected[:, 0], rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(result.quantiles[0.9], expected[:, 9], rtol=1e-5, atol=1e-5)

    without = result_of(adapter.forecast([make_task("a1", mine[0].context, 12)])[0])
    assert not without.covariates_used
    assert np.abs(without.mean - alone[0].mean).max() > 1e-3


def test_a_missing_weights_directory_says_how_to_fix_it(tmp_path: Path) -> None:
    adapter = TimesFM25Adapter(config(str(tmp_path / "absent")))
    with pytest.raises(ModelUnavailable, match=r"sapheneia pull timesfm-2\.5"):
        adapter.load()


def test_a_directory_without_weights_is_unavailable(tmp_path: Path) -> None:
    adapter = TimesFM25Adapter(config(str(tmp_path)))
    with pytest.raises(ModelUnavailable, match=r"sapheneia pull timesfm-2\.5"):
        adapter.load()


def test_a_hub_id_fails_fast_offline() -> None:
    adapter = TimesFM25Adapter(config("google/timesfm-2.5-200m-pytorch"))
    started = time.monotonic()
    with pytest.raises(ModelUnavailable, match=r"sapheneia pull timesfm-2\.5"):
        adapter.load()
    assert time.monotonic() - started < 5
