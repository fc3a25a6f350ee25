"""MLflow runs of backtests and model selections, written to a real local MLflow store and read
back with MLflow's own client; the scores are checked against numpy written here."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from statsforecast.utils import AirPassengersDF

from sapheneia.config import ModelConfig
from sapheneia.data import ColumnRoles
from sapheneia.errors import TrackingUnavailable
from sapheneia.evaluation import plan_backtest, report
from sapheneia.models import create_adapter
from sapheneia.tracking import (
    FORECAST_FILE,
    SERIES_TABLE,
    TrackingTarget,
    log_backtest,
    require_mlflow,
)

SEASON = 12  # AirPassengers is monthly


def two_series() -> pd.DataFrame:
    """AirPassengers, and a trending noisy series of the same length and dates."""
    air = AirPassengersDF.assign(unique_id="air")
    rng = np.random.default_rng(7)
    trend = air.assign(
        unique_id="trend", y=np.linspace(50, 200, len(air)) + rng.normal(0, 5, len(air))
    )
    return pd.concat([air, trend], ignore_index=True)


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> TrackingTarget:
    """A local MLflow file store; MLflow 3 asks for this opt-in before it uses one."""
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    return TrackingTarget(uri=(tmp_path / "mlruns").as_uri(), experiment="tests")


def numpy_mase(
    forecasts: pd.DataFrame, history: pd.DataFrame, season: int = SEASON
) -> pd.DataFrame:
    """MASE per model, window (cutoff) and series from a backtest's forecast rows: the mean
    absolute error over the window, over the in-sample seasonal-naive mean absolute error of the
    history up to the cutoff."""
    rows = []
    for (model, cutoff, series), part in forecasts.groupby(["model", "cutoff", "unique_id"]):
        own = history[history["unique_id"] == series]
        train = own[pd.to_datetime(own["ds"]) <= pd.Timestamp(cutoff)]["y"].to_numpy()
        scale = np.mean(np.abs(train[season:] - train[:-season]))
        error = np.mean(np.abs(part["y"].to_numpy() - part["mean"].to_numpy()))
        rows.append({"model": model, "cutoff": cutoff, "unique_id": series, "MASE": error / scale})
    return pd.DataFrame(rows)


def read_run(target: TrackingTarget, run_id: str) -> tuple[object, pd.DataFrame, pd.DataFrame]:
    """The run, its per-series table and its forecast artifact, through MLflow's client."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=target.uri)
    run = client.get_run(run_id)
    series = client.load_table(run.info.experiment_id, SERIES_TABLE, run_ids=[run_id])
    forecast = pd.read_csv(client.download_artifacts(run_id, FORECAST_FILE))
    return run, series, forecast


def statistical(model_id: str):  # type: ignore[no-untyped-def]
    adapter = create_adapter(ModelConfig(id=model_id, adapter="statsforecast"))
    adapter.load()
    return adapter


def test_a_backtest_run_holds_its_parameters_scores_series_and_forecast(
    store: TrackingTarget,
) -> None:
    frame = two_series()
    plan = plan_backtest(frame, ColumnRoles(), horizon=6, n_windows=2, quantiles=[0.25, 0.75])
    models = ["seasonal-naive", "auto-ets"]
    results = {m: [statistical(m).forecast(tasks) for tasks in plan.tasks] for m in models}
    scored = report(plan, results)  # type: ignore[arg-type]

    run_id = log_backtest(store, plan, scored, step=6, tags={"sapheneia.request_id": "r-1"})
    run, series, forecast = read_run(store, run_id)

    assert run.data.params == {  # type: ignore[attr-defined]
        "kind": "backtest",
        "models": "seasonal-naive,auto-ets",
        "horizon": "6",
        "windows": "2",
        "step": "6",
        "quantiles": "0.1,0.25,0.5,0.75,0.9",
        "series_count": "2",
        "freq": "ME",
    }
    assert run.data.tags["sapheneia.request_id"] == "r-1"  # type: ignore[attr-defined]
    assert run.info.status == "FINISHED"  # type: ignore[attr-defined]
    expected = numpy_mase(scored.forecasts, frame)
    metrics = run.data.metrics  # type: ignore[attr-defined]
    for model in models:
        by_window = expected[expected["model"] == model].groupby("cutoff")["MASE"].mean()
        assert metrics[f"{model}/MASE"] == pytest.approx(by_window.mean(), rel=1e-9)
        for name in ("sMAPE", "WQL", "coverage_80"):
            assert f"{model}/{name}" in metrics
    # Per series, averaged over the windows.
    per_series = expected.groupby(["model", "unique_id"])["MASE"].mean()
    got = series.set_index(["model", "unique_id"])["MASE"]
    assert len(series) == 4
    for key, value in per_series.items():
        assert got[key] == pytest.approx(value, rel=1e-9)
    assert series["WQL"].notna().all()
    # The forecast: every window's rows of every model beside the actuals.
    assert len(forecast) == 2 * 2 * 2 * 6
    np.testing.assert_allclose(forecast["mean"], scored.forecasts["mean"])
    np.testing.assert_allclose(forecast["y"], scored.forecasts["y"])


def test_without_the_extra_the_error_names_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "mlflow", None)  # import mlflow now raises ImportError
    with pytest.raises(TrackingUnavailable, match=r"pip install 'sapheneia\[mlflow\]'"):
        require_mlflow()


def test_a_store_that_refuses_the_run_is_tracking_unavailable_without_its_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Without MLflow's opt-in, its file store refuses to open: a real store failure.
    monkeypatch.delenv("MLFLOW_ALLOW_FILE_STORE", raising=False)
    target = TrackingTarget(uri=(tmp_path / "mlruns").as_uri())
    frame = AirPassengersDF
    plan = plan_backtest(frame, ColumnRoles(), horizon=6, n_windows=1)
    scored = report(
        plan, {"seasonal-naive": [statistical("seasonal-naive").forecast(plan.tasks[0])]}
    )  # type: ignore[dict-item]
    with pytest.raises(TrackingUnavailable) as error:
        log_backtest(target, plan, scored, step=6)
    assert error.value.status == 503
    assert str(tmp_path) not in error.value.message


def seasonal_naive_mase(y: np.ndarray, horizon: int, windows: int) -> float:
    """Seasonal-naive MASE of one series over rolling windows (step = horizon), in numpy: each
    window's forecast repeats the last season of its history."""
    scores = []
    for index in range(windows):
        cut = len(y) - horizon - (windows - 1 - index) * horizon
        train, actual = y[:cut], y[cut : cut + horizon]
        forecast = train[-SEASON:][:horizon]
        scale = np.mean(np.abs(train[SEASON:] - train[:-SEASON]))
        scores.append(np.mean(np.abs(actual - forecast)) / scale)
    return float(np.mean(scores))


def test_the_cli_logs_an_auto_selection(store: TrackingTarget, tmp_path: Path) -> None:
    import os

    from tests.sapheneia.test_cli import sapheneia

    csv, out = tmp_path / "two.csv", tmp_path / "out.csv"
    frame = two_series()
    frame.to_csv(csv, index=False)
    env = {**os.environ, "MLFLOW_ALLOW_FILE_STORE": "true"}
    args = ["forecast", str(csv), "-m", "auto", "-H", "6", "--metric", "MASE", "-o", str(out)]
    result = sapheneia(
        *args,
        "--candidates",
        "seasonal-naive,auto-ets",
        "--mlflow-uri",
        store.uri,
        "--experiment",
        store.experiment,
        env=env,
    )
    assert result.returncode == 0, result.stderr
    run_id = result.stderr.split("MLflow run ", 1)[1].split()[0]
    run, series, forecast = read_run(store, run_id)

    params = run.data.params  # type: ignore[attr-defined]
    assert params["kind"] == "auto" and params["candidates"] == "seasonal-naive,auto-ets"
    assert (params["metric"], params["windows"], params["horizon"]) == ("MASE", "2", "6")
    assert params["series_count"] == "2"
    expected = {
        uid: seasonal_naive_mase(frame[frame["unique_id"] == uid]["y"].to_numpy(), 6, 2)
        for uid in ("air", "trend")
    }
    by_series = series.set_index("unique_id")
    for uid, value in expected.items():
        assert by_series.loc[uid, "seasonal-naive"] == pytest.approx(value, rel=1e-9)
    metrics = run.data.metrics  # type: ignore[attr-defined]
    assert metrics["seasonal-naive/MASE"] == pytest.approx(np.mean(list(expected.values())))
    answered = pd.read_csv(out)
    chosen = answered.groupby("unique_id")["model"].first().to_dict()
    assert by_series["selected_model"].to_dict() == chosen
    for model in ("seasonal-naive", "auto-ets"):
        assert metrics[f"{model}/series_selected"] == list(chosen.values()).count(model)
    # The artifact is the forecast the command wrote.
    np.testing.assert_allclose(forecast["mean"], answered["mean"])
    assert list(forecast["model"]) == list(answered["model"])


def test_the_cli_refuses_mlflow_without_a_selection(tmp_path: Path) -> None:
    from tests.sapheneia.test_cli import sapheneia

    csv = tmp_path / "air.csv"
    AirPassengersDF.to_csv(csv, index=False)
    result = sapheneia("forecast", str(csv), "-m", "auto-ets", "--mlflow-uri", "file:///x")
    assert result.returncode == 2
    assert "--mlflow-uri logs a model selection" in result.stderr
