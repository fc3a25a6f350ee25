"""Covariate values for one series: dynamic ones over history + horizon (or over the history alone
when the caller sent no future values at all), static ones once."""

from __future__ import annotations

import numpy as np
import pandas as pd

from sapheneia.data.calendar import show
from sapheneia.data.roles import ColumnRoles
from sapheneia.data.table import ROW, TIME, labels, rows_text
from sapheneia.errors import DataError, MissingFutureCovariates


def dynamic_values(
    series: str,
    history: pd.DataFrame,
    later: pd.DataFrame,
    future: pd.DatetimeIndex,
    roles: ColumnRoles,
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """``(numerical, categorical)``, each ``{column: array}``.

    An array has shape ``(len(history) + horizon,)`` when the rows after the history carry the
    column's values at every future timestamp, and ``(len(history),)`` when they carry none (a
    past-only covariate: only models that read those accept it). Some but not all is refused.
    """
    numerical: dict[str, np.ndarray] = {}
    categorical: dict[str, np.ndarray] = {}
    for role, out in (("dynamic_numerical", numerical), ("dynamic_categorical", categorical)):
        for column in roles.role_of(role):
            past = history[column]
            empty = np.flatnonzero(past.isna().to_numpy())
            if empty.size:
                raise DataError(
                    f"covariate '{column}' is empty in series '{series}' at rows "
                    f"{rows_text(history[ROW].to_numpy()[empty])}; fill those values"
                )
            ahead = pd.Series(later[column].to_numpy(), index=pd.DatetimeIndex(later[TIME]))
            ahead = ahead.reindex(future)
            lacking = future[ahead.isna().to_numpy()]
            if len(lacking) == len(future):
                values = past.reset_index(drop=True)
            elif len(lacking):
                raise missing_future_covariates(series, column, future, lacking)
            else:
                values = pd.concat([past.reset_index(drop=True), ahead.reset_index(drop=True)])
            out[column] = (
                values.to_numpy(dtype="float64") if role == "dynamic_numerical" else _text(values)
            )
    return numerical, categorical


def missing_future_covariates(
    series: str, column: str, future: pd.DatetimeIndex, lacking: pd.DatetimeIndex
) -> MissingFutureCovariates:
    """The error for a covariate without values at the ``lacking`` ones of the ``future`` timestamps
    (the data builder's for a partial future, a model's for a past-only covariate it cannot use)."""
    return MissingFutureCovariates(
        f"series '{series}' needs values of covariate '{column}' for all {len(future)} "
        f"future timestamps; {len(lacking)} are missing (first: {show(lacking)}). Add rows "
        "after the history with an empty target and the covariate values"
    )


def static_values(
    series: str, rows: pd.DataFrame, roles: ColumnRoles
) -> tuple[dict[str, float], dict[str, str]]:
    """``(numerical, categorical)`` from the series' first row; each must be constant."""
    numerical: dict[str, float] = {}
    categorical: dict[str, str] = {}
    for column in roles.role_of("static_numerical") + roles.role_of("static_categorical"):
        present = rows[column].dropna()
        if present.empty:
            raise DataError(f"static covariate '{column}' is empty for series '{series}'; fill it")
        distinct = pd.unique(present.astype(str))
        if len(distinct) > 1:
            shown = ", ".join(repr(v) for v in distinct[:3])
            raise DataError(
                f"static covariate '{column}' changes within series '{series}' ({shown}); give it "
                "one value per series, or make it a dynamic covariate"
            )
        first = present.iloc[0]
        if roles.covariates[column] == "static_numerical":
            numerical[column] = float(first)
        else:
            categorical[column] = str(_text(pd.Series([first]))[0])
    return numerical, categorical


def _text(values: pd.Series) -> np.ndarray:
    return np.array(labels(values).tolist(), dtype=str)
