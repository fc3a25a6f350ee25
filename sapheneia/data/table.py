"""A caller's table made checkable: columns present, timestamps parsed, numbers numeric, rows
sorted by (series, time) with their original row numbers, no duplicate timestamps."""

from __future__ import annotations

import functools
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from pandas.api.types import is_bool_dtype, is_datetime64_any_dtype, is_integer_dtype

from sapheneia.data.limits import DEFAULT_CAPS, DataLimits, over_limit
from sapheneia.data.roles import ColumnRoles
from sapheneia.errors import (
    DataError,
    DuplicateTimestamps,
    NonFiniteValues,
    UnknownColumn,
    UnparseableTimestamps,
)

ROW, SERIES, TIME, TARGET = "__row", "__series", "__time", "__target"
SHOWN = 5


def rows_text(rows: Sequence[int] | np.ndarray) -> str:
    """``3, 7, 9 and 12 more`` for 1-based data row numbers (the header row not counted)."""
    shown = [str(int(r)) for r in list(rows)[:SHOWN]]
    more = len(rows) - len(shown)
    return ", ".join(shown) + (f" and {more} more" if more > 0 else "")


def value_text(value: object) -> str:
    return "empty" if pd.isna(value) else repr(str(value)[:40])  # type: ignore[call-overload]


def labels(values: pd.Series) -> pd.Series:
    """Values as text; whole-number floats (a CSV column with blanks, ids like 1.0) lose ``.0``."""
    if values.dtype.kind == "f":
        return values.map(lambda v: str(int(v)) if float(v).is_integer() else str(v))
    return values.astype(str)


def check_columns(frame: pd.DataFrame, roles: ColumnRoles) -> None:
    named = [roles.timestamp, roles.target, *roles.covariates]
    if roles.series_id is not None:
        named.insert(0, roles.series_id)
    missing = [column for column in named if column not in frame.columns]
    if missing:
        listed = ", ".join(repr(str(c)) for c in frame.columns)
        raise UnknownColumn(
            f"no column {', '.join(repr(c) for c in missing)} in the data; its columns are {listed}"
        )


def parse_timestamps(values: pd.Series, column: str) -> pd.Series:
    """Datetimes for a column; UnparseableTimestamps with the first bad rows and their values."""
    if is_datetime64_any_dtype(values):
        parsed = values
    else:
        raw = (
            values.astype(str) if is_integer_dtype(values) and not is_bool_dtype(values) else values
        )
        # Each distinct value parsed once (a panel's series mostly share their dates): what
        # pandas' own cache does, without its lookup of every row back through an index.
        codes, distinct = pd.factorize(raw)
        once = to_datetimes(pd.Series(distinct))
        parsed = pd.Series(once.array.take(codes, allow_fill=True), index=raw.index)
    bad = np.flatnonzero(parsed.isna().to_numpy())
    if bad.size:
        shown = ", ".join(f"row {i + 1} ({value_text(values.iloc[i])})" for i in bad[:SHOWN])
        more = f" and {bad.size - SHOWN} more" if bad.size > SHOWN else ""
        raise UnparseableTimestamps(
            f"column '{column}' has values that are not timestamps: {shown}{more}; "
            "send dates like 2024-01-31 or 2024-01-31T13:00:00"
        )
    return parsed


def to_datetimes(raw: pd.Series) -> pd.Series:
    """Datetimes, NaT where a value is not one. Mixed UTC offsets (a zone across a daylight-saving
    change) become the same instants in UTC, so the calendar stays regular."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        warnings.simplefilter("ignore", FutureWarning)  # pandas' notice about mixed offsets
        try:
            parsed = pd.to_datetime(raw)
        except (ValueError, TypeError, OverflowError):
            parsed = None  # one bad value or mixed formats: parse value by value to find which
        try:
            if parsed is None or not is_datetime64_any_dtype(parsed):
                parsed = pd.to_datetime(raw, format="mixed", errors="coerce")
            if not is_datetime64_any_dtype(parsed):
                parsed = pd.to_datetime(raw, format="mixed", errors="coerce", utc=True)
        except (ValueError, TypeError, OverflowError) as exc:
            raise UnparseableTimestamps(
                f"timestamps could not be read together ({str(exc)[:160]}); send them in one "
                "time zone, or all with UTC offsets"
            ) from exc
    return parsed


def numeric(values: pd.Series, what: str, row_numbers: np.ndarray) -> pd.Series:
    """Floats for a column; DataError naming rows whose non-empty values are not numbers."""
    if values.dtype == np.float64:  # numbers already (Arrow, Parquet, most JSON): no coercion
        converted = values
        bad = np.empty(0, dtype=np.intp)
    else:
        converted = pd.to_numeric(values, errors="coerce").astype("float64")
        bad = np.flatnonzero((converted.isna() & values.notna()).to_numpy())
    if bad.size:
        shown = ", ".join(
            f"row {row_numbers[i]} ({value_text(values.iloc[i])})" for i in bad[:SHOWN]
        )
        raise DataError(f"{what} has values that are not numbers: {shown}; send numbers")
    infinite = np.flatnonzero(np.isinf(converted.to_numpy()))
    if infinite.size:
        raise NonFiniteValues(
            f"{what} has infinite values in rows {rows_text(row_numbers[infinite])} "
            f"({value_text(values.iloc[infinite[0]])}); send finite numbers, or leave a value "
            "empty where it is missing"
        )
    return converted


def prepare(
    frame: pd.DataFrame, roles: ColumnRoles, caps: DataLimits = DEFAULT_CAPS
) -> pd.DataFrame:
    """The checked, sorted table with columns ROW, SERIES, TIME, TARGET plus the covariates;
    series ids and their number within ``caps``, checked before anything is sorted."""
    return prepared(frame, roles, caps).table


@dataclass
class Prepared:
    """``prepare``'s table as columns (sorted rows: the covariates, ROW, TIME, TARGET), each
    row's series as a code into ``names`` (the ids as text, sorted), and where each series' rows
    start and end: series ``i`` is rows ``bounds[i]:bounds[i + 1]``. The DataFrame is built only
    when asked for (``table``): tasks without covariates need the arrays alone."""

    columns: dict[str, Any]
    codes: np.ndarray
    names: np.ndarray
    bounds: np.ndarray

    @functools.cached_property
    def table(self) -> pd.DataFrame:
        columns = {**self.columns, SERIES: self.names[self.codes]}
        return pd.DataFrame(columns, index=pd.RangeIndex(len(self.codes)))


def prepared(frame: pd.DataFrame, roles: ColumnRoles, caps: DataLimits = DEFAULT_CAPS) -> Prepared:
    """``prepare``, column-wise: ids are factorized once and checked by their distinct values,
    rows are sorted by integer keys (and not at all when they come sorted), and repeated
    timestamps are found by comparing neighbours; the messages are those of the row-wise checks."""
    check_columns(frame, roles)
    if len(frame) == 0:
        raise DataError("the table has no rows")
    rows = np.arange(1, len(frame) + 1)
    columns: dict[str, Any] = {c: frame[c].reset_index(drop=True) for c in roles.covariates}
    columns[ROW] = rows
    columns[TIME] = parse_timestamps(frame[roles.timestamp].reset_index(drop=True), roles.timestamp)
    columns[TARGET] = numeric(
        frame[roles.target].reset_index(drop=True), f"target column '{roles.target}'", rows
    )
    for column in roles.role_of("dynamic_numerical") + roles.role_of("static_numerical"):
        columns[column] = numeric(columns[column], f"covariate '{column}'", rows)
    if roles.series_id is None:
        codes, names = np.zeros(len(frame), dtype=np.intp), np.array([roles.target], dtype=object)
    else:
        ids = frame[roles.series_id].reset_index(drop=True)
        # Text throughout (the usual ids) has no empty value; checking that is cheaper than isna.
        text = ids.dtype.kind == "O" and pd.api.types.infer_dtype(ids, skipna=False) == "string"
        empty = np.empty(0, dtype=np.intp) if text else np.flatnonzero(ids.isna().to_numpy())
        if empty.size:
            raise DataError(
                f"series id column '{roles.series_id}' is empty in rows {rows_text(rows[empty])}"
            )
        codes, names = series_codes(ids, text)
    _check_series(names, caps)
    # Codes in the order of the ids as text, so that sorting by code sorts by id.
    order = np.argsort(names, kind="stable")
    rank = np.empty(len(names), dtype=np.intp)
    rank[order] = np.arange(len(names))
    codes, names = rank[codes], names[order]
    times = pd.DatetimeIndex(columns[TIME]).asi8
    rows_order = _sort_order(codes, times, len(names))
    if rows_order is not None:
        codes, times = codes[rows_order], times[rows_order]
        columns = {c: _take(v, rows_order) for c, v in columns.items()}
    ordered = {c: columns[c] for c in (*roles.covariates, ROW, TIME, TARGET)}
    starts = np.flatnonzero(codes[1:] != codes[:-1]) + 1
    ready = Prepared(ordered, codes, names, np.concatenate([[0], starts, [len(codes)]]))
    same = (codes[1:] == codes[:-1]) & (times[1:] == times[:-1])
    if same.any():
        _refuse_duplicates(ready.table)
    return ready


def series_codes(ids: pd.Series, text: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """A code per row and the id text of each code (``labels``), with no two codes for one text.

    Only the distinct values are turned into text where equal values are sure to give equal text
    (strings, numbers, categories); a column of mixed kinds is turned into text row by row.
    """
    if (
        isinstance(ids.dtype, pd.CategoricalDtype)
        or ids.dtype.kind in "biuf"
        or text
        or (ids.dtype.kind == "O" and pd.api.types.infer_dtype(ids, skipna=False) == "string")
    ):
        codes, uniques = pd.factorize(ids)  # distinct values in the order they first appear
        distinct = pd.Series(uniques)
    else:
        codes, distinct = np.arange(len(ids)), ids
    # Text of each distinct value, then one code per distinct text (1 and 1.0 are both "1").
    text_codes, names = pd.factorize(labels(distinct).reset_index(drop=True))
    return text_codes[codes], np.asarray(names, dtype=object)


def _sort_order(codes: np.ndarray, times: np.ndarray, n_series: int) -> np.ndarray | None:
    """The row order that sorts by (series, time), stably; None when the rows are in it already.

    Most callers send each series' rows together and in time order, only the series not sorted
    by id as text: then a stable sort by series alone is enough (and much cheaper than by both).
    """
    if len(codes) < 2:
        return None
    same = codes[1:] == codes[:-1]
    in_time = (times[1:] >= times[:-1]) | ~same
    if in_time.all() and (codes[1:] >= codes[:-1]).all():
        return None
    if in_time.all() and int((~same).sum()) + 1 == n_series:  # each series in one run
        return np.argsort(codes, kind="stable")
    return np.lexsort((times, codes))


def _take(values: Any, order: np.ndarray) -> Any:
    if isinstance(values, pd.Series):
        return values.take(order).reset_index(drop=True)
    return values[order]


def _check_series(ids: np.ndarray, caps: DataLimits) -> None:
    """``ids``: each series' id text once, in the order they first appear."""
    lengths = np.fromiter(map(len, ids), dtype=np.int64, count=len(ids))
    if int(lengths.max()) > caps.max_name_chars:
        longest = str(ids[int(lengths.argmax())])
        raise over_limit(
            f"series id {longest[:40]!r}... is {len(longest):,} characters long",
            caps.max_name_chars,
            "SAPHENEIA_MAX_NAME_CHARS",
            "use shorter ids",
        )
    count = len(ids)
    if count > caps.max_series:
        raise over_limit(
            f"the request has {count:,} series",
            caps.max_series,
            "SAPHENEIA_MAX_SERIES",
            "split the request by series",
        )


def _refuse_duplicates(table: pd.DataFrame) -> None:
    repeated = table[table.duplicated([SERIES, TIME], keep=False)]
    if repeated.empty:
        return
    series = repeated[SERIES].iloc[0]
    first = repeated[repeated[SERIES] == series]
    listed = [
        f"{pd.Timestamp(time).isoformat()} (rows {rows_text(group[ROW].to_numpy())})"
        for time, group in first.groupby(TIME, sort=True)
    ]
    more = f" and {len(listed) - 3} more" if len(listed) > 3 else ""
    raise DuplicateTimestamps(
        f"series '{series}' has repeated timestamps: {'; '.join(listed[:3])}{more}; "
        "keep one row per timestamp (aggregate or drop the repeats)"
    )
