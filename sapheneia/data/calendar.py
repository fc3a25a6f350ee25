"""Frequencies and calendars: inference, validation, gaps and future timestamps (all pandas)."""

from __future__ import annotations

import functools
import warnings
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from pandas.tseries.frequencies import to_offset
from pandas.tseries.offsets import BaseOffset

from sapheneia.errors import InvalidInput, IrregularTimestamps

MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
WEEKDAYS = ("MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN")
# A calendar longer than this many times the data is not a plausible grid for it.
GRID_FACTOR = 10
SHOWN = 5


def parse_freq(freq: str) -> BaseOffset:
    """A pandas offset for an alias such as ``D``, ``h``, ``W-SUN``, ``MS``, ``ME``, ``B``, ``QS``."""
    # Cached: every task and every model call asks, with a handful of aliases, and pandas'
    # parsing under catch_warnings costs about a millisecond. Offsets are immutable.
    return _parse_freq(freq) if isinstance(freq, str) else _parse_freq.__wrapped__(freq)


@functools.lru_cache(maxsize=512)
def _parse_freq(freq: str) -> BaseOffset:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # old aliases ("M", "H") still work
            offset = to_offset(freq)
    except (ValueError, TypeError) as exc:
        raise InvalidInput(
            f"unknown frequency '{freq}'; use a pandas alias such as D, h, 15min, B, W-SUN, "
            "MS, ME, QS, QE, YS"
        ) from exc
    if offset is None or offset.n < 1:
        raise InvalidInput(f"frequency '{freq}' must step forward in time")
    return offset


@functools.lru_cache(maxsize=512)
def season_length(freq: str) -> int:
    """Observations per season: hourly 24, daily 7, business-daily 5, weekly 52, monthly 12,
    quarterly 4, yearly 1, minutes 60; 1 when there is no obvious season."""
    try:
        offset = parse_freq(freq)
    except InvalidInput:
        return 1
    o = pd.offsets
    n = offset.n
    if isinstance(offset, o.Hour):
        return 24 // n if 24 % n == 0 else 1
    if isinstance(offset, o.Minute):
        return 60 // n if 60 % n == 0 else 1
    if n != 1:
        return 1
    seasons: Sequence[tuple[tuple[type, ...], int]] = (
        ((o.Day,), 7),
        ((o.BusinessDay,), 5),
        ((o.Week,), 52),
        ((o.MonthBegin, o.MonthEnd, o.BusinessMonthBegin, o.BusinessMonthEnd), 12),
        ((o.QuarterBegin, o.QuarterEnd, o.BQuarterBegin, o.BQuarterEnd), 4),
        ((o.YearBegin, o.YearEnd, o.BYearBegin, o.BYearEnd), 1),
    )
    for kinds, length in seasons:
        if isinstance(offset, kinds):
            return length
    return 1


def future_timestamps(last: pd.Timestamp, freq: str, horizon: int) -> pd.DatetimeIndex:
    """The ``horizon`` timestamps after ``last`` on the calendar of ``freq`` (month ends stay
    month ends, business days skip weekends)."""
    offset = parse_freq(freq)
    last = pd.Timestamp(last)
    if offset.is_on_offset(last):
        return pd.date_range(last, periods=horizon + 1, freq=offset)[1:]
    return pd.date_range(last + offset, periods=horizon, freq=offset)


@dataclass(frozen=True)
class Grid:
    """How timestamps sit on a calendar: what it lacks and what falls off it."""

    freq: str
    missing: pd.DatetimeIndex
    off_grid: pd.DatetimeIndex

    @property
    def regular(self) -> bool:
        return len(self.missing) == 0 and len(self.off_grid) == 0


def grid(timestamps: pd.DatetimeIndex, offset: BaseOffset) -> Grid | None:
    """Compare sorted timestamps with the calendar of ``offset``; None when the calendar would
    be implausibly long for the data."""
    first, last = timestamps[0], timestamps[-1]
    step = (first + offset) - first
    if step <= pd.Timedelta(0):
        return None
    if (last - first) / step + 1 > GRID_FACTOR * len(timestamps) + 1000:
        return None
    full = pd.date_range(first, last, freq=offset)
    return Grid(offset.freqstr, full.difference(timestamps), timestamps.difference(full))


def _candidates(timestamps: pd.DatetimeIndex) -> Iterator[BaseOffset]:
    first = timestamps[0]
    month, weekday = MONTHS[first.month - 1], WEEKDAYS[first.dayofweek]
    for alias in ("MS", "ME", f"QS-{month}", f"QE-{month}", f"YS-{month}", f"YE-{month}", "B"):
        yield to_offset(alias)
    yield to_offset(f"W-{weekday}")
    steps = np.diff(timestamps.asi8)
    steps = steps[steps > 0]
    if steps.size:
        values, counts = np.unique(steps, return_counts=True)
        yield to_offset(pd.Timedelta(int(values[np.argmax(counts)]), unit="ns"))


def best_grid(timestamps: pd.DatetimeIndex) -> Grid | None:
    """The shortest calendar that holds every timestamp, with what it is missing (gaps)."""
    best: tuple[int, Grid] | None = None
    for offset in _candidates(timestamps):
        found = grid(timestamps, offset)
        if found is None or len(found.off_grid):
            continue
        if best is None or len(found.missing) < best[0]:
            best = (len(found.missing), found)
    return None if best is None else best[1]


def infer_frequency(timestamps: Iterable[Any], *, series_id: str | None = None) -> str:
    """The pandas frequency of sorted, unique timestamps (``MS``, ``ME``, ``B``, ``W-SUN``, ``h``...).

    Raises IrregularTimestamps naming the first missing timestamps when there are gaps.
    """
    index = (
        timestamps
        if isinstance(timestamps, pd.DatetimeIndex)
        else pd.DatetimeIndex(list(timestamps))
    )
    found = pd.infer_freq(index) if len(index) >= 3 else None
    if found is not None:
        return str(parse_freq(found).freqstr)
    fallback = best_grid(index) if len(index) >= 3 else None
    if fallback is not None and fallback.regular:  # a calendar pandas' heuristics miss
        return fallback.freq
    raise IrregularTimestamps(irregular_message(index, series_id))


def irregular_message(
    index: pd.DatetimeIndex, series_id: str | None, freq: str | None = None
) -> str:
    who = f"series '{series_id}'" if series_id is not None else "the series"
    if len(index) < 3:
        return f"{who} has {len(index)} timestamps, too few to infer a frequency; pass freq"
    found = grid(index, parse_freq(freq)) if freq else best_grid(index)
    if found is None:
        return (
            f"{who} has no regular spacing{f' at frequency {freq!r}' if freq else ''}; "
            "resample it to a regular calendar, or pass freq"
        )
    parts = []
    if len(found.missing):
        parts.append(
            f"is missing {len(found.missing)} timestamps at frequency '{found.freq}' (first: {show(found.missing)})"
        )
    if len(found.off_grid):
        parts.append(f"has timestamps off the '{found.freq}' calendar ({show(found.off_grid)})")
    return (
        f"{who} {' and '.join(parts)}; fill the gaps (for example with "
        "utilsforecast.preprocessing.fill_gaps and values for the target), or pass the right freq"
    )


def show(stamps: pd.DatetimeIndex | Sequence[pd.Timestamp]) -> str:
    """The first few timestamps, as ISO text."""
    items = [pd.Timestamp(t).isoformat() for t in list(stamps)[:SHOWN]]
    more = len(stamps) - len(items)
    return ", ".join(items) + (f" and {more} more" if more > 0 else "")
