"""What the UI's buttons do: plain functions of the inputs, messages escaped, no tracebacks shown.

The API client (holding the signed-in key) is an argument of every call that needs it; nothing
here stores it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import plotly.graph_objects as go

from frontend.api_client import ApiClient, ApiError
from frontend.columns import COVARIATE_ROLES, ColumnMapping, covariate_roles
from frontend.export import curl_snippet, forecast_table, python_snippet, write_csv
from frontend.payloads import (
    Table,
    backtest_request,
    forecast_frame,
    forecast_request,
    parse_quantiles,
)
from frontend.plots import backtest_figure, forecast_figure
from frontend.tables import history_and_future
from frontend.text import error, plain

NO_SERIES = "(none: one series)"
# Not models but ways to choose one per series (POST /api/v2/forecast), offered beside the models.
SELECTORS = [
    ("auto: the best model per series", "auto"),
    ("ensemble: the best 3 combined per series", "ensemble"),
]
# What an answer adds besides the forecast, kept per requested model.
EXTRA_BLOCKS = ("selection", "candidates_left_out", "calibration")


class UserError(ValueError):
    """Something the user can fix in the form."""


@dataclass
class ForecastRun:
    """One click of Forecast: per model results, kept in the session for re-plotting."""

    mapping: ColumnMapping
    forecasts: dict[str, pd.DataFrame] = field(default_factory=dict)
    covariates_used: bool = False
    extras: dict[str, dict[str, Any]] = field(default_factory=dict)  # model -> EXTRA_BLOCKS


def require_table(table: Table | None) -> Table:
    if table is None:
        raise UserError("Load data first: upload a CSV or Parquet file, or pick a sample dataset.")
    return table


def mapping_from(
    timestamp: str | None,
    series_id: str | None,
    target: str | None,
    role_lists: dict[str, list[str]],
) -> ColumnMapping:
    """The mapping chosen on the Data tab; UserError when it is incomplete or contradictory."""
    if not timestamp or not target:
        raise UserError("Choose the timestamp and the target column on the Data tab.")
    series = None if series_id in (None, "", NO_SERIES) else series_id
    chosen = [timestamp, target, *([series] if series else [])]
    if len(set(chosen)) < len(chosen):
        raise UserError("The timestamp, series id and target must be different columns.")
    try:
        roles = covariate_roles(role_lists, {timestamp, target, *([series] if series else [])})
    except ValueError as problem:
        raise UserError(str(problem)) from problem
    return ColumnMapping(timestamp=timestamp, target=target, series_id=series, covariates=roles)


def model_choices(client: ApiClient) -> tuple[list[tuple[str, str]], list[str], str]:
    """(label, id) choices, ready ids, and a Markdown table of every model with its status."""
    listing = client.models()
    choices, ready, lines = [], [], ["| model | status | note |", "|---|---|---|"]
    for entry in listing:
        model, status = str(entry.get("id")), str(entry.get("status", "unknown"))
        reason = entry.get("reason") or ""
        choices.append((model if status == "ready" else f"{model} ({status})", model))
        if status == "ready":
            ready.append(model)
        lines.append(f"| {plain(model)} | {plain(status)} | {plain(reason)} |")
    return choices, ready, "\n".join(lines)


def run_forecasts(
    client: ApiClient,
    table: Table,
    mapping: ColumnMapping,
    models: list[str],
    *,
    horizon: int,
    context_length: int | None,
    quantiles_text: str,
    freq: str | None,
    use_covariates: bool,
    calibrate: bool = False,
    progress: Any = None,
) -> tuple[ForecastRun, list[str], dict[str, Any]]:
    """Forecast with each model in turn: the run, readable errors per model, the last request."""
    if not models:
        raise UserError("Pick at least one model (Connect lists them).")
    try:
        quantiles = parse_quantiles(quantiles_text)
    except ValueError as problem:
        raise UserError(str(problem)) from problem
    run = ForecastRun(mapping=mapping, covariates_used=use_covariates and bool(mapping.covariates))
    failures: list[str] = []
    request: dict[str, Any] = {}
    for index, model in enumerate(models):
        if progress is not None:
            progress(index / len(models), desc=f"Forecasting with {model}")
        request = forecast_request(
            model,
            mapping,
            horizon=int(horizon),
            quantiles=quantiles,
            context_length=int(context_length) if context_length else None,
            freq=freq,
            use_covariates=use_covariates,
            calibrate=calibrate,
        )
        try:
            answer = client.forecast(request, *_upload(table))
        except ApiError as failure:
            failures.append(str(failure))
            continue
        run.forecasts[model] = forecast_frame(answer)
        run.extras[model] = {k: answer[k] for k in EXTRA_BLOCKS if answer.get(k)}
    return run, failures, request


def _upload(table: Table) -> tuple[str, bytes]:
    return table.file_name, table.content


def forecast_plot(table: Table, run: ForecastRun, series: str | None) -> go.Figure:
    mapping = run.mapping
    history, future = history_and_future(table.frame, mapping, series)
    id_column = mapping.series_id or "unique_id"
    forecasts = {}
    for model, frame in run.forecasts.items():
        if mapping.series_id is not None and series is not None and id_column in frame.columns:
            frame = frame[frame[id_column].astype(str) == series]
        forecasts[_label(model, frame)] = frame
    covariates = None
    numeric = [c for c, r in mapping.covariates.items() if r == "dynamic_numerical"]
    if run.covariates_used and numeric:
        covariates = pd.concat([history, future])[["ds", *numeric]]
    title = f"{mapping.target}" + (f" — {series}" if series else "")
    return forecast_figure(
        history[["ds", "y"]], forecasts, target=mapping.target, covariates=covariates, title=title
    )


def _label(model: str, frame: pd.DataFrame) -> str:
    """``auto`` names the model it chose for the plotted series: ``auto (auto-ets)``."""
    chosen = frame["model"].unique().tolist() if "model" in frame.columns else []
    return f"{model} ({chosen[0]})" if len(chosen) == 1 and chosen[0] != model else model


def export_outputs(
    base_url: str, table: Table, run: ForecastRun, request: dict[str, Any], *, keep_s: float
) -> tuple[str, str, str]:
    """(CSV path, curl, Python) for a finished run; the CSV is deleted after ``keep_s``."""
    path = write_csv(forecast_table(run.forecasts), table.file_name, keep_s=keep_s)
    models = list(run.forecasts)
    return (
        path,
        curl_snippet(base_url, request, table.file_name),
        python_snippet(base_url, request, table.file_name, models),
    )


def run_backtest(
    client: ApiClient,
    table: Table,
    mapping: ColumnMapping,
    models: list[str],
    *,
    horizon: int,
    n_windows: int,
    step: int | None,
    quantiles_text: str,
    use_covariates: bool,
    series: str | None,
) -> tuple[pd.DataFrame, go.Figure]:
    """Metrics per model and the overlay of one series' window forecasts against actuals."""
    if not models:
        raise UserError("Pick at least one model to compare.")
    try:
        quantiles = parse_quantiles(quantiles_text)
    except ValueError as problem:
        raise UserError(str(problem)) from problem
    body = backtest_request(
        models,
        mapping,
        table.frame,
        horizon=int(horizon),
        n_windows=int(n_windows),
        step=int(step) if step else None,
        quantiles=quantiles,
        use_covariates=use_covariates,
    )
    answer = client.backtest(body)
    metrics = pd.DataFrame(answer.get("metrics") or [])
    rows = forecast_frame(answer, "forecasts")
    # Backtest rows name the series ``unique_id`` whatever the table called it.
    id_column = next((c for c in ("unique_id", mapping.series_id) if c in rows.columns), None)
    if series is not None and id_column is not None:
        rows = rows[rows[id_column].astype(str) == series]
    title = f"Backtest: {mapping.target}" + (f" — {series}" if series else "")
    return metrics, backtest_figure(rows, target=mapping.target, title=title)


def role_lists(*values: list[str] | None) -> dict[str, list[str]]:
    """The four role pickers' values, in COVARIATE_ROLES order, as ``{role: [columns]}``."""
    return {role: list(v or []) for role, v in zip(COVARIATE_ROLES, values, strict=True)}


def failure_text(failures: list[str]) -> str:
    return "\n\n".join(error(f) for f in failures)
