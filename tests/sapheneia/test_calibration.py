"""Conformal calibration: the windows' spacing and the pooling rule, and the calibrated quantiles
against a reference computed here with numpy from seasonal naive's window forecasts."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from sapheneia.calibration import apart, calibrate, window_step
from sapheneia.config import ModelConfig
from sapheneia.data import ColumnRoles, build_tasks
from sapheneia.evaluation import BacktestPlan, plan_backtest
from sapheneia.models import create_adapter
from sapheneia.tasks import ForecastResult

ROLES = ColumnRoles(timestamp="ds", series_id="unique_id", target="y")
LEVELS = (0.1, 0.9)


def panel(series: int, length: int) -> pd.DataFrame:
    """Monthly series with a yearly cycle, a trend and noise of different sizes."""
    rng = np.random.default_rng(3)
    months = np.arange(length)
    frames = []
    for i in range(series):
        y = 50 + 0.3 * months + 5 * np.sin(2 * np.pi * months / 12)
        y = y + rng.normal(0, 1 + i, length)
        stamps = pd.date_range("2010-01-01", periods=length, freq="MS")
        frames.append(pd.DataFrame({"unique_id": f"s{i}", "ds": stamps, "y": y}))
    return pd.concat(frames, ignore_index=True)


def seasonal_naive(
    frame: pd.DataFrame, horizon: int, windows: int, step: int
) -> tuple[BacktestPlan, list[list[ForecastResult]], list[ForecastResult]]:
    adapter = create_adapter(ModelConfig(id="seasonal-naive", adapter="statsforecast"))
    adapter.load()
    plan = plan_backtest(
        frame, ROLES, horizon=horizon, n_windows=windows, step=step, quantiles=LEVELS
    )
    results = [adapter.forecast(window) for window in plan.tasks]
    final = adapter.forecast(build_tasks(frame, ROLES, horizon, LEVELS))
    return plan, results, final  # type: ignore[return-value]


def conformal(scores: np.ndarray, level: float) -> np.ndarray:
    """Along axis 0: the ``ceil((n + 1) q) / n`` empirical quantile (taking the higher value)
    for an upper level, ``floor((n + 1) q) / n`` (the lower) for a lower one."""
    n = len(scores)
    if level >= 0.5:
        return np.quantile(
            scores, min(1.0, math.ceil((n + 1) * level) / n), axis=0, method="higher"
        )
    return np.quantile(scores, max(0.0, math.floor((n + 1) * level) / n), axis=0, method="lower")


def reference(
    plan: BacktestPlan,
    results: list[list[ForecastResult]],
    final: list[ForecastResult],
    pooled: bool,
) -> dict[str, np.ndarray]:
    """Per series, ``(3, horizon)`` calibrated q-0.1, median, q-0.9: each level shifted by the
    conformal quantile of ``(y - forecast) / scale`` (scale: the window history's mean absolute
    12-month difference), over every series and window when pooled, else the series' windows;
    the last window's scale for the answer; then sorted."""
    levels = [0.1, 0.5, 0.9]
    scores: dict[str, list[np.ndarray]] = {r.series_id: [] for r in final}
    scale: dict[str, float] = {}
    for window, window_results in zip(plan.windows, results, strict=True):
        for result in window_results:
            uid = result.series_id
            y = window.actuals.loc[window.actuals["unique_id"] == uid, "y"].to_numpy()
            train = window.train.loc[window.train["unique_id"] == uid, "y"].to_numpy()
            scale[uid] = float(np.mean(np.abs(train[12:] - train[:-12])))
            stacked = np.stack([result.quantiles[0.1], result.median, result.quantiles[0.9]])
            scores[uid].append((y[None, :] - stacked) / scale[uid])
    everything = np.concatenate([np.stack(s) for s in scores.values()])
    out = {}
    for result in final:
        own = np.stack(scores[result.series_id])
        pool = everything if pooled else own
        shifts = np.stack([conformal(pool[:, j], q) for j, q in enumerate(levels)])
        stacked = np.stack([result.quantiles[0.1], result.median, result.quantiles[0.9]])
        out[result.series_id] = np.sort(stacked + shifts * scale[result.series_id], axis=0)
    return out


def test_windows_are_a_quarter_of_the_horizon_apart_where_the_history_allows() -> None:
    assert window_step(12, 144) == 3
    assert window_step(15, 144) == 3  # rounded down
    assert window_step(16, 144) == 4
    assert window_step(6, 72) == 1
    assert window_step(1, 50) == 1
    # 10 windows of horizon 12, 3 apart, need 12 + 9 * 3 + 3 = 42 observations; with 40, 2 apart.
    assert window_step(12, 42) == 3
    assert window_step(12, 40) == 2
    assert window_step(12, 20) == 1  # fewer windows will fit: that is check_windows' to say
    assert window_step(12, 60, windows=20) == 2  # (60 - 15) // 19
    assert window_step(12, 60, windows=1) == 3
    plan = plan_backtest(panel(2, 60), ROLES, horizon=12, n_windows=10, step=3, quantiles=LEVELS)
    months = np.array([w.cutoff.year * 12 + w.cutoff.month for w in plan.windows])
    assert np.diff(months).tolist() == [3] * 9
    # Their actuals span 12 + 9 * 3 = 39 months: 3 windows that do not overlap.
    assert apart(plan, 12) == (3, 3)


def test_pooled_shifts_are_the_conformal_quantiles_of_every_series_scores() -> None:
    frame = panel(5, 60)
    plan, results, final = seasonal_naive(frame, 8, 10, window_step(8, 60))
    calibrated = calibrate(plan, results, final)
    report = calibrated.report
    assert (report["windows"], report["step"], report["pooled"]) == (10, 2, True)
    expected = reference(plan, results, final, pooled=True)
    for result in calibrated.final:
        got = np.stack([result.quantiles[0.1], result.median, result.quantiles[0.9]])
        np.testing.assert_allclose(got, expected[result.series_id], rtol=1e-9)
        assert result.metadata["calibrated"] is True


@pytest.mark.parametrize(("horizon", "pooled"), [(1, False), (3, True)])
def test_a_series_gets_its_own_shifts_only_from_windows_that_do_not_overlap(
    horizon: int, pooled: bool
) -> None:
    # 20 windows one step apart: 20 that do not overlap at horizon 1, only 7 at horizon 3.
    frame = panel(3, 60)
    plan, results, final = seasonal_naive(frame, horizon, 20, 1)
    assert apart(plan, horizon) == (1, (19 + horizon) // horizon)
    calibrated = calibrate(plan, results, final)
    assert calibrated.report["pooled"] is pooled
    expected = reference(plan, results, final, pooled=pooled)
    for result in calibrated.final:
        got = np.stack([result.quantiles[0.1], result.median, result.quantiles[0.9]])
        np.testing.assert_allclose(got, expected[result.series_id], rtol=1e-9)
