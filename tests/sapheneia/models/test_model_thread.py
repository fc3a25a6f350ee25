"""A process calls its models from one thread (``ModelThread``): the thread that loads a model is
the one that forecasts with it, whichever thread or event loop asks. torch's OpenMP pools are per
calling thread, and a model called from varying threads ran 35-40 % slower on 2 cores
(bench/RESULTS.md); what is tested here is where the calls run, not how fast."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd

from examples.custom_adapter import DriftAdapter
from sapheneia.config import ModelConfig
from sapheneia.jobs.buckets import BucketForecaster
from sapheneia.jobs.spec import JobSpec
from sapheneia.models.base import NativeForecast
from sapheneia.models.torch_runtime import ModelThread
from sapheneia.tasks import ForecastResult, ForecastTask
from sapheneia.testing import make_task


class ThreadRecordingDrift(DriftAdapter):
    """The worked example's random walk with drift, noting the thread of each load and forecast.
    (The job loads it by name, as a module of its own: read the calls from the instance.)"""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__(config)
        self.calls: list[tuple[str, int]] = []

    def _load_weights(self, checkpoint: Path | None) -> None:
        self.calls.append(("load", threading.get_ident()))

    def _predict(
        self, tasks: Sequence[ForecastTask], levels: tuple[float, ...]
    ) -> list[NativeForecast]:
        self.calls.append(("forecast", threading.get_ident()))
        return super()._predict(tasks, levels)


def test_calls_from_many_threads_and_an_event_loop_run_on_one_other_thread() -> None:
    model_thread = ModelThread("model-test")
    try:
        with ThreadPoolExecutor(4) as callers:
            from_threads = list(
                callers.map(lambda _: model_thread.call(threading.get_ident), range(16))
            )

        async def from_loop() -> list[int]:
            return list(
                await asyncio.gather(*(model_thread.run(threading.get_ident) for _ in range(8)))
            )

        # An event loop of its own on a fresh thread: the session may already run one on this
        # thread (the browser tests' Playwright does), and asyncio.run refuses to nest.
        with ThreadPoolExecutor(1) as loop_thread:
            from_coroutines = loop_thread.submit(asyncio.run, from_loop()).result()
    finally:
        model_thread.close()
    assert len(set(from_threads + from_coroutines)) == 1
    assert from_threads[0] != threading.get_ident()


def test_a_job_actor_loads_and_forecasts_on_one_thread_whoever_calls_it() -> None:
    config = ModelConfig(
        id="drift", adapter="tests.sapheneia.models.test_model_thread:ThreadRecordingDrift"
    )
    forecaster = BucketForecaster(JobSpec(models=[config], horizon=3))
    days = pd.date_range("2024-01-01", periods=20, freq="D")
    frame = pd.DataFrame(
        {
            "unique_id": np.repeat(["a", "b"], 20),
            "ds": np.tile(days, 2),
            "y": np.concatenate([np.arange(20.0), 2 * np.arange(20.0)]),
        }
    )
    # Ray Data may call an actor's method from more than one thread.
    with ThreadPoolExecutor(3) as callers:
        outputs = list(callers.map(lambda _: forecaster.run(frame), range(3)))

    assert [output.series for output in outputs] == [2, 2, 2]
    calls = forecaster.adapters["drift"].calls  # type: ignore[attr-defined]
    kinds = [kind for kind, _ in calls]
    assert kinds[0] == "load" and kinds.count("forecast") == 3
    assert len({thread for _, thread in calls}) == 1
    # The drift of series 'b' is 2 a day: its forecast continues the line.
    b = outputs[0].table.to_pandas().query("unique_id == 'b'")
    np.testing.assert_allclose(b["mean"], [40.0, 42.0, 44.0])


def test_results_are_the_models_own() -> None:
    """The thread changes where the model runs, not what it answers."""
    model_thread = ModelThread("model-test")
    adapter = DriftAdapter(ModelConfig(id="drift", adapter="examples.custom_adapter:DriftAdapter"))
    model_thread.call(adapter.load)
    task = make_task("s", np.arange(20.0), 3, quantiles=(0.5,))
    try:
        (on_thread,) = model_thread.call(adapter.forecast, [task])
    finally:
        model_thread.close()
    (direct,) = adapter.forecast([task])
    assert isinstance(on_thread, ForecastResult) and isinstance(direct, ForecastResult)
    np.testing.assert_array_equal(on_thread.mean, direct.mean)
    np.testing.assert_allclose(on_thread.mean, [20.0, 21.0, 22.0])
