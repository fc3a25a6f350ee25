"""Chronos-Bolt and Chronos-2 adapters on tiny random-weight checkpoints written by the library itself.

Batched forecasts are compared with the pipeline's own output for one series alone; the tolerance
(1e-5 relative) only absorbs float32 differences from left-padding, which were zero when written.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import huggingface_hub
import numpy as np
import pandas as pd
import pytest
import torch

from sapheneia.config import ModelConfig
from sapheneia.errors import ModelUnavailable
from sapheneia.models import create_adapter
from sapheneia.tasks import ForecastResult, ForecastTask
from sapheneia.testing.chronos import write_tiny_chronos_2, write_tiny_chronos_bolt

HORIZON = 12
RTOL = 1e-5


def make_task(
    series_id: str,
    values: np.ndarray,
    *,
    group: str = "caller-a",
    quantiles: tuple[float, ...] = (0.1, 0.5, 0.9),
    dynamic_numerical: dict[str, np.ndarray] | None = None,
    dynamic_categorical: dict[str, np.ndarray] | None = None,
    static_numerical: dict[str, float] | None = None,
) -> ForecastTask:
    index = pd.date_range("2024-01-01", periods=len(values) + HORIZON, freq="D")
    return ForecastTask(
        series_id=series_id,
        context=np.asarray(values, dtype=float),
        horizon=HORIZON,
        quantiles=quantiles,
        freq="D",
        timestamps=index[: len(values)],
        future_timestamps=index[len(values) :],
        dynamic_numerical=dynamic_numerical or {},
        dynamic_categorical=dynamic_categorical or {},
        static_numerical=static_numerical or {},
        group=group,
    )


def only(results: Sequence[ForecastResult | Exception]) -> list[ForecastResult]:
    """The results, failing the test on any error in them."""
    assert all(isinstance(result, ForecastResult) for result in results), results
    return [result for result in results if isinstance(result, ForecastResult)]


SERIES_A = 20 + 10 * np.sin(np.arange(50) / 3)
SERIES_B = 7 + 5 * np.cos(np.arange(30) / 2)


@pytest.fixture(scope="module", autouse=True)
def offline(monkeypatch_module: pytest.MonkeyPatch) -> None:
    monkeypatch_module.setenv("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as patch:
        yield patch


@pytest.fixture(scope="module")
def bolt(tmp_path_factory: pytest.TempPathFactory):
    directory = write_tiny_chronos_bolt(tmp_path_factory.mktemp("chronos-bolt"))
    adapter = create_adapter(
        ModelConfig(id="chronos-bolt-tiny", adapter="chronos-bolt", checkpoint=str(directory))
    )
    adapter.load()
    return adapter


@pytest.fixture(scope="module")
def chronos2(tmp_path_factory: pytest.TempPathFactory):
    directory = write_tiny_chronos_2(tmp_path_factory.mktemp("chronos-2"))
    adapter = create_adapter(
        ModelConfig(id="chronos-2", adapter="chronos-2", checkpoint=str(directory))
    )
    adapter.load()
    return adapter


def pipeline_alone(pipeline, item) -> tuple[np.ndarray, np.ndarray]:
    """The pipeline's own quantiles ``(n_levels, horizon)`` and mean for one series, alone."""
    quantiles, mean = pipeline.predict_quantiles(
        [item], prediction_length=HORIZON, quantile_levels=pipeline.quantiles
    )
    values = quantiles[0].reshape(HORIZON, -1).numpy().T
    return values, mean[0].reshape(HORIZON).numpy()


def test_bolt_matches_its_pipeline_alone_and_batched_with_another_caller(bolt) -> None:
    expected, expected_mean = pipeline_alone(bolt.model, torch.tensor(SERIES_A))
    alone = only(bolt.forecast([make_task("a", SERIES_A)]))[0]
    batched = only(
        bolt.forecast([make_task("a", SERIES_A), make_task("b", SERIES_B, group="caller-b")])
    )[0]
    for result in (alone, batched):
        np.testing.assert_allclose(result.mean, expected_mean, rtol=RTOL)
        np.testing.assert_allclose(result.quantiles[0.1], expected[0], rtol=RTOL)
        np.testing.assert_allclose(result.quantiles[0.9], expected[8], rtol=RTOL)
        np.testing.assert_allclose(result.median, expected[4], rtol=RTOL)
        assert result.interpolated == ()
        assert len(result.mean) == HORIZON


def test_bolt_reports_native_levels_and_interpolates_others(bolt) -> None:
    assert bolt.capabilities.native_quantiles == (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
    assert bolt.capabilities.max_context == 64  # the tiny checkpoint's context length
    expected, _ = pipeline_alone(bolt.model, torch.tensor(SERIES_A))
    result = only(bolt.forecast([make_task("a", SERIES_A, quantiles=(0.25, 0.5))]))[0]
    assert result.interpolated == (0.25,)
    np.testing.assert_allclose(result.quantiles[0.25], (expected[1] + expected[2]) / 2, rtol=RTOL)


def test_bolt_refuses_covariates(bolt) -> None:
    task = make_task("a", SERIES_A, dynamic_numerical={"x": np.ones(len(SERIES_A) + HORIZON)})
    (outcome,) = bolt.forecast([task])
    assert getattr(outcome, "code", None) == "covariates_not_supported"


def test_chronos2_matches_its_pipeline_alone_and_batched_with_another_caller(chronos2) -> None:
    expected, expected_mean = pipeline_alone(chronos2.model, {"target": SERIES_A})
    alone = only(chronos2.forecast([make_task("a", SERIES_A)]))[0]
    batched = only(
        chronos2.forecast([make_task("a", SERIES_A), make_task("b", SERIES_B, group="caller-b")])
    )[0]
    levels = list(chronos2.model.quantiles)
    assert chronos2.capabilities.native_quantiles == tuple(levels)
    for result in (alone, batched):
        np.testing.assert_allclose(result.mean, expected_mean, rtol=RTOL)
        np.testing.assert_allclose(result.quantiles[0.1], expected[levels.index(0.1)], rtol=RTOL)
        np.testing.assert_allclose(result.median, expected[levels.index(0.5)], rtol=RTOL)
        assert not result.covariates_used


def covariate_task(series_id: str, values: np.ndarray, group: str) -> ForecastTask:
    steps = np.arange(len(values) + HORIZON, dtype=float)
    return make_task(
        series_id,
        values,
        group=group,
        dynamic_numerical={"promo": (steps % 7 == 0).astype(float) * 50},
        dynamic_categorical={"season": np.where(steps % 14 < 7, "low", "high").astype(object)},
    )


def test_chronos2_known_future_covariates_change_the_forecast_and_stay_per_caller(
    chronos2,
) -> None:
    with_covariates = covariate_task("a", SERIES_A, "caller-a")
    plain = only(chronos2.forecast([make_task("a", SERIES_A)]))[0]
    alone = only(chronos2.forecast([with_covariates]))[0]
    other = covariate_task("b", SERIES_B[::-1].copy(), "caller-b")
    batched = only(chronos2.forecast([with_covariates, other]))[0]

    assert alone.covariates_used
    assert not np.allclose(alone.median, plain.median)
    np.testing.assert_allclose(batched.median, alone.median, rtol=RTOL)
    np.testing.assert_allclose(batched.quantiles[0.9], alone.quantiles[0.9], rtol=RTOL)

    expected, _ = pipeline_alone(
        chronos2.model,
        {
            "target": SERIES_A,
            "past_covariates": {
                "promo": with_covariates.dynamic_numerical["promo"][:50],
                "season": with_covariates.dynamic_categorical["season"][:50].astype(str),
            },
            "future_covariates": {
                "promo": with_covariates.dynamic_numerical["promo"][50:],
                "season": with_covariates.dynamic_categorical["season"][50:].astype(str),
            },
        },
    )
    levels = list(chronos2.model.quantiles)
    np.testing.assert_allclose(alone.median, expected[levels.index(0.5)], rtol=RTOL)


def test_chronos2_reads_past_only_covariates_as_the_pipeline_does(chronos2) -> None:
    steps = np.arange(len(SERIES_A), dtype=float)
    past_only = {"temperature": 10 + 5 * np.sin(steps / 2)}  # history only: (n_history,)
    kind = np.where(steps % 4 < 2, "a", "b").astype(object)
    task = make_task("a", SERIES_A, dynamic_numerical=past_only, dynamic_categorical={"kind": kind})
    assert task.past_only_covariates == ["temperature", "kind"]
    plain = only(chronos2.forecast([make_task("a", SERIES_A)]))[0]
    result = only(chronos2.forecast([task]))[0]
    batched = only(
        chronos2.forecast(
            [
                task,
                make_task("b", SERIES_B, group="caller-b"),
                covariate_task("c", SERIES_B, "caller-c"),
            ]
        )
    )[0]

    # The pipeline itself, given the covariates as past-only (no future_covariates at all).
    expected, expected_mean = pipeline_alone(
        chronos2.model,
        {
            "target": SERIES_A,
            "past_covariates": {"temperature": past_only["temperature"], "kind": kind.astype(str)},
        },
    )
    levels = list(chronos2.model.quantiles)
    assert result.covariates_used
    assert not np.allclose(result.median, plain.median)
    for found in (result, batched):
        np.testing.assert_allclose(found.mean, expected_mean, rtol=RTOL)
        np.testing.assert_allclose(found.median, expected[levels.index(0.5)], rtol=RTOL)
        np.testing.assert_allclose(found.quantiles[0.9], expected[levels.index(0.9)], rtol=RTOL)


def test_chronos2_static_covariates_are_not_sent(chronos2) -> None:
    plain = only(chronos2.forecast([make_task("a", SERIES_A)]))[0]
    static = only(chronos2.forecast([make_task("a", SERIES_A, static_numerical={"size": 3.0})]))[0]
    np.testing.assert_array_equal(static.median, plain.median)
    assert not static.covariates_used


def test_chronos2_cross_learning_stays_inside_one_caller(tmp_path: Path) -> None:
    directory = write_tiny_chronos_2(tmp_path / "chronos-2")
    adapter = create_adapter(
        ModelConfig(
            id="chronos-2",
            adapter="chronos-2",
            checkpoint=str(directory),
            options={"cross_learning": True},
        )
    )
    adapter.load()
    alone = only(adapter.forecast([make_task("a", SERIES_A)]))[0]
    with_other_caller = only(
        adapter.forecast([make_task("a", SERIES_A), make_task("b", SERIES_B, group="caller-b")])
    )[0]
    with_own_series = only(
        adapter.forecast([make_task("a", SERIES_A), make_task("b", SERIES_B, group="caller-a")])
    )[0]
    np.testing.assert_allclose(with_other_caller.median, alone.median, rtol=RTOL)
    assert not np.allclose(with_own_series.median, alone.median)


def test_offline_hub_id_is_unavailable_with_the_fix(tmp_path: Path, monkeypatch) -> None:
    # An empty hub cache, so a developer's cached copy of the real weights does not count.
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    adapter = create_adapter(
        ModelConfig(
            id="chronos-bolt-tiny", adapter="chronos-bolt", checkpoint="amazon/chronos-bolt-tiny"
        )
    )
    with pytest.raises(ModelUnavailable) as raised:
        adapter.load()
    assert "sapheneia pull chronos-bolt-tiny" in raised.value.message
    assert not adapter.loaded


def test_folder_that_is_not_a_chronos_checkpoint_is_unavailable(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text('{"model_type": "t5"}')
    adapter = create_adapter(
        ModelConfig(id="chronos-2", adapter="chronos-2", checkpoint=str(tmp_path))
    )
    with pytest.raises(ModelUnavailable, match="not a loadable Chronos checkpoint") as raised:
        adapter.load()
    assert str(tmp_path) not in raised.value.message
