"""Conformalised quantiles from a model's rolling-origin residuals on the series' own history.

For each level ``q`` and horizon step ``h`` the shift is the conformal ``q``-quantile of the
calibration scores ``(y - forecast_q) / scale`` (split conformal quantile regression, one side per
level), taken over the series' own windows when they hold enough that do not overlap, and pooled
across the request's series otherwise; ``scale`` (the history's mean absolute seasonal difference)
puts series of different levels on one footing. Levels are then sorted per step, so they never
cross.

The windows are a quarter of the horizon apart (``window_step``), not one step: the errors of
windows one step apart are those of one short period (ten windows of horizon 12 see the last 21
points), and their shifts carried that period into the future. On fpp3 us_employment (148 series,
three held-out years; bench/RESULTS.md) `auto`'s calibrated 80 % intervals covered 0.741-0.809
with windows one step apart and 0.800-0.828 three steps apart. Per-series shifts from overlapping
windows under-covered too (seasonal naive's 95 % interval: 0.73 from 20 windows three steps
apart, 0.97 pooled), so a series gets its own only from windows that do not overlap.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from sapheneia.data import season_length
from sapheneia.evaluation import BacktestPlan
from sapheneia.tasks import ForecastResult

#: Windows that do not overlap a series needs for shifts of its own; with fewer, scores are pooled.
OWN_WINDOWS = 20
#: Calibration windows when the request does not say (cut to what the shortest history holds).
DEFAULT_WINDOWS = 10
#: Calibration windows are this many horizons apart (rounded down) where history allows.
STEP_PER_HORIZON = 0.25


def window_step(horizon: int, shortest: int, windows: int | None = None) -> int:
    """Observations between the cutoffs of consecutive calibration windows: a quarter of the
    horizon (rounded down), or less where the shortest history (``shortest`` observations) would
    otherwise hold fewer than ``windows`` (default ``DEFAULT_WINDOWS``); at least 1.

    Rounded down, because spreading the windows costs the calibration its grip on a recent
    change: where the noise grew tenfold 24 points back, horizon-6 intervals calibrated on windows
    two steps apart covered 0.94 of an 80 % target, one step apart 0.86 (tests/deployments/
    test_selection.py's growing-noise case)."""
    wanted = max(1, math.floor(horizon * STEP_PER_HORIZON))
    count = windows if windows is not None else DEFAULT_WINDOWS
    if count <= 1:
        return wanted
    # rolling_windows needs horizon + (count - 1) * step + 3 observations.
    return max(1, min(wanted, (shortest - horizon - 3) // (count - 1)))


def apart(plan: BacktestPlan, horizon: int) -> tuple[int, int]:
    """The plan's step (observations between consecutive cutoffs) and how many windows that do
    not overlap its windows' actuals hold (their span in whole horizons)."""
    first = plan.windows[0].actuals["unique_id"].iloc[0]
    stamps = {
        stamp
        for window in plan.windows
        for stamp in window.actuals.loc[window.actuals["unique_id"] == first, "ds"]
    }
    n = len(plan.windows)
    step = (len(stamps) - horizon) // (n - 1) if n > 1 else horizon
    return step, len(stamps) // horizon


@dataclass
class Calibrated:
    final: list[ForecastResult]
    report: dict[str, object]


def _scale(history: np.ndarray, season: int) -> float:
    lag = season if len(history) > season else 1
    diffs = np.abs(history[lag:] - history[:-lag])
    scale = float(np.mean(diffs)) if len(diffs) else 0.0
    if scale > 0 and math.isfinite(scale):
        return scale
    level = float(np.mean(np.abs(history))) if len(history) else 0.0
    return level if level > 0 else 1.0


def conformal_quantile(scores: np.ndarray, level: float, axis: int = 0) -> np.ndarray:
    """The finite-sample conformal ``level``-quantile of ``scores`` along ``axis``: the upper
    levels rounded up and the lower ones down, so each side keeps at least its nominal coverage."""
    n = scores.shape[axis]
    if level >= 0.5:
        adjusted = min(1.0, math.ceil((n + 1) * level) / n)
        return np.quantile(scores, adjusted, axis=axis, method="higher")
    adjusted = max(0.0, math.floor((n + 1) * level) / n)
    return np.quantile(scores, adjusted, axis=axis, method="lower")


def _stack(result: ForecastResult, levels: Sequence[float]) -> np.ndarray:
    """``(n_levels, horizon)``: each level's values, the median standing for 0.5."""
    return np.stack([result.median if q == 0.5 else result.quantiles[q] for q in levels])


def calibrate(
    plan: BacktestPlan,
    windows: Sequence[Sequence[ForecastResult]],
    final: Sequence[ForecastResult],
) -> Calibrated:
    """``final`` with conformalised quantiles (and median), from ``windows`` (per window of
    ``plan``, one result per series) set against each window's actuals.

    Returns the new results, in ``final``'s order, and a report of the empirical coverage on the
    calibration windows per level (fraction of actuals at or below it) and per central interval,
    before and after.
    """
    levels = sorted({0.5, *final[0].quantiles})
    season = season_length(plan.freq)
    series = [r.series_id for r in final]
    n_windows, horizon = len(plan.windows), len(final[0].mean)
    # (windows, series, horizon) actuals and (windows, series, levels, horizon) forecasts.
    actual = np.empty((n_windows, len(series), horizon))
    forecast = np.empty((n_windows, len(series), len(levels), horizon))
    scales = np.empty((n_windows, len(series)))
    for w, (window, results) in enumerate(zip(plan.windows, windows, strict=True)):
        by_id = {r.series_id: r for r in results}
        truth = {uid: rows["y"].to_numpy() for uid, rows in window.actuals.groupby("unique_id")}
        train = {uid: rows["y"].to_numpy() for uid, rows in window.train.groupby("unique_id")}
        for i, uid in enumerate(series):
            actual[w, i] = truth[uid]
            forecast[w, i] = _stack(by_id[uid], levels)
            scales[w, i] = _scale(train[uid], season)
    scores = (actual[:, :, None, :] - forecast) / scales[:, :, None, None]
    step, independent = apart(plan, horizon)
    pooled = independent < OWN_WINDOWS
    shifts = np.empty((len(series), len(levels), horizon))  # in units of each series' scale
    for j, q in enumerate(levels):
        if pooled:
            flat = scores[:, :, j, :].reshape(-1, horizon)
            shifts[:, j, :] = conformal_quantile(flat, q)[None, :]
        else:
            shifts[:, j, :] = conformal_quantile(scores[:, :, j, :], q)
    # In-sample after: the same shifts on the calibration windows, sorted as the answer is.
    after = np.sort(forecast + shifts[None] * scales[:, :, None, None], axis=2)
    last_scale = scales[-1]
    calibrated = []
    for i, result in enumerate(final):
        values = np.sort(_stack(result, levels) + shifts[i] * last_scale[i], axis=0)
        by_level = dict(zip(levels, values, strict=True))
        calibrated.append(
            replace(
                result,
                median=by_level[0.5],
                quantiles={q: by_level[q] for q in result.quantiles},
                metadata={**result.metadata, "calibrated": True},
            )
        )
    return Calibrated(
        calibrated,
        _coverage(
            levels, list(final[0].quantiles), actual, forecast, after, n_windows, step, pooled
        ),
    )


def _coverage(
    levels: list[float],
    asked: Sequence[float],
    actual: np.ndarray,
    before: np.ndarray,
    after: np.ndarray,
    n_windows: int,
    step: int,
    pooled: bool,
) -> dict[str, object]:
    below = actual[:, :, None, :]
    quantiles = [
        {
            "level": q,
            "before": round(float(np.mean(below[:, :, 0] <= before[:, :, j])), 4),
            "after": round(float(np.mean(below[:, :, 0] <= after[:, :, j])), 4),
        }
        for j, q in enumerate(levels)
        if q in asked
    ]
    intervals = []
    for lo in [q for q in levels if q < 0.5 and round(1 - q, 10) in asked]:
        hi = levels.index(round(1 - lo, 10))
        at = levels.index(lo)
        cover = [
            round(float(np.mean((f[:, :, at] <= actual) & (actual <= f[:, :, hi]))), 4)
            for f in (before, after)
        ]
        intervals.append(
            {"level": round((1 - 2 * lo) * 100, 6), "before": cover[0], "after": cover[1]}
        )
    return {
        "windows": n_windows,
        "step": step,
        "pooled": pooled,
        "quantiles": quantiles,
        "intervals": intervals,
    }
