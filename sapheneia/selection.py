"""A model chosen per series from a backtest on that series' own history, or the best few combined.

The backtest is ``sapheneia.evaluation``'s (``plan_backtest`` cuts the windows, ``report`` lines
the forecasts up with the actuals); this module scores each series separately and picks. It works
on results, not on models, so the same code serves an in-process adapter and the served models.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, get_args

import numpy as np
import pandas as pd
from utilsforecast import losses

from sapheneia.data import season_length
from sapheneia.errors import InvalidInput
from sapheneia.evaluation import BacktestPlan, report
from sapheneia.tasks import ForecastResult, quantile_column

#: What ``model`` may name besides a served model.
Selector = Literal["auto", "ensemble"]
SELECTORS: tuple[str, ...] = get_args(Selector)
Metric = Literal["MASE", "WQL"]
METRICS: tuple[str, ...] = get_args(Metric)
#: Windows of a selection backtest when the request does not say.
DEFAULT_WINDOWS = 2
DEFAULT_K = 3
# A forecast error this small next to the series' own level is exact (float rounding only).
EXACT = 1e-9


def default_metric(quantiles: Sequence[float], metric: str | None) -> str:
    """MASE, or WQL when the caller asks for quantiles: the score that matches what they use."""
    if metric is not None:
        return metric
    return "WQL" if quantiles else "MASE"


def windows_that_fit(observed: int, horizon: int, step: int) -> int:
    """How many rolling windows a series of ``observed`` values holds (``rolling_windows``' rule:
    ``horizon + (windows - 1) * step + 3`` observations)."""
    return max(0, (observed - horizon - 3) // step + 1)


def check_windows(shortest: int, horizon: int, step: int, windows: int | None, default: int) -> int:
    """The windows to use: the caller's (refused, naming ``windows``, when the shortest history
    cannot hold them) or ``default``, cut to what the shortest history holds."""
    fit = windows_that_fit(shortest, horizon, step)
    if windows is not None and windows > fit:
        raise InvalidInput(
            f"'windows' is {windows}, but the shortest series has {shortest} observations, which "
            f"hold {fit} windows of horizon {horizon} (step {step}); ask for at most {fit}"
            + (" windows" if fit else ", or a shorter horizon")
        )
    if fit < 1:
        raise InvalidInput(
            f"the shortest series has {shortest} observations, too few for a backtest of horizon "
            f"{horizon} (at least {horizon + 3}); send a longer history or a shorter 'horizon'"
        )
    return windows if windows is not None else min(default, fit)


def series_scores(plan: BacktestPlan, lined: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Per series (rows, in the plan's order) and model (columns): ``metric`` averaged over the
    windows. ``lined`` is ``report(...).forecasts``.

    MASE divides by the history's seasonal-naive error; where that is zero (a constant or exactly
    seasonal history) the score is 0 for an exact forecast and undefined (NaN, ranked last)
    otherwise, since within one series every model shares the scale.
    """
    season = season_length(plan.freq)
    levels = sorted(float(c[2:]) for c in lined.columns if c.startswith("q-"))
    per_window = []
    for window in plan.windows:
        part = lined[lined["cutoff"] == window.cutoff]
        wide = part.pivot_table(
            index=["unique_id", "ds"], columns="model", values="mean", sort=False
        )
        models = [str(m) for m in wide.columns]
        frame = wide.reset_index()
        frame.columns = ["unique_id", "ds", *models]
        frame = frame.merge(
            part[["unique_id", "ds", "y"]].drop_duplicates(), on=["unique_id", "ds"]
        )
        if metric == "MASE":
            season_used = season if window.train.groupby("unique_id").size().min() > season else 1
            mase = losses.mase(frame, models, season_used, window.train).set_index("unique_id")
            mae = losses.mae(frame, models).set_index("unique_id")
            level = frame.groupby("unique_id")["y"].apply(lambda y: float(np.abs(y).max()) + 1.0)
            exact = mae.le(EXACT * level.reindex(mae.index), axis=0)
            fallback = exact.astype(float).replace({1.0: 0.0, 0.0: np.nan})
            table = mase.where(np.isfinite(mase), fallback)
        else:
            names = [quantile_column(q) for q in levels]
            tables = []
            for model in part["model"].unique():
                rows = part[part["model"] == model][["unique_id", "ds", "y", *names]]
                crps = losses.scaled_crps(rows, {str(model): names}, np.array(levels))
                tables.append(crps.set_index("unique_id")[str(model)])
            table = pd.concat(tables, axis=1)
        per_window.append(table.replace([np.inf, -np.inf], np.nan))
    stacked = pd.concat(per_window)
    scores = stacked.groupby(level=0, sort=False).mean()
    order = [task.series_id for task in plan.tasks[0]]
    return scores.reindex(order)


@dataclass
class Selection:
    """What was chosen per series, and the chosen forecasts.

    ``final`` has one result per series, in the plan's series order; ``windows`` the chosen
    forecasts of each backtest window (per window, per series), for calibration.
    """

    final: list[ForecastResult]
    windows: list[list[ForecastResult]]
    models: list[str]  # per series: the chosen model, or "ensemble"
    entries: list[dict[str, object]]
    scores: pd.DataFrame


def _score(value: float) -> float | None:
    return None if not math.isfinite(value) else round(float(value), 6)


def select(
    plan: BacktestPlan,
    results: Mapping[str, Sequence[Sequence[ForecastResult]]],
    final: Mapping[str, Sequence[ForecastResult]],
    *,
    metric: str,
    mode: str = "auto",
    k: int = DEFAULT_K,
) -> Selection:
    """The best model per series by ``metric`` (lower is better), or for ``mode="ensemble"`` the
    top ``k`` combined: the point forecast is their median, each quantile their average.

    ``results`` maps each candidate to its window results (per window, per series, in the plan's
    order); ``final`` to its forecasts of the whole history, one per series in the same order.
    """
    scored = report(plan, results)
    scores = series_scores(plan, scored.forecasts, metric)
    names = list(results)
    # Results by series id: each window's tasks and the final ones come in their own order.
    at = {m: [{r.series_id: r for r in window} for window in results[m]] for m in names}
    last = {m: {r.series_id: r for r in final[m]} for m in names}
    chosen_final, chosen_windows, chosen_models, entries = [], [], [], []
    for series_id in scores.index:
        row = scores.loc[series_id].reindex(names)
        # Undefined scores rank last; ties keep the candidates' order.
        ranked = sorted(names, key=lambda m: (not math.isfinite(row[m]), row[m], names.index(m)))
        entry: dict[str, object] = {
            "unique_id": str(series_id),
            "selected_model": ranked[0],
            "score": _score(row[ranked[0]]),
            "runner_up": ranked[1] if len(ranked) > 1 else None,
            "runner_up_score": _score(row[ranked[1]]) if len(ranked) > 1 else None,
            "metric": metric,
        }
        members = ranked[: min(k, len(ranked))] if mode == "ensemble" else ranked[:1]
        if mode == "ensemble":
            entry["members"] = members
        chosen_models.append("ensemble" if mode == "ensemble" else ranked[0])
        chosen_final.append(combine([last[m][series_id] for m in members]))
        entries.append(entry)
        chosen_windows.append(
            [combine([at[m][w][series_id] for m in members]) for w in range(len(plan.windows))]
        )
    by_window = [list(column) for column in zip(*chosen_windows, strict=True)]
    return Selection(chosen_final, by_window, chosen_models, entries, scores)


def combine(members: Sequence[ForecastResult]) -> ForecastResult:
    """Several models' forecasts of one series as one: the median of their point forecasts, the
    average of each quantile (quantile averaging keeps the levels in order, unlike a median)."""
    if len(members) == 1:
        return members[0]
    first = members[0]
    levels = sorted(set.intersection(*(set(m.quantiles) for m in members)))
    return ForecastResult(
        series_id=first.series_id,
        mean=np.median(np.stack([m.mean for m in members]), axis=0),
        median=np.mean(np.stack([m.median for m in members]), axis=0),
        quantiles={q: np.mean(np.stack([m.quantiles[q] for m in members]), axis=0) for q in levels},
        future_timestamps=first.future_timestamps,
        interpolated=tuple(sorted({q for m in members for q in m.interpolated})),
        covariates_used=any(m.covariates_used for m in members),
        metadata={"batch_size": first.metadata.get("batch_size")},
    )


def require_known(candidates: Sequence[str], known: Sequence[str]) -> None:
    """Refuse a candidate that is not a model (naming ``candidates``), or a selector."""
    bad = [c for c in candidates if c not in known]
    if bad:
        raise InvalidInput(
            f"'candidates' names unknown models {', '.join(map(repr, bad))}; available: "
            f"{', '.join(sorted(known))}"
        )
    if len(set(candidates)) != len(candidates):
        raise InvalidInput("'candidates' names a model twice; name each once")
