"""inf and -inf are refused in the data with their rows, and a model that answers with them is a
502 ``model_output_invalid``, never a response with NaN or Infinity in it."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from sapheneia.config import ModelConfig
from sapheneia.data import ColumnRoles, DataLimits, build_tasks, load_table
from sapheneia.errors import ModelOutputInvalid, NonFiniteValues, ValuesOutOfRange
from sapheneia.models import create_adapter
from sapheneia.tasks import ForecastResult, ForecastTask

CSV = "unique_id,ds,y,price\n" + "".join(
    f"a,2024-01-0{day},{y},{price}\n"
    for day, y, price in [(1, 1, 1), (2, "inf", 1), (3, 3, "-inf"), (4, "-inf", 2), (5, 5, 1)]
)


def test_csv_inf_in_the_target_is_refused_with_its_rows(limits: DataLimits) -> None:
    frame = load_table(CSV.encode(), limits, filename="x.csv")
    with pytest.raises(
        NonFiniteValues, match="target column 'y' has infinite values in rows 2, 4"
    ) as error:
        build_tasks(frame, ColumnRoles(), 2)
    assert error.value.status == 422 and error.value.code == "non_finite_values"
    assert "send finite numbers" in error.value.message


def test_inf_in_a_covariate_is_refused(limits: DataLimits) -> None:
    frame = load_table(CSV.replace(",inf,", ",2,").replace(",-inf,2", ",4,2").encode(), limits)
    roles = ColumnRoles(covariates={"price": "dynamic_numerical"})
    with pytest.raises(NonFiniteValues, match="covariate 'price' has infinite values in rows 3"):
        build_tasks(frame, roles, 1)


def test_json_1e999_is_refused(limits: DataLimits) -> None:
    records = load_table(
        b'[{"ds": "2024-01-01", "y": 1}, {"ds": "2024-01-02", "y": 1e999},'
        b' {"ds": "2024-01-03", "y": 2}]',
        limits,
        filename="x.json",
    )
    with pytest.raises(NonFiniteValues, match="rows 2 \\('inf'\\)"):
        build_tasks(records, ColumnRoles(series_id=None), 1)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # the overflow is the point
def test_a_model_that_overflows_on_huge_values_or_answers_nan() -> None:
    adapter = create_adapter(
        ModelConfig(id="my-drift", adapter="examples.custom_adapter:DriftAdapter")
    )
    adapter.load()
    index = pd.date_range("2024-01-01", periods=6, freq="D")

    def task(values: list[float]) -> ForecastTask:
        return ForecastTask(
            series_id="s",
            context=np.asarray(values),
            horizon=3,
            quantiles=(0.1, 0.9),
            freq="D",
            timestamps=index[:3],
            future_timestamps=index[3:],
        )

    # Finite history whose drift runs past the largest float: the caller's values are the cause.
    overflowing, fine = adapter.forecast([task([-1.5e308, 0.0, 1.5e308]), task([1.0, 2.0, 3.0])])
    assert isinstance(overflowing, ValuesOutOfRange)
    assert overflowing.status == 422 and overflowing.code == "values_out_of_range"
    assert "rescale the series" in overflowing.message
    assert isinstance(fine, ForecastResult)

    # Ordinary values and a NaN answer: the model's fault, a 5xx for that series only.
    real_predict = adapter._predict

    def nan_for_the_first(tasks: list[ForecastTask], levels: tuple[float, ...]) -> list:
        natives = real_predict(tasks, levels)
        natives[0].mean[:] = np.nan
        return natives

    adapter._predict = nan_for_the_first  # type: ignore[method-assign]
    broken, fine = adapter.forecast([task([1.0, 2.0, 3.0]), task([4.0, 5.0, 6.0])])
    assert isinstance(broken, ModelOutputInvalid)
    assert broken.status == 502 and broken.code == "model_output_invalid"
    assert "model 'my-drift' returned values that are not numbers" in broken.message
    assert isinstance(fine, ForecastResult)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # the overflow is the point
def test_a_model_that_raises_on_huge_values_is_the_callers_422() -> None:
    # The fuzzer's table: statsforecast's AutoETS raises inside its fit on values of ±1e300.
    adapter = create_adapter(ModelConfig(id="auto-ets", adapter="statsforecast"))
    adapter.load()
    index = pd.date_range("1990-12-31", periods=40, freq="YE")
    values = np.resize([5e-324, -1e300, 1e20, 1e300, 0.0], 37)

    def task(context: np.ndarray) -> ForecastTask:
        return ForecastTask(
            series_id="s",
            context=context,
            horizon=3,
            quantiles=(0.5,),
            freq="YE",
            timestamps=index[:37],
            future_timestamps=index[37:],
        )

    (huge,) = adapter.forecast([task(values)])
    assert isinstance(huge, ValuesOutOfRange), huge
    assert huge.status == 422 and "has values up to 1e+300" in huge.message
    (fine,) = adapter.forecast([task(np.arange(37.0))])
    assert isinstance(fine, ForecastResult)
