"""Rolling one-step forecasts over a history: anomaly flags and in-sample fitted values.

Each tested point ``t`` of a series is one ``ForecastTask`` whose context is the series up to
``t - 1`` and whose horizon is 1, so nothing at or after ``t`` reaches the model. The tasks of one
cut (the same offset from each series' end, as ``evaluation.rolling_windows`` aligns windows) form
their own batch group, so a model that fits across series never sees data past that cut. All the
tasks go to the model at once, where they batch like any other request's.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from sapheneia.data import ColumnRoles, DataLimits, build_tasks
from sapheneia.data.limits import DEFAULT_CAPS, over_limit
from sapheneia.errors import InvalidInput, SeriesTooShort
from sapheneia.tasks import ForecastResult, ForecastTask

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
    """One task per (series, tested point), and what each point actually was."""

    tasks: list[ForecastTask]
    actual: np.ndarray  # (n_tasks,): the observed value each task forecasts
    points: int  # tested points per series (the last ``points`` of each)


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
    return OneStepPlan(tasks=tasks, actual=np.asarray(actual, dtype="float64"), points=points)


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


def score_anomalies(table: pd.DataFrame, lo: float, hi: float) -> pd.DataFrame:
    """``table`` (from ``one_step_frame``) with the interval as ``lo``/``hi``, ``anomaly`` (the
    actual is outside it) and ``score``: the distance outside in interval widths, 0 inside."""
    from sapheneia.tasks import quantile_column

    low = table[quantile_column(lo)].to_numpy(dtype="float64")
    high = table[quantile_column(hi)].to_numpy(dtype="float64")
    low, high = np.minimum(low, high), np.maximum(low, high)  # a model's crossed edges, uncrossed
    y = table["y"].to_numpy(dtype="float64")
    outside = np.maximum(np.maximum(low - y, y - high), 0.0)
    # A zero-width interval (a constant history) would divide by zero: scale by the series' size.
    width = np.maximum(high - low, 1e-9 * np.maximum(np.abs(y), 1.0))
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
