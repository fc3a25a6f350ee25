"""The statistical adapter against statsforecast's own output on real packaged data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from statsforecast import StatsForecast
from statsforecast.models import AutoARIMA, AutoETS, AutoTheta, SeasonalNaive
from statsforecast.utils import AirPassengersDF

from sapheneia.config import ModelConfig
from sapheneia.data import ColumnRoles, build_tasks
from sapheneia.errors import (
    CovariatesNotSupported,
    InvalidInput,
    MissingFutureCovariates,
    SeriesTooShort,
)
from sapheneia.models import create_adapter
from sapheneia.models.base import ModelAdapter
from sapheneia.models.statistical import ARIMA_BOUNDS, ARIMA_MAX_CONTEXT
from sapheneia.tasks import ForecastResult


def adapter(method: str) -> ModelAdapter:
    model = create_adapter(
        ModelConfig(id=method, adapter="statsforecast", options={"method": method})
    )
    model.load()
    return model


def results(method: str, frame: pd.DataFrame, horizon: int, **kwargs) -> list[ForecastResult]:
    roles = kwargs.pop("roles", ColumnRoles())
    tasks = build_tasks(frame, roles, horizon, (0.1, 0.5, 0.9), **kwargs)
    outcomes = adapter(method).forecast(tasks)
    assert all(isinstance(o, ForecastResult) for o in outcomes), outcomes
    return outcomes  # type: ignore[return-value]


@pytest.mark.parametrize(
    ("method", "model"),
    [
        ("auto-ets", AutoETS(season_length=12)),
        ("seasonal-naive", SeasonalNaive(season_length=12)),
        ("auto-theta", AutoTheta(season_length=12)),
        ("auto-arima", AutoARIMA(season_length=12, **ARIMA_BOUNDS)),
    ],
)
def test_equals_statsforecast_with_the_80_percent_interval(method: str, model: object) -> None:
    (result,) = results(method, AirPassengersDF, 12)
    expected = StatsForecast(models=[model], freq="MS").forecast(
        df=AirPassengersDF, h=12, level=[80]
    )
    name = type(model).__name__
    np.testing.assert_allclose(result.mean, expected[name], rtol=1e-6)
    np.testing.assert_allclose(result.quantiles[0.1], expected[f"{name}-lo-80"], rtol=1e-6)
    np.testing.assert_allclose(result.quantiles[0.9], expected[f"{name}-hi-80"], rtol=1e-6)
    np.testing.assert_allclose(result.median, result.mean)
    assert result.interpolated == ()


def test_several_series_keep_their_ids() -> None:
    frame = pd.concat(
        [
            AirPassengersDF.assign(unique_id="single"),
            AirPassengersDF.assign(unique_id="double", y=AirPassengersDF["y"] * 2),
        ]
    )
    by_id = {r.series_id: r for r in results("seasonal-naive", frame, 6)}
    assert set(by_id) == {"single", "double"}
    np.testing.assert_allclose(by_id["double"].mean, 2 * by_id["single"].mean)
    # AirPassengersDF is stamped on month ends; the future follows that calendar.
    assert str(by_id["single"].future_timestamps[0].date()) == "1961-01-31"


def test_short_series_fall_back_to_no_season() -> None:
    (result,) = results("auto-ets", AirPassengersDF.tail(18), 3)
    assert np.isfinite(result.mean).all()


def test_arima_uses_an_exogenous_regressor() -> None:
    frame = AirPassengersDF.copy()
    rng = np.random.default_rng(0)
    frame["promo"] = rng.normal(size=len(frame))
    frame["y"] = frame["y"] + 40 * frame["promo"]
    future = pd.DataFrame(
        {
            "unique_id": 1.0,
            "ds": pd.date_range("1961-01-31", periods=6, freq="ME"),
            "y": np.nan,
            "promo": [3.0, -3.0, 3.0, -3.0, 3.0, -3.0],
        }
    )
    with_x = pd.concat([frame, future], ignore_index=True)
    roles = ColumnRoles(covariates={"promo": "dynamic_numerical"})
    (covariate,) = results("auto-arima", with_x, 6, roles=roles)
    (plain,) = results("auto-arima", frame.drop(columns="promo"), 6)
    assert covariate.covariates_used and not plain.covariates_used
    # The regressor's +/-3 swings show up as alternating jumps in the forecast.
    assert np.all(np.abs(np.diff(covariate.mean)) > 100)


def test_a_past_only_covariate_is_refused_with_what_to_add() -> None:
    frame = AirPassengersDF.assign(promo=np.arange(len(AirPassengersDF), dtype=float))
    roles = ColumnRoles(covariates={"promo": "dynamic_numerical"})
    tasks = build_tasks(frame, roles, 3)  # no rows after the history: promo is past-only
    (outcome,) = adapter("auto-arima").forecast(tasks)
    assert isinstance(outcome, MissingFutureCovariates)
    assert outcome.message == (
        "series '1' needs values of covariate 'promo' for all 3 future timestamps; 3 are missing "
        "(first: 1961-01-31T00:00:00, 1961-02-28T00:00:00, 1961-03-31T00:00:00). Add rows after "
        "the history with an empty target and the covariate values"
    )
    # A model that reads no covariates at all says so first.
    (outcome,) = adapter("seasonal-naive").forecast(tasks)
    assert isinstance(outcome, CovariatesNotSupported)


def test_covariates_are_refused_where_unsupported() -> None:
    frame = AirPassengersDF.assign(temp=1.0)
    tasks = build_tasks(frame, ColumnRoles(covariates={"temp": "static_numerical"}), 3)
    (outcome,) = adapter("auto-ets").forecast(tasks)
    assert isinstance(outcome, CovariatesNotSupported)
    assert "auto-ets" in outcome.message


def test_unknown_method_is_refused() -> None:
    with pytest.raises(InvalidInput) as raised:
        create_adapter(ModelConfig(id="x", adapter="statsforecast", options={"method": "magic"}))
    assert raised.value.message == (
        "model 'x': option 'method': Input should be 'seasonal-naive', 'auto-ets', 'auto-arima' "
        "or 'auto-theta'. Valid options: max_context, method"
    )
    with pytest.raises(InvalidInput, match=r"set options\.method to one of seasonal-naive"):
        create_adapter(ModelConfig(id="x", adapter="statsforecast"))


def test_auto_arima_refuses_categorical_covariates() -> None:
    frame = AirPassengersDF.assign(kind="a")
    roles = ColumnRoles(covariates={"kind": "static_categorical"})
    (outcome,) = adapter("auto-arima").forecast(build_tasks(frame, roles, 3))
    assert isinstance(outcome, CovariatesNotSupported)
    assert "numeric covariates only" in outcome.message


@pytest.mark.parametrize(("method", "shortest"), [("auto-ets", 7), ("auto-theta", 4)])
def test_too_short_for_the_method(method: str, shortest: int) -> None:
    tasks = build_tasks(AirPassengersDF.head(shortest - 1), ColumnRoles(), 2)
    (outcome,) = adapter(method).forecast(tasks)
    assert isinstance(outcome, SeriesTooShort)
    assert f"needs at least {shortest}" in outcome.message
    (result,) = results(method, AirPassengersDF.head(shortest), 2)
    assert np.isfinite(result.quantiles[0.1]).all()


def test_auto_arima_reads_a_bounded_context() -> None:
    model = adapter("auto-arima")
    assert model.capabilities.max_context == ARIMA_MAX_CONTEXT
    unbounded = ModelConfig(
        id="arima", adapter="statsforecast", options={"method": "auto-arima", "max_context": None}
    )
    assert create_adapter(unbounded).capabilities.max_context is None


def test_model_options_reach_statsforecast_and_typos_are_refused() -> None:
    config = ModelConfig(
        id="ets-additive", adapter="statsforecast", options={"method": "auto-ets", "model": "AAN"}
    )
    model = create_adapter(config)
    model.load()
    (result,) = model.forecast(build_tasks(AirPassengersDF, ColumnRoles(), 3))
    assert isinstance(result, ForecastResult), result
    expected = AutoETS(season_length=12, model="AAN").forecast(
        y=AirPassengersDF["y"].to_numpy(), h=3
    )
    np.testing.assert_allclose(result.mean, expected["mean"])
    typo = ModelConfig(id="x", adapter="statsforecast", options={"method": "auto-ets", "seasn": 4})
    with pytest.raises(InvalidInput) as raised:
        create_adapter(typo)
    assert raised.value.message == (
        "model 'x': unknown option 'seasn' (not a setting of statsforecast's AutoETS). Valid "
        "options: max_context, method, alias, damped, distribution, model, phi, "
        "prediction_intervals"
    )
