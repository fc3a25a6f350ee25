"""A caller's table made checkable: columns present, timestamps parsed, numbers numeric, rows
sorted by (series, time) with their original row numbers, no duplicate timestamps."""

from __future__ import annotations

import warnings
from collections.abc import Sequence

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
        parsed = to_datetimes(raw)
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
    check_columns(frame, roles)
    if len(frame) == 0:
        raise DataError("the table has no rows")
    rows = np.arange(1, len(frame) + 1)
    table = pd.DataFrame(
        {c: frame[c].reset_index(drop=True) for c in roles.covariates},
        index=pd.RangeIndex(len(frame)),
    )
    table[ROW] = rows
    table[TIME] = parse_timestamps(frame[roles.timestamp].reset_index(drop=True), roles.timestamp)
    table[TARGET] = numeric(
        frame[roles.target].reset_index(drop=True), f"target column '{roles.target}'", rows
    )
    for column in roles.role_of("dynamic_numerical") + roles.role_of("static_numerical"):
        table[column] = numeric(table[column], f"covariate '{column}'", rows)
    if roles.series_id is None:
        table[SERIES] = roles.target
    else:
        ids = frame[roles.series_id].reset_index(drop=True)
        empty = np.flatnonzero(ids.isna().to_numpy())
        if empty.size:
            raise DataError(
                f"series id column '{roles.series_id}' is empty in rows {rows_text(rows[empty])}"
            )
        table[SERIES] = labels(ids)
    _check_series(table[SERIES], caps)
    table = table.sort_values([SERIES, TIME], kind="stable").reset_index(drop=True)
    _refuse_duplicates(table)
    return table


def _check_series(ids: pd.Series, caps: DataLimits) -> None:
    lengths = ids.str.len()
    if int(lengths.max()) > caps.max_name_chars:
        longest = str(ids.iloc[int(lengths.argmax())])
        raise over_limit(
            f"series id {longest[:40]!r}... is {len(longest):,} characters long",
            caps.max_name_chars,
            "SAPHENEIA_MAX_NAME_CHARS",
            "use shorter ids",
        )
    count = ids.nunique()
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
