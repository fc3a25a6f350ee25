"""Which column is the timestamp, the series id and the target, and a role for every other column.

The detection is a guess the user can change in the UI; it never refuses a table.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import pandas as pd

from sapheneia.tasks import COVARIATE_ROLES

IGNORE = "ignore"

TIMESTAMP_NAMES = ("ds", "date", "timestamp", "datetime", "time", "period", "month", "week", "day")
ID_NAMES = ("unique_id", "series_id", "id", "series", "item_id", "item", "sku", "store", "key")
TARGET_NAMES = ("y", "target", "value", "values", "sales", "demand", "passengers", "count")


@dataclass(frozen=True)
class ColumnMapping:
    """What each column of a long-format table means; ``series_id`` is None for one series."""

    timestamp: str
    target: str
    series_id: str | None = None
    covariates: dict[str, str] = field(default_factory=dict)


def _by_name(columns: list[str], names: tuple[str, ...]) -> str | None:
    lowered = {c.lower().strip(): c for c in columns}
    for name in names:
        if name in lowered:
            return lowered[name]
    return None


def looks_like_time(series: pd.Series) -> bool:
    """Datetime dtype, or text of which at least 90% of a sample parses as dates."""
    if pd.api.types.is_datetime64_any_dtype(series):
        return True
    if pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series):
        return False  # numbers parse as epochs: never guess them as time
    sample = series.dropna().astype(str).head(50)
    if sample.empty:
        return False
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        parsed = pd.to_datetime(sample, errors="coerce", format="mixed")
    return bool(parsed.notna().mean() >= 0.9)


def detect_timestamp(frame: pd.DataFrame) -> str | None:
    columns = [str(c) for c in frame.columns]
    named = _by_name(columns, TIMESTAMP_NAMES)
    if named is not None and looks_like_time(frame[named]):
        return named
    return next((c for c in columns if looks_like_time(frame[c])), named)


def detect_series_id(frame: pd.DataFrame, timestamp: str | None) -> str | None:
    """A text column that, with the timestamp, identifies rows better than the timestamp alone."""
    columns = [str(c) for c in frame.columns if c != timestamp]
    named = _by_name(columns, ID_NAMES)
    if named is not None:
        return named
    if timestamp is None or not frame[timestamp].duplicated().any():
        return None  # one row per timestamp: one series
    for column in columns:
        values = frame[column]
        if pd.api.types.is_float_dtype(values) or values.nunique() > len(frame) // 2:
            continue
        if not frame.duplicated([column, timestamp]).any():
            return column
    return None


def detect_target(frame: pd.DataFrame, exclude: set[str]) -> str | None:
    columns = [str(c) for c in frame.columns if c not in exclude]
    named = _by_name(columns, TARGET_NAMES)
    if named is not None:
        return named
    numeric = [c for c in columns if pd.api.types.is_numeric_dtype(frame[c])]
    return numeric[0] if numeric else None


def suggest_role(frame: pd.DataFrame, column: str, series_id: str | None) -> str:
    """Numerical or categorical by dtype; static when constant within every series."""
    values = frame[column]
    kind = "numerical" if pd.api.types.is_numeric_dtype(values) else "categorical"
    if series_id is not None:
        constant = bool((frame.groupby(series_id)[column].nunique(dropna=False) <= 1).all())
    else:
        constant = values.nunique(dropna=False) <= 1
    return f"{'static' if constant else 'dynamic'}_{kind}"


def detect_mapping(frame: pd.DataFrame) -> ColumnMapping | None:
    """The best guess for a table, or None when it has no usable timestamp or numeric target."""
    timestamp = detect_timestamp(frame)
    if timestamp is None:
        return None
    series_id = detect_series_id(frame, timestamp)
    target = detect_target(frame, {timestamp, *([series_id] if series_id else [])})
    if target is None:
        return None
    others = [str(c) for c in frame.columns if c not in {timestamp, series_id, target}]
    return ColumnMapping(
        timestamp=timestamp,
        target=target,
        series_id=series_id,
        covariates={c: suggest_role(frame, c, series_id) for c in others},
    )


def covariate_roles(role_lists: dict[str, list[str]], reserved: set[str]) -> dict[str, str]:
    """``{role: [columns]}`` from the role pickers -> ``{column: role}``.

    Raises ValueError with a readable message when a column has two roles or a reserved one
    (timestamp, series id, target).
    """
    roles: dict[str, str] = {}
    for role in COVARIATE_ROLES:
        for column in role_lists.get(role) or []:
            if column in reserved:
                raise ValueError(
                    f"column '{column}' is the timestamp, series id or target; "
                    f"remove it from {role.replace('_', ' ')}"
                )
            if column in roles:
                raise ValueError(
                    f"column '{column}' has two roles ({roles[column]} and {role}); keep one"
                )
            roles[column] = role
    return roles


def series_names(frame: pd.DataFrame, series_id: str | None) -> list[str]:
    if series_id is None or series_id not in frame.columns:
        return []
    return sorted(frame[series_id].dropna().astype(str).unique().tolist())
