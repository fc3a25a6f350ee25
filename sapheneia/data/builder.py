"""``build_tasks``: a long-format table to one ForecastTask per series, or a DataError that says
which series, which rows, and what to fix."""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from pandas.errors import OutOfBoundsDatetime

from sapheneia.data.calendar import (
    future_timestamps,
    grid,
    infer_frequency,
    irregular_message,
    parse_freq,
)
from sapheneia.data.covariates import dynamic_values, static_values
from sapheneia.data.limits import DEFAULT_CAPS, MAX_QUANTILES, DataLimits, over_limit
from sapheneia.data.roles import ColumnRoles
from sapheneia.data.table import ROW, TARGET, TIME, Prepared, prepared, rows_text
from sapheneia.errors import (
    InvalidInput,
    IrregularTimestamps,
    MissingTargetValues,
    SeriesTooShort,
)
from sapheneia.tasks import DECILES, ForecastTask

MIN_LENGTH = 3


@dataclass(frozen=True)
class TaskSpec:
    """What ``build_tasks`` was asked for, checked once and shared by every series' task."""

    roles: ColumnRoles
    horizon: int
    quantiles: tuple[float, ...]
    context_length: int | None
    freq: str | None
    group: str
    start: pd.Timestamp | None
    end: pd.Timestamp | None
    # Inferred calendars by the exact timestamps they were inferred from: the series of a panel
    # mostly share their dates, and inference is most of the cost of building a task.
    calendars: dict[tuple[bytes, str], str] = field(default_factory=dict, compare=False)
    # And their futures by last timestamp, zone and calendar (a DatetimeIndex is immutable: shared).
    futures: dict[tuple[int, str, str], pd.DatetimeIndex] = field(
        default_factory=dict, compare=False
    )


def build_tasks(
    frame: pd.DataFrame,
    roles: ColumnRoles,
    horizon: int,
    quantiles: Sequence[float] = DECILES,
    *,
    context_length: int | None = None,
    freq: str | None = None,
    group: str = "",
    context_start: str | None = None,
    context_end: str | None = None,
    limits: DataLimits | None = None,
) -> list[ForecastTask]:
    """One task per series, in series-id order.

    A series' history runs up to its last non-empty target; rows after it (empty target) carry the
    known future values of dynamic covariates. ``context_start``/``context_end`` (inclusive) and
    then ``context_length`` (last N points) narrow the history. Future timestamps follow the
    series' calendar (inferred per series unless ``freq`` is given). ``limits`` caps series, id
    length, quantile levels and output cells (the defaults when None), all checked before any
    series' task is built.
    """
    caps = limits or DEFAULT_CAPS
    spec = TaskSpec(
        roles=roles,
        horizon=_checked_horizon(horizon),
        quantiles=checked_quantiles(quantiles, caps.max_quantiles),
        context_length=_checked_context_length(context_length),
        freq=parse_freq(freq).freqstr if freq else None,
        group=group,
        start=_bound(context_start, "context_start"),
        end=_bound(context_end, "context_end"),
    )
    if spec.start is not None and spec.end is not None and spec.start > spec.end:
        raise InvalidInput("context_start is after context_end")
    _check_output(spec, 1, caps)  # before reading the table: a horizon alone can be too much
    ready = prepared(frame, roles, caps)
    _check_output(spec, len(ready.bounds) - 1, caps)
    series = SeriesRows.of(ready)
    ids = ready.names[ready.codes[ready.bounds[:-1]]]
    # Rows are sorted by series: contiguous slices are much cheaper than a groupby's copies.
    return [
        _task(series, str(series_id), int(start), int(stop), spec)
        for series_id, (start, stop) in zip(ids, itertools.pairwise(ready.bounds), strict=True)
    ]


@dataclass(frozen=True)
class SeriesRows:
    """The prepared table's columns as arrays, sliced per series without pandas per series."""

    prepared: Prepared
    times: pd.DatetimeIndex
    stamps: np.ndarray  # int64 in the times' unit (UTC instants when they have a zone)
    target: np.ndarray
    rows: np.ndarray

    @classmethod
    def of(cls, ready: Prepared) -> SeriesRows:
        times = pd.DatetimeIndex(ready.columns[TIME]).rename(None)
        return cls(
            prepared=ready,
            times=times,
            stamps=times.asi8,
            target=np.asarray(ready.columns[TARGET], dtype="float64"),
            rows=np.asarray(ready.columns[ROW]),
        )


def checked_quantiles(
    quantiles: Sequence[float], max_levels: int = MAX_QUANTILES
) -> tuple[float, ...]:
    """Levels strictly inside (0, 1), deduplicated and sorted; at most ``max_levels`` sent."""
    if len(quantiles) > max_levels:
        raise over_limit(
            f"the request asks for {len(quantiles):,} quantile levels",
            max_levels,
            "SAPHENEIA_MAX_QUANTILES",
            "ask for fewer levels",
        )
    levels = []
    for level in quantiles:
        if isinstance(level, bool) or not isinstance(level, int | float | np.floating | np.integer):
            raise InvalidInput(
                f"quantile {level!r} is not a number; send levels like 0.1, 0.5, 0.9"
            )
        if not (0.0 < float(level) < 1.0) or math.isnan(level):
            raise InvalidInput(
                f"quantile {level} is outside (0, 1); send levels like 0.1, 0.5, 0.9"
            )
        levels.append(float(level))
    return tuple(sorted(set(levels)))


def _check_output(spec: TaskSpec, series: int, caps: DataLimits) -> None:
    """The answer's size: one value per step, series and column (the mean and each level)."""
    columns = len(spec.quantiles) + 1
    cells = spec.horizon * series * columns
    if cells > caps.max_output_cells:
        raise over_limit(
            f"the forecast would have {cells:,} values (horizon {spec.horizon:,} × {series:,} "
            f"series × {columns} columns: the mean and {columns - 1} quantile levels)",
            caps.max_output_cells,
            "SAPHENEIA_MAX_OUTPUT_CELLS",
            "split the request, shorten the horizon or ask for fewer quantiles",
        )


def _checked_horizon(horizon: int) -> int:
    if isinstance(horizon, bool) or not isinstance(horizon, int | np.integer) or horizon < 1:
        raise InvalidInput(
            f"horizon must be a whole number of steps of at least 1; got {horizon!r}"
        )
    return int(horizon)


def _checked_context_length(context_length: int | None) -> int | None:
    if context_length is None:
        return None
    if isinstance(context_length, bool) or not isinstance(context_length, int | np.integer):
        raise InvalidInput(f"context_length must be a whole number; got {context_length!r}")
    if context_length < MIN_LENGTH:
        raise InvalidInput(f"context_length must be at least {MIN_LENGTH}; got {context_length}")
    return int(context_length)


def _bound(value: str | None, name: str) -> pd.Timestamp | None:
    if value is None or value == "":
        return None
    try:
        stamp = pd.Timestamp(value)
    except (ValueError, TypeError) as exc:
        raise InvalidInput(
            f"{name} {value!r} is not a date; send ISO dates like 2024-01-31"
        ) from exc
    if pd.isna(stamp):
        raise InvalidInput(f"{name} {value!r} is not a date; send ISO dates like 2024-01-31")
    return stamp


def _aligned(bound: pd.Timestamp | None, like: pd.Timestamp) -> pd.Timestamp | None:
    """A window bound comparable with the series' timestamps (time zones match)."""
    if bound is None or (bound.tzinfo is None) == (like.tzinfo is None):
        return bound
    return bound.tz_localize(like.tzinfo) if bound.tzinfo is None else bound.tz_convert(None)


def _bound_value(bound: pd.Timestamp | None, times: pd.DatetimeIndex) -> int | None:
    """A window bound as the int64 it compares as against ``times.asi8`` (same unit, zone)."""
    aligned = None if bound is None else _aligned(bound, times[0])
    return None if aligned is None else int(aligned.as_unit(times.unit).asm8.view("i8"))


def _task(rows: SeriesRows, series: str, start: int, stop: int, spec: TaskSpec) -> ForecastTask:
    """The task of ``series``, in table rows ``start:stop``."""
    instants = rows.stamps[start:stop]
    target = rows.target[start:stop]
    low, high = _bound_value(spec.start, rows.times), _bound_value(spec.end, rows.times)
    if low is None and high is None:
        first = 0
        observed = np.flatnonzero(~np.isnan(target))
    else:
        in_window = np.ones(stop - start, dtype=bool)
        if low is not None:
            in_window &= instants >= low
        if high is not None:
            in_window &= instants <= high
        window = np.flatnonzero(in_window)
        first = int(window[0]) if window.size else 0
        observed = np.flatnonzero(in_window & ~np.isnan(target))
    if observed.size == 0:
        window_text = (
            " inside context_start/context_end" if low is not None or high is not None else ""
        )
        raise MissingTargetValues(f"series '{series}' has no target values{window_text}")
    last = int(observed[-1])
    begin = first if spec.context_length is None else max(first, last + 1 - spec.context_length)
    context = target[begin : last + 1]
    empty = np.flatnonzero(np.isnan(context))
    if empty.size:
        row_numbers = rows.rows[start + begin : start + last + 1]
        raise MissingTargetValues(
            f"series '{series}' is missing target values in rows {rows_text(row_numbers[empty])}; "
            "fill them or drop those rows"
        )
    if context.size < MIN_LENGTH:
        raise SeriesTooShort(
            f"series '{series}' has {context.size} observations; at least {MIN_LENGTH} are needed"
        )
    stamps = rows.times[start + begin : start + last + 1]
    freq = _frequency(stamps, series, spec.freq, spec.calendars)
    try:
        # By instant and zone (equal instants in two zones compare equal as Timestamps).
        key = (int(instants[last]), str(stamps.tz), freq)
        if key not in spec.futures:
            spec.futures[key] = future_timestamps(stamps[-1], freq, spec.horizon)
        future = spec.futures[key]
    except (OutOfBoundsDatetime, OverflowError) as exc:
        raise InvalidInput(
            f"series '{series}': {spec.horizon} steps of '{freq}' after "
            f"{stamps[-1].isoformat()} run past {pd.Timestamp.max.date()}, the last date the "
            "server can represent; ask for a shorter horizon"
        ) from exc
    numeric_dyn: dict[str, np.ndarray] = {}
    categorical_dyn: dict[str, np.ndarray] = {}
    static_num: dict[str, float] = {}
    static_cat: dict[str, str] = {}
    if spec.roles.covariates:  # slicing frames per series is the slow part: skip when unused
        frame = rows.prepared.table.iloc[start:stop]
        numeric_dyn, categorical_dyn = dynamic_values(
            series, frame.iloc[begin : last + 1], frame.iloc[last + 1 :], future, spec.roles
        )
        static_num, static_cat = static_values(series, frame, spec.roles)
    return ForecastTask(
        series_id=series,
        context=context.copy(),
        horizon=spec.horizon,
        quantiles=spec.quantiles,
        freq=freq,
        timestamps=stamps,
        future_timestamps=future,
        dynamic_numerical=numeric_dyn,
        dynamic_categorical=categorical_dyn,
        static_numerical=static_num,
        static_categorical=static_cat,
        group=spec.group,
    )


def _frequency(
    stamps: pd.DatetimeIndex, series: str, freq: str | None, known: dict[tuple[bytes, str], str]
) -> str:
    if freq is None:
        # Only successes are kept: a failure is raised again with its own series' message.
        key = (stamps.asi8.tobytes(), str(stamps.tz))
        if key not in known:
            known[key] = infer_frequency(stamps, series_id=series)
        return known[key]
    found = grid(stamps, parse_freq(freq))
    if found is None or not found.regular:
        raise IrregularTimestamps(irregular_message(stamps, series, freq))
    return freq
