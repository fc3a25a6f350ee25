"""Blocks: tasks and results packed into arrays, pickled, and unpacked field for field."""

from __future__ import annotations

import pickle
from dataclasses import fields, replace

import numpy as np
import pandas as pd
import pytest

from sapheneia.blocks import ResultBlock, TaskBlock
from sapheneia.config import ModelConfig
from sapheneia.data import ColumnRoles, build_tasks
from sapheneia.models import create_adapter
from sapheneia.tasks import ForecastResult, ForecastTask


def panel(tz: str | None = None, unit: str = "ns") -> pd.DataFrame:
    """Three series of different lengths and calendars, rows shuffled."""
    parts = []
    for name, periods, freq in (("b", 9, "D"), ("a", 14, "h"), ("c", 5, "MS")):
        ds = pd.date_range("2024-03-01", periods=periods, freq=freq, tz=tz).as_unit(unit)
        parts.append(pd.DataFrame({"unique_id": name, "ds": ds, "y": np.arange(periods) * 1.5}))
    return pd.concat(parts).sample(frac=1.0, random_state=1).reset_index(drop=True)


def assert_same(a: object, b: object) -> None:
    assert type(a) is type(b)
    for field in fields(a):  # type: ignore[arg-type]
        x, y = getattr(a, field.name), getattr(b, field.name)
        if isinstance(x, pd.DatetimeIndex):
            pd.testing.assert_index_equal(x, y)
            assert x.tz == y.tz or str(x.tz) == str(y.tz)
        elif isinstance(x, np.ndarray):
            np.testing.assert_array_equal(x, y)
            assert x.dtype == y.dtype
        elif isinstance(x, dict) and x and isinstance(next(iter(x.values())), np.ndarray):
            assert list(x) == list(y)
            for key in x:
                np.testing.assert_array_equal(x[key], y[key])
        else:
            assert x == y, field.name


@pytest.mark.parametrize(("tz", "unit"), [(None, "ns"), ("Europe/Berlin", "ns"), (None, "us")])
def test_tasks_survive_a_block_and_a_pickle(tz: str | None, unit: str) -> None:
    tasks = build_tasks(panel(tz, unit), ColumnRoles(), horizon=4, quantiles=[0.2, 0.8], group="g")
    block = TaskBlock.pack(tasks)
    assert block is not None and len(block) == 3
    back = pickle.loads(pickle.dumps(block)).tasks()
    assert [t.series_id for t in back] == ["a", "b", "c"]
    for original, unpacked in zip(tasks, back, strict=True):
        assert_same(original, unpacked)


def test_tasks_a_block_cannot_hold_stay_a_list() -> None:
    tasks = build_tasks(panel(), ColumnRoles(), horizon=4)
    assert TaskBlock.pack([]) is None
    assert TaskBlock.pack([tasks[0], replace(tasks[1], horizon=3)]) is None
    assert TaskBlock.pack([tasks[0], replace(tasks[1], group="other")]) is None
    covariate = replace(tasks[1], static_numerical={"size": 1.0})
    assert TaskBlock.pack([tasks[0], covariate]) is None
    utc = replace(tasks[1], timestamps=tasks[1].timestamps.tz_localize("UTC"))
    assert TaskBlock.pack([tasks[0], utc]) is None


def test_results_survive_a_block_and_a_pickle() -> None:
    adapter = create_adapter(ModelConfig(id="seasonal-naive", adapter="statsforecast"))
    adapter.load()
    tasks = build_tasks(panel("UTC"), ColumnRoles(), horizon=4, quantiles=[0.1, 0.5, 0.95])
    results = adapter.forecast(tasks)
    for index, result in enumerate(results):
        assert isinstance(result, ForecastResult)
        result.metadata.update(batch_size=3, replica="r", model_seconds=0.5 + index)
    block = ResultBlock.pack(results)
    assert block is not None
    back = pickle.loads(pickle.dumps(block)).results()
    for original, unpacked in zip(results, back, strict=True):
        assert_same(original, unpacked)


def test_results_with_an_error_or_mixed_levels_stay_a_list() -> None:
    stamps = pd.date_range("2024-01-01", periods=2, freq="D")
    one = ForecastResult("a", np.zeros(2), np.zeros(2), {0.5: np.zeros(2)}, stamps)
    assert ResultBlock.pack([one, ValueError("x")]) is None
    other = replace(one, quantiles={0.9: np.zeros(2)})
    assert ResultBlock.pack([one, other]) is None
    block = ResultBlock.pack([one, replace(one, series_id="b")])
    assert block is not None and [r.series_id for r in block.results()] == ["a", "b"]


def test_unpacked_tasks_forecast_like_the_originals() -> None:
    """The model replica forecasts unpacked tasks: the same numbers as the tasks built here."""
    adapter = create_adapter(ModelConfig(id="seasonal-naive", adapter="statsforecast"))
    adapter.load()
    tasks: list[ForecastTask] = build_tasks(panel(), ColumnRoles(), horizon=3)
    block = TaskBlock.pack(tasks)
    assert block is not None
    for direct, via_block in zip(
        adapter.forecast(tasks), adapter.forecast(block.tasks()), strict=True
    ):
        assert isinstance(direct, ForecastResult) and isinstance(via_block, ForecastResult)
        np.testing.assert_array_equal(direct.mean, via_block.mean)
        for level, values in direct.quantiles.items():
            np.testing.assert_array_equal(values, via_block.quantiles[level])
