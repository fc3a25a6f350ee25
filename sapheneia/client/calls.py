"""The API calls the clients make, as method, path and ``httpx`` keyword arguments."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

from sapheneia.client.tables import Columns, covariate_roles, upload, with_future
from sapheneia.tasks import CovariateRole

FORECAST_PATH = "/api/v2/forecast"
BACKTEST_PATH = "/api/v2/backtest"
MODELS_PATH = "/api/v2/models"
JOBS_PATH = "/api/v2/jobs"

JobKind = Literal["forecast", "backtest"]


@dataclass(frozen=True)
class TableCall:
    """A forecast or backtest request: the rows to send and the request fields that go with them."""

    path: str
    fields: dict[str, Any]
    frame: pd.DataFrame
    columns: Columns

    def upload(self, rows: np.ndarray | None = None) -> dict[str, Any]:
        """``httpx`` arguments sending the rows at positions ``rows`` (all rows when None)."""
        frame = self.frame if rows is None else self.frame.iloc[rows]
        return upload(self.fields, frame)


def table_fields(
    df: pd.DataFrame,
    columns: Columns,
    covariates: Mapping[str, CovariateRole] | None,
    **options: Any,
) -> dict[str, Any]:
    """Request fields shared by every table route; options left at None are the server's default."""
    fields = {
        **columns.fields(),
        "covariates": covariate_roles(df, columns, covariates),
        **{name: value for name, value in options.items() if value is not None},
    }
    if "quantiles" in fields:
        fields["quantiles"] = [float(q) for q in fields["quantiles"]]
    return fields


def forecast_call(
    df: pd.DataFrame,
    h: int,
    *,
    model: str,
    quantiles: Sequence[float] | None,
    X_df: pd.DataFrame | None,
    columns: Columns,
    covariates: Mapping[str, CovariateRole] | None,
    context_length: int | None,
    freq: str | None,
    **selection: Any,
) -> TableCall:
    """``selection``: model 'auto' / 'ensemble' and calibrate's fields (candidates, windows,
    metric, k, calibrate); None leaves the server's default."""
    fields = table_fields(
        df,
        columns,
        covariates,
        model=model,
        horizon=h,
        quantiles=quantiles,
        context_length=context_length,
        freq=freq,
        **selection,
    )
    return TableCall(FORECAST_PATH, fields, with_future(df, X_df, columns), columns)


def backtest_call(
    df: pd.DataFrame,
    h: int,
    *,
    models: Sequence[str],
    n_windows: int | None,
    step: int | None,
    quantiles: Sequence[float] | None,
    columns: Columns,
    covariates: Mapping[str, CovariateRole] | None,
    context_length: int | None,
    freq: str | None,
) -> TableCall:
    fields = table_fields(
        df,
        columns,
        covariates,
        models=list(models),
        horizon=h,
        n_windows=n_windows,
        step=step,
        quantiles=quantiles,
        context_length=context_length,
        freq=freq,
    )
    return TableCall(BACKTEST_PATH, fields, df, columns)


def job_request(kind: JobKind, data: pd.DataFrame | str, call: TableCall) -> dict[str, Any]:
    """``POST /api/v2/jobs``: a frame goes as an upload, a source (path or URL the server reads)
    as JSON; either way with the same fields as the synchronous route."""
    fields = {"kind": kind, **call.fields}
    if isinstance(data, str):
        return {"json": {**fields, "source": data}}
    return upload(fields, call.frame)


def job_call(
    kind: JobKind,
    data: pd.DataFrame | str,
    h: int,
    model: str | None,
    models: Sequence[str] | None,
    columns: Columns,
    options: dict[str, Any],
) -> TableCall:
    """The fields of a job, built like those of the synchronous route it runs."""
    frame = pd.DataFrame() if isinstance(data, str) else data
    shared = {
        "quantiles": options.pop("quantiles", None),
        "columns": columns,
        "covariates": options.pop("covariates", None),
        "context_length": options.pop("context_length", None),
        "freq": options.pop("freq", None),
    }
    if kind == "forecast":
        if model is None:
            raise ValueError("a forecast job needs model=")
        call = forecast_call(frame, h, model=model, X_df=options.pop("X_df", None), **shared)
    else:
        if not models:
            raise ValueError("a backtest job needs models=[...]")
        call = backtest_call(
            frame,
            h,
            models=models,
            n_windows=options.pop("n_windows", None),
            step=options.pop("step", None),
            **shared,
        )
    if options:
        raise TypeError(f"unknown options for a {kind} job: {sorted(options)}")
    if isinstance(data, str) and call.frame is not frame:
        raise ValueError("X_df needs a DataFrame: a source's future rows are in the source")
    return call
