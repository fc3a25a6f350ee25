"""Rolling one-step forecasts over a history: anomaly flags and in-sample fitted values.

Each tested point ``t`` of a series is one ``ForecastTask`` whose context is the series up to
``t - 1`` and whose horizon is 1, so nothing at or after ``t`` reaches the model. The tasks of one
cut (the same offset from each series' end, as ``evaluation.rolling_windows`` aligns windows) form
their own batch group, so a model that fits across series never sees data past that cut. All the
tasks go to the model at once, where they batch like any other request's.

An anomaly left in the context of the later points would be forecast as if it were the series: the
model moves its level towards it, and the normal value after it falls outside the interval (the
anomaly's echo), or its inflated residual widens every later interval and hides the next anomaly.
So anomaly detection takes a second round (``second_round``): a point flagged in the first, unless
the point before it was flagged too, is replaced in the contexts of the later points by its
one-step forecast, and those points are forecast again, all at once as before. The point after a
flagged one is judged as if the anomaly had not happened. A run of flags is not replaced past its
first point: after a level shift the model catches up with the new level from the shift's second
point on, instead of having the shift hidden from it for good. One round only: a point first
flagged in the second round stays in the later contexts.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from sapheneia.data import ColumnRoles, DataLimits, build_tasks
from sapheneia.data.limits import DEFAULT_CAPS, over_limit
from sapheneia.errors import InvalidInput, SeriesTooShort
from sapheneia.tasks import ForecastResult, ForecastTask, quantile_column

#: The shortest context any one-step forecast gets, whatever the model accepts.
MIN_ONE_STEP_CONTEXT = 3


def interval_quantiles(level: float) -> tuple[float, float]:
    """The quantiles bounding a central ``level`` % interval: 99 -> (0.005, 0.995)."""
    if not 0.0 < level < 100.0 or math.isnan(level):
        raise InvalidInput(f"level must be inside (0, 100), a percentage such as 95; got {level}")
    tail = round((1.0 - level / 100.0) / 2.0, 10)
    return tail, round(1.0 - tail, 10)


@dataclass
class OneStepPlan:
    """One task per (series, tested point), and what each point actually was.

    ``tasks[j * len(series) + i]`` is series ``i``'s ``j``-th tested point, oldest first.
    """

    tasks: list[ForecastTask]
    actual: np.ndarray  # (n_tasks,): the observed value each task forecasts
    points: int  # tested points per series (the last ``points`` of each)
    series: list[ForecastTask]  # each series whole, horizon 1: what every cut is cut from
    context_length: int | None = None
    group: str = ""


def plan_one_step(
    frame: pd.DataFrame,
    roles: ColumnRoles,
    quantiles: Sequence[float],
    *,
    last_n: int | None = None,
    min_context: int = MIN_ONE_STEP_CONTEXT,
    context_length: int | None = None,
    freq: str | None = None,
    group: str = "",
    limits: DataLimits | None = None,
) -> OneStepPlan:
    """The last ``last_n`` points of every series (by default as many as the bound allows, every
    point after the first ``min_context``), each as a one-step task on the history before it.

    ``limits.max_one_step_points`` bounds series × points: an explicit ``last_n`` over it is
    refused (413 naming the setting); without ``last_n`` the latest points under it are tested.
    """
    caps = limits or DEFAULT_CAPS
    floor = max(min_context, MIN_ONE_STEP_CONTEXT)
    # Every series whole, with the next step's timestamp and covariates: each cut is a slice.
    full = build_tasks(frame, roles, 1, quantiles, freq=freq, group=group, limits=limits)
    shortest = min(full, key=lambda task: len(task.context))
    available = len(shortest.context) - floor
    if available < 1:
        raise SeriesTooShort(
            f"series '{shortest.series_id}' has {len(shortest.context)} observations; testing a "
            f"point needs at least {floor} before it, so send at least {floor + 1}"
        )
    bound = caps.max_one_step_points
    if last_n is not None:
        if last_n > available:
            raise InvalidInput(
                f"last_n is {last_n}, but series '{shortest.series_id}' has "
                f"{len(shortest.context)} observations and each tested point needs {floor} "
                f"before it: send last_n of at most {available}"
            )
        points = last_n
    else:
        points = min(available, bound // len(full))
    if points < 1 or points * len(full) > bound:
        raise over_limit(
            f"the request would test {max(points, 1) * len(full):,} points "
            f"({max(points, 1)} per series × {len(full):,} series)",
            bound,
            "SAPHENEIA_MAX_ONE_STEP_POINTS",
            "send a smaller last_n or fewer series per request",
        )
    tasks, actual = [], []
    for back in range(points, 0, -1):
        for task in full:
            cut = len(task.context) - back
            tasks.append(_cut(task, cut, context_length, f"{group}/cut-{back}"))
            actual.append(task.context[cut])
    return OneStepPlan(
        tasks=tasks,
        actual=np.asarray(actual, dtype="float64"),
        points=points,
        series=full,
        context_length=context_length,
        group=group,
    )


def _cut(task: ForecastTask, cut: int, context_length: int | None, group: str) -> ForecastTask:
    """``task`` as it would be built from the rows before position ``cut``: horizon 1, the
    timestamp of position ``cut`` as the future, covariates up to and including it."""
    start = 0 if context_length is None else max(0, cut - context_length)
    history = len(task.context)

    def dynamic(values: np.ndarray) -> np.ndarray:
        # A past-only covariate stays past-only; one with future values keeps the next one.
        return values[start:cut] if len(values) == history else values[start : cut + 1]

    stamps = pd.DatetimeIndex(task.timestamps.append(task.future_timestamps))
    return replace(
        task,
        context=task.context[start:cut].copy(),
        timestamps=task.timestamps[start:cut],
        future_timestamps=stamps[cut : cut + 1],
        dynamic_numerical={k: dynamic(v) for k, v in task.dynamic_numerical.items()},
        dynamic_categorical={k: dynamic(v) for k, v in task.dynamic_categorical.items()},
        group=group,
    )


def one_step_frame(plan: OneStepPlan, results: Sequence[ForecastResult]) -> pd.DataFrame:
    """Rows ``unique_id, ds, y, mean, median, q-<level>...``, by series then time."""
    frames = [result.to_frame() for result in results]
    table = pd.concat(frames, ignore_index=True)
    table.insert(2, "y", plan.actual)
    return table.sort_values(["unique_id", "ds"], kind="stable").reset_index(drop=True)


def _outside(
    y: np.ndarray, low: np.ndarray, high: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The interval with a model's crossed edges uncrossed, each actual's distance outside it (0
    inside) and its width (a zero-width interval, from a constant history, gets a width of the
    series' size times 1e-9, so scores stay finite); all ``(n_points,)``."""
    low, high = np.minimum(low, high), np.maximum(low, high)
    outside = np.maximum(np.maximum(low - y, y - high), 0.0)
    width = np.maximum(high - low, 1e-9 * np.maximum(np.abs(y), 1.0))
    return low, high, outside, width


@dataclass
class SecondRound:
    """The tested points to forecast again, each with the anomalies before it replaced."""

    tasks: list[ForecastTask]
    index: list[int]  # per task: the position in the first round's tasks it stands in for
    replaced: int  # points replaced by their one-step forecast, over all series

    def merge(
        self, first: Sequence[ForecastResult], again: Sequence[ForecastResult]
    ) -> list[ForecastResult]:
        """The first round's results with those forecast again swapped in."""
        merged = list(first)
        for position, result in zip(self.index, again, strict=True):
            merged[position] = result
        return merged


def second_round(
    plan: OneStepPlan, results: Sequence[ForecastResult], lo: float, hi: float
) -> SecondRound:
    """From the first round's ``results`` (one per ``plan.tasks``): every point flagged outside
    the ``lo``-``hi`` interval whose previous tested point was not flagged is replaced, in the
    series' history, by its one-step mean, and each later tested point whose context then holds
    a replaced point is cut again from that history. Each cut is its own batch group, as in the
    first round; there are never more tasks than in the first."""
    n = len(plan.series)
    low = np.array([r.quantiles[lo][0] for r in results], dtype="float64")
    high = np.array([r.quantiles[hi][0] for r in results], dtype="float64")
    flagged = (_outside(plan.actual, low, high)[2] > 0).reshape(plan.points, n)
    starts_a_run = flagged & ~np.vstack([np.zeros((1, n), dtype=bool), flagged[:-1]])
    means = np.array([r.mean[0] for r in results], dtype="float64").reshape(plan.points, n)
    tasks, index = [], []
    for i, whole in enumerate(plan.series):
        marked = np.flatnonzero(starts_a_run[:, i])
        if not len(marked):
            continue
        first = len(whole.context) - plan.points  # position of the first tested point
        context = whole.context.copy()
        context[first + marked] = means[marked, i]
        cleaned = replace(whole, context=context)
        for j in range(int(marked[0]) + 1, plan.points):
            cut = first + j
            latest = first + int(marked[marked < j].max())
            if plan.context_length is not None and latest < cut - plan.context_length:
                continue  # the replaced points are older than this cut's context
            back = plan.points - j
            tasks.append(_cut(cleaned, cut, plan.context_length, f"{plan.group}/again-{back}"))
            index.append(j * n + i)
    return SecondRound(tasks, index, int(starts_a_run.sum()))


def forecast_without_anomalies(
    plan: OneStepPlan,
    forecast: Callable[[list[ForecastTask]], list[ForecastResult]],
    lo: float,
    hi: float,
) -> tuple[list[ForecastResult], SecondRound]:
    """Both rounds in process: ``forecast`` (a list of tasks to their results, in order) on the
    plan's tasks, then on the ``second_round``'s; the merged results, one per ``plan.tasks``."""
    first = forecast(plan.tasks)
    again = second_round(plan, first, lo, hi)
    if not again.tasks:
        return list(first), again
    return again.merge(first, forecast(again.tasks)), again


def score_anomalies(table: pd.DataFrame, lo: float, hi: float) -> pd.DataFrame:
    """``table`` (from ``one_step_frame``) with the interval as ``lo``/``hi``, ``anomaly`` (the
    actual is outside it) and ``score``: the distance outside in interval widths, 0 inside."""
    y = table["y"].to_numpy(dtype="float64")
    low, high, outside, width = _outside(
        y,
        table[quantile_column(lo)].to_numpy(dtype="float64"),
        table[quantile_column(hi)].to_numpy(dtype="float64"),
    )
    return pd.DataFrame(
        {
            "unique_id": table["unique_id"],
            "ds": table["ds"],
            "y": y,
            "mean": table["mean"],
            "lo": low,
            "hi": high,
            "anomaly": outside > 0,
            "score": outside / width,
        }
    )
