"""Rolling-origin backtests on real packaged data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from statsforecast.utils import AirPassengersDF

from sapheneia.config import ModelConfig
from sapheneia.data import ColumnRoles
from sapheneia.errors import InvalidInput
from sapheneia.evaluation import backtest, backtest_models, rolling_windows
from sapheneia.models import create_adapter
from sapheneia.models.base import ModelAdapter


def statistical(method: str) -> ModelAdapter:
    adapter = create_adapter(ModelConfig(id=method, adapter="statsforecast"))
    adapter.load()
    return adapter


def test_auto_ets_beats_seasonal_naive_on_air_passengers() -> None:
    report = backtest_models(
        {"auto-ets": statistical("auto-ets"), "seasonal-naive": statistical("seasonal-naive")},
        AirPassengersDF,
        ColumnRoles(),
        horizon=12,
        n_windows=3,
    )
    assert list(report.metrics.columns) == ["model", "MASE", "sMAPE", "WQL", "coverage_80"]
    metrics = report.metrics.set_index("model").to_dict("index")
    assert metrics["auto-ets"]["MASE"] < metrics["seasonal-naive"]["MASE"]
    assert 0 <= metrics["auto-ets"]["coverage_80"] <= 1
    # 3 windows x 12 steps x 2 models, each row with its actual value.
    assert len(report.forecasts) == 72
    assert report.forecasts["y"].notna().all()
    assert report.forecasts["cutoff"].nunique() == 3
    # Every requested level comes back next to the actual it is scored on.
    assert {"mean", "median", "q-0.1", "q-0.5", "q-0.9"} <= set(report.forecasts.columns)


def test_windows_end_at_the_last_observation_and_step_back() -> None:
    windows = rolling_windows(AirPassengersDF, ColumnRoles(), horizon=6, n_windows=3, step=2)
    last = AirPassengersDF["ds"].max()
    assert windows[-1].actuals["ds"].max() == last
    cutoffs = [pd.Timestamp(str(w.cutoff)) for w in windows]
    assert cutoffs[0] < cutoffs[1] < cutoffs[2]
    assert (cutoffs[1] - cutoffs[0]).days in (59, 60, 61, 62)  # two months apart
    # The model never sees the target it is scored on.
    frame = windows[0].frame
    assert frame["y"].isna().sum() == 6


def test_windows_blank_the_right_rows_whatever_order_the_series_come_in() -> None:
    # Found by the API fuzzer: series sent out of id order had other rows blanked than the ones
    # scored, so a backtest refused good data ("missing target values") or let the model see the
    # value it was scored on.
    b = AirPassengersDF.assign(unique_id="b")
    a = AirPassengersDF.iloc[:100].assign(unique_id="a", y=lambda f: f["y"] * 2)
    frame = pd.concat([b, a], ignore_index=True)  # 'b' first, and longer
    (window,) = rolling_windows(frame, ColumnRoles(), horizon=3, n_windows=1)
    blanked = window.frame[window.frame["y"].isna()]
    expected = frame.groupby("unique_id").tail(3)
    assert sorted(blanked.index) == sorted(expected.index)
    assert window.frame["y"].isna().sum() == 6
    actuals = window.actuals.set_index(["unique_id", "ds"])["y"]
    assert actuals.to_dict() == expected.set_index(["unique_id", "ds"])["y"].to_dict()
    report = backtest_models(
        {"seasonal-naive": statistical("seasonal-naive")},
        frame,
        ColumnRoles(),
        horizon=3,
        n_windows=3,
    )
    # 3 windows x 2 series x 3 steps, each next to its actual value.
    assert report.forecasts["y"].notna().all() and len(report.forecasts) == 3 * 2 * 3


def test_seasonal_naive_errors_match_a_hand_computation() -> None:
    report = backtest_models(
        {"seasonal-naive": statistical("seasonal-naive")},
        AirPassengersDF,
        ColumnRoles(),
        horizon=12,
        n_windows=1,
    )
    y = AirPassengersDF["y"].to_numpy()
    forecast, actual = y[-24:-12], y[-12:]
    np.testing.assert_allclose(report.forecasts["mean"], forecast)
    scale = np.mean(np.abs(y[12:-12] - y[:-24]))
    assert report.metrics.loc[0, "MASE"] == pytest.approx(
        np.mean(np.abs(actual - forecast)) / scale
    )


def test_too_short_for_the_windows() -> None:
    with pytest.raises(InvalidInput, match="fewer windows"):
        rolling_windows(AirPassengersDF.tail(20), ColumnRoles(), horizon=12, n_windows=3)


def test_several_series_are_scored_together() -> None:
    frame = pd.concat(
        [
            AirPassengersDF.assign(unique_id="a"),
            AirPassengersDF.assign(unique_id="b", y=AirPassengersDF.y * 3),
        ]
    )
    report = backtest_models(
        {"auto-ets": statistical("auto-ets")}, frame, ColumnRoles(), horizon=6, n_windows=2
    )
    assert set(report.forecasts["unique_id"]) == {"a", "b"}
    assert len(report.forecasts) == 24


def test_backtest_names_the_report_after_the_model() -> None:
    report = backtest(
        statistical("auto-theta"), AirPassengersDF, ColumnRoles(), horizon=6, n_windows=1, step=3
    )
    assert report.metrics["model"].tolist() == ["auto-theta"]
    assert set(report.forecasts["model"]) == {"auto-theta"}


def test_a_hole_in_a_history_is_named_as_missing_target_values() -> None:
    from sapheneia.errors import MissingTargetValues

    frame = AirPassengersDF.copy()
    frame.loc[40, "y"] = float("nan")
    with pytest.raises(MissingTargetValues, match="missing target values in rows"):
        rolling_windows(frame, ColumnRoles(), horizon=6, n_windows=2)
    # Empty targets after the last observation are future covariate rows, not holes.
    future = pd.DataFrame(
        {
            "unique_id": AirPassengersDF["unique_id"].iloc[0],
            "ds": pd.date_range("1961-01-01", periods=6, freq="MS"),
            "y": np.nan,
        }
    )
    windows = rolling_windows(
        pd.concat([AirPassengersDF, future], ignore_index=True),
        ColumnRoles(),
        horizon=6,
        n_windows=2,
    )
    assert len(windows) == 2
