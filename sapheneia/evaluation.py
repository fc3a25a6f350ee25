"""Forecast metrics and rolling-origin backtests.

Metrics come from ``utilsforecast.losses`` (MASE, sMAPE, scaled CRPS as the weighted quantile loss,
interval coverage); this module only cuts the windows and lines forecasts up with actuals, so the
same code scores an in-process adapter and a served model.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from utilsforecast import losses

from sapheneia.data import ColumnRoles, DataLimits, build_tasks, season_length
from sapheneia.data.limits import over_limit
from sapheneia.data.table import ROW, SERIES, TARGET, TIME, prepare, rows_text
from sapheneia.errors import InvalidInput, MissingTargetValues, SapheneiaError
from sapheneia.models.base import ModelAdapter
from sapheneia.tasks import ForecastResult, ForecastTask, quantile_column

COVERAGE_LEVEL = 80
REQUIRED_QUANTILES = (0.1, 0.5, 0.9)  # the 80% interval and the median are always scored


@dataclass
class Window:
    """One forecast origin: the input table cut at ``cutoff`` and the actuals that followed."""

    cutoff: pd.Timestamp | None
    frame: pd.DataFrame
    actuals: pd.DataFrame  # unique_id, ds, y
    train: pd.DataFrame  # unique_id, ds, y: the history each forecast saw


@dataclass
class BacktestReport:
    metrics: pd.DataFrame  # model, MASE, sMAPE, WQL, coverage_80
    forecasts: pd.DataFrame  # unique_id, cutoff, ds, y, model, mean, median, q-...


def backtest_quantiles(quantiles: Sequence[float]) -> tuple[float, ...]:
    return tuple(sorted({*quantiles, *REQUIRED_QUANTILES}))


def rolling_windows(
    frame: pd.DataFrame,
    roles: ColumnRoles,
    *,
    horizon: int,
    n_windows: int,
    step: int | None = None,
) -> list[Window]:
    """Windows oldest first; the last ends with the last observed value of every series.

    Each window's ``frame`` keeps the next ``horizon`` rows with the target blanked, so known-future
    covariates reach the model exactly as in a live forecast.
    """
    step = step or horizon
    if horizon < 1 or n_windows < 1 or step < 1:
        raise InvalidInput("horizon, n_windows and step must be at least 1")
    table = prepare(frame, roles)
    _refuse_gaps_in_history(table)
    observed = table[table[TARGET].notna()]
    sizes = observed.groupby(SERIES, sort=False).size()
    needed = horizon + (n_windows - 1) * step + 3
    short = sizes[sizes < needed]
    if len(short):
        raise InvalidInput(
            f"series {', '.join(map(repr, short.index[:5]))} have fewer than {needed} observations, "
            f"too few for {n_windows} windows of horizon {horizon} (step {step}); ask for fewer "
            "windows or a shorter horizon"
        )
    source = frame.reset_index(drop=True)
    windows = []
    for index in range(n_windows):
        back = horizon + (n_windows - 1 - index) * step
        history_rows, future_rows = [], []
        for _, rows in observed.groupby(SERIES, sort=False):
            cut = len(rows) - back
            history_rows.append(rows.iloc[:cut])
            future_rows.append(rows.iloc[cut : cut + horizon])
        history, future = pd.concat(history_rows), pd.concat(future_rows)
        # The prepared table is sorted by series and time; ROW (1-based) points back into the
        # caller's rows, which may come in any order.
        future_at = future[ROW].to_numpy() - 1
        original = source.iloc[np.concatenate([history[ROW].to_numpy() - 1, future_at])].copy()
        original.loc[original.index.isin(future_at), roles.target] = np.nan
        windows.append(
            Window(
                cutoff=history[TIME].max(),
                frame=original,
                actuals=_long(future),
                train=_long(history),
            )
        )
    return windows


def _refuse_gaps_in_history(table: pd.DataFrame) -> None:
    """An empty target before a series' last observed value is a hole in its history (trailing
    empty rows carry future covariates): refuse it as a forecast would, naming the rows."""
    missing = table[TARGET].isna().to_numpy()
    if not missing.any():
        return
    # Per series, how many observed values are still to come at each row (this one excluded).
    observed = (~missing).astype(int)
    by_series = pd.Series(observed, index=table.index).groupby(table[SERIES].to_numpy())
    later = by_series.transform(lambda s: s[::-1].cumsum()[::-1] - s).to_numpy()
    holes = missing & (later > 0)
    if holes.any():
        first = table[holes]
        series = first[SERIES].iloc[0]
        raise MissingTargetValues(
            f"series '{series}' is missing target values in rows "
            f"{rows_text(first[ROW].to_numpy())}; fill them or drop those rows"
        )


def _long(table: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "unique_id": table[SERIES].to_numpy(),
            "ds": table[TIME].to_numpy(),
            "y": table[TARGET].to_numpy(),
        }
    )


@dataclass
class BacktestPlan:
    """The windows of a backtest and each window's tasks, ready for any model."""

    windows: list[Window]
    tasks: list[list[ForecastTask]]  # per window, one task per series
    freq: str  # the frequency given, or the one the first window's tasks inferred


def plan_backtest(
    frame: pd.DataFrame,
    roles: ColumnRoles,
    *,
    horizon: int,
    n_windows: int,
    step: int | None = None,
    quantiles: Sequence[float] = REQUIRED_QUANTILES,
    context_length: int | None = None,
    freq: str | None = None,
    group: str = "",
    limits: DataLimits | None = None,
    models: int = 1,
) -> BacktestPlan:
    """The one backtest planner, for in-process adapters and served models alike.

    Each window is its own batch group (``group`` + window index): a model that fits anything
    across series (covariate regressions, cross-learning) fits each window on that window's own
    history, never on data past its cutoff.
    """
    windows = rolling_windows(frame, roles, horizon=horizon, n_windows=n_windows, step=step)
    tasks = [
        build_tasks(
            window.frame,
            roles,
            horizon,
            backtest_quantiles(quantiles),
            context_length=context_length,
            freq=freq,
            group=f"{group}/window-{index}",
            limits=limits,
        )
        for index, window in enumerate(windows)
    ]
    _check_size(tasks, models, limits or DataLimits(data_dir=Path(".")))
    return BacktestPlan(windows=windows, tasks=tasks, freq=freq or tasks[0][0].freq)


def _check_size(tasks: list[list[ForecastTask]], models: int, limits: DataLimits) -> None:
    """Windows × models × series × steps × columns: small input must not make a huge answer."""
    first = tasks[0][0]
    columns = len(first.quantiles) + 1
    cells = len(tasks) * models * len(tasks[0]) * first.horizon * columns
    if cells > limits.max_output_cells:
        raise over_limit(
            f"the backtest would have {cells:,} forecast values ({len(tasks)} windows × {models} "
            f"models × {len(tasks[0]):,} series × horizon {first.horizon} × {columns} columns)",
            limits.max_output_cells,
            "SAPHENEIA_MAX_OUTPUT_CELLS",
            "ask for fewer windows or models, a shorter horizon, or fewer series per request",
        )


def report(
    plan: BacktestPlan, results: Mapping[str, Sequence[Sequence[ForecastResult]]]
) -> BacktestReport:
    """Scores per model from each model's results, window by window, in the plan's order."""
    lined = [
        line_up(window, model, window_results)
        for model, per_window in results.items()
        for window, window_results in zip(plan.windows, per_window, strict=True)
    ]
    forecasts = pd.concat(lined, ignore_index=True)
    return BacktestReport(metrics=score(forecasts, plan.windows, plan.freq), forecasts=forecasts)


def line_up(window: Window, model: str, results: Sequence[ForecastResult]) -> pd.DataFrame:
    """Forecast rows next to the actuals, matched by series and step (not by timestamp, which the
    model derives from the calendar)."""
    frames = []
    actuals = {uid: rows for uid, rows in window.actuals.groupby("unique_id", sort=False)}
    for result in results:
        forecast = result.to_frame(model).drop(columns="ds")
        actual = actuals[result.series_id].reset_index(drop=True)
        frames.append(pd.concat([actual, forecast.drop(columns="unique_id")], axis=1))
    lined = pd.concat(frames, ignore_index=True)
    lined.insert(1, "cutoff", window.cutoff)
    return lined


def score(lined: pd.DataFrame, windows: Sequence[Window], freq: str) -> pd.DataFrame:
    """One row per model: MASE, sMAPE, WQL (scaled CRPS over the scored levels) and 80% coverage,
    each averaged over series and windows."""
    season = season_length(freq)
    rows = []
    levels = sorted(float(c[2:]) for c in lined.columns if c.startswith("q-"))
    for model_name, by_model in lined.groupby("model", sort=False):
        model = str(model_name)
        per_window = []
        for window in windows:
            part = by_model[by_model["cutoff"] == window.cutoff].rename(columns={"mean": model})
            part = part.assign(
                **{
                    f"{model}-lo-{COVERAGE_LEVEL}": part[quantile_column(0.1)],
                    f"{model}-hi-{COVERAGE_LEVEL}": part[quantile_column(0.9)],
                }
            )
            quantile_names = [quantile_column(q) for q in levels]
            season_used = season if window.train.groupby("unique_id").size().min() > season else 1
            per_window.append(
                {
                    "MASE": losses.mase(part, [model], season_used, window.train)[model].mean(),
                    "sMAPE": losses.smape(part, [model])[model].mean(),
                    "WQL": losses.scaled_crps(part, {model: quantile_names}, np.array(levels))[
                        model
                    ].mean(),
                    f"coverage_{COVERAGE_LEVEL}": losses.coverage(part, [model], COVERAGE_LEVEL)[
                        model
                    ].mean(),
                }
            )
        # A metric undefined for a series (MASE of a constant history divides by zero) is left out
        # of the mean, not allowed to turn it into inf; undefined everywhere, it stays NaN.
        table = pd.DataFrame(per_window).replace([np.inf, -np.inf], np.nan)
        rows.append({"model": model, **table.mean().to_dict()})
    return pd.DataFrame(rows)


#: Why a metric can be undefined, for the API's answer.
UNDEFINED_BECAUSE = {
    "MASE": "the history's seasonal-naive forecast is exact (a constant or perfectly seasonal "
    "series), so there is no error to scale by",
    "sMAPE": "both the forecast and the actuals are zero",
    "WQL": "the actuals sum to zero",
    f"coverage_{COVERAGE_LEVEL}": "no interval was forecast",
}


def metric_records(metrics: pd.DataFrame) -> list[dict[str, object]]:
    """Metrics as JSON-safe records: an undefined value is ``None``, with the reason in
    ``undefined``, never NaN (which is not JSON)."""
    records = []
    for row in metrics.to_dict(orient="records"):
        record: dict[str, object] = {}
        undefined: dict[str, str] = {}
        for column, value in row.items():
            name = str(column)
            if isinstance(value, float) and not np.isfinite(value):
                record[name] = None
                undefined[name] = UNDEFINED_BECAUSE.get(name, "not defined for this data")
            else:
                record[name] = round(value, 6) if isinstance(value, float) else value
        if undefined:
            record["undefined"] = undefined
        records.append(record)
    return records


def backtest_models(
    adapters: Mapping[str, ModelAdapter], frame: pd.DataFrame, roles: ColumnRoles, **options: Any
) -> BacktestReport:
    """Rolling-origin evaluation of in-process adapters on the same windows; ``options`` are
    ``plan_backtest``'s (horizon, n_windows, step, quantiles, context_length, freq)."""
    plan = plan_backtest(frame, roles, **options)
    results: dict[str, list[list[ForecastResult]]] = {}
    for name, adapter in adapters.items():
        results[name] = []
        for tasks in plan.tasks:
            outcomes = adapter.forecast(tasks)
            for outcome in outcomes:
                if isinstance(outcome, SapheneiaError):
                    raise outcome
            results[name].append(outcomes)  # type: ignore[arg-type]
    return report(plan, results)


def backtest(
    adapter: ModelAdapter, frame: pd.DataFrame, roles: ColumnRoles, **options: Any
) -> BacktestReport:
    """``backtest_models`` for one adapter, named after its model id."""
    return backtest_models({adapter.name: adapter}, frame, roles, **options)
