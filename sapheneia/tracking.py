"""A backtest or a model selection ('auto' / 'ensemble') recorded as one MLflow run.

A run holds the parameters (models, horizon, windows, metric, quantiles, series count), one metric
per model and score (``auto-ets/MASE``), the scores per series as a table artifact
(``series_metrics.json``) and the forecast as ``forecast.csv``. Series ids are the caller's text,
so they go in the table, not in metric names (which MLflow restricts).

MLflow is an optional extra (``pip install 'sapheneia[mlflow]'``) imported only here, when a run is
written. Runs go through ``MlflowClient`` with an explicit tracking URI, never through mlflow's
process-wide active run, so the threads of one server log runs side by side.
"""

from __future__ import annotations

import logging
import math
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from sapheneia.errors import InvalidInput, TrackingUnavailable
from sapheneia.evaluation import BacktestPlan, BacktestReport
from sapheneia.selection import Selection, series_scores
from sapheneia.tasks import ForecastResult

logger = logging.getLogger(__name__)

EXTRA = "pip install 'sapheneia[mlflow]'"
SERIES_TABLE = "series_metrics.json"
FORECAST_FILE = "forecast.csv"


class TrackingTarget(BaseModel):
    """Where runs go: an MLflow tracking URI and the experiment (created when missing)."""

    model_config = ConfigDict(extra="forbid")

    uri: str = Field(min_length=1, description="MLflow tracking URI (http(s)://, sqlite:, file:).")
    experiment: str = Field(default="sapheneia", min_length=1, description="Experiment name.")


def require_mlflow() -> Any:
    """The ``mlflow`` module, or an error naming the extra that provides it."""
    try:
        import mlflow
    except ImportError as error:
        raise TrackingUnavailable(f"MLflow tracking needs the 'mlflow' extra: {EXTRA}") from error
    return mlflow


def require_target(target: TrackingTarget | None) -> TrackingTarget:
    """The server's target for a request with ``track``; a 400 naming the setting when off."""
    if target is None:
        raise InvalidInput(
            "'track' is true, but MLflow tracking is off on this server: the operator sets "
            "SAPHENEIA_MLFLOW_TRACKING_URI to turn it on; send without 'track'"
        )
    return target


def log_backtest(
    target: TrackingTarget,
    plan: BacktestPlan,
    scored: BacktestReport,
    *,
    step: int,
    tags: Mapping[str, str] | None = None,
) -> str:
    """One run for a backtest; its id. ``scored`` is ``evaluation.report``'s, before any change
    to its tables (the per-series scores match windows by their cutoff timestamps)."""
    models = [str(m) for m in scored.metrics["model"]]
    series = [
        series_scores(plan, scored.forecasts, metric)
        .rename_axis("unique_id")
        .reset_index()
        .melt(id_vars="unique_id", var_name="model", value_name=metric)
        for metric in ("MASE", "WQL")
    ]
    metrics = {
        f"{row['model']}/{name}": value
        for row in scored.metrics.to_dict(orient="records")
        for name, value in row.items()
        if name != "model"
    }
    return _log(
        target,
        name="backtest",
        params={
            "kind": "backtest",
            "models": ",".join(models),
            **_plan_params(plan),
            "step": step,
        },
        metrics=metrics,
        series=series[0].merge(series[1], on=["unique_id", "model"]),
        forecast=scored.forecasts,
        tags=tags,
    )


def log_selection(
    target: TrackingTarget,
    plan: BacktestPlan,
    chosen: Selection,
    *,
    mode: str,
    metric: str,
    k: int,
    quantiles: Sequence[float],
    answered: Sequence[ForecastResult] | None = None,
    tags: Mapping[str, str] | None = None,
) -> str:
    """One run for a model selection (``mode`` 'auto' or 'ensemble'); its id. Per candidate, the
    mean of its series' scores (``auto-ets/MASE``) and the series it was chosen for
    (``auto-ets/series_selected``). ``answered``: the forecasts sent back, where they are not
    ``chosen.final`` (calibrated)."""
    scores = chosen.scores
    candidates = [str(c) for c in scores.columns]
    selected = [str(entry["selected_model"]) for entry in chosen.entries]
    metrics: dict[str, float] = {}
    for model in candidates:
        metrics[f"{model}/{metric}"] = float(scores[model].mean())
        metrics[f"{model}/series_selected"] = float(selected.count(model))
    series = scores.rename_axis("unique_id").reset_index()
    series["selected_model"] = selected
    if mode == "ensemble":
        series["members"] = [",".join(map(str, e["members"])) for e in chosen.entries]  # type: ignore[call-overload]
    forecast = pd.concat(
        [r.to_frame(m) for r, m in zip(answered or chosen.final, chosen.models, strict=True)],
        ignore_index=True,
    )
    params: dict[str, object] = {
        "kind": mode,
        "candidates": ",".join(candidates),
        **_plan_params(plan),
        "metric": metric,
        "quantiles": ",".join(f"{q:g}" for q in sorted(set(quantiles))),
    }
    if mode == "ensemble":
        params["k"] = k
    return _log(
        target,
        name=mode,
        params=params,
        metrics=metrics,
        series=series,
        forecast=forecast,
        tags=tags,
    )


def _plan_params(plan: BacktestPlan) -> dict[str, object]:
    first = plan.tasks[0][0]
    return {
        "horizon": first.horizon,
        "windows": len(plan.windows),
        "quantiles": ",".join(f"{q:g}" for q in first.quantiles),
        "series_count": len(plan.tasks[0]),
        "freq": plan.freq,
    }


def _log(
    target: TrackingTarget,
    *,
    name: str,
    params: Mapping[str, object],
    metrics: Mapping[str, float],
    series: pd.DataFrame,
    forecast: pd.DataFrame,
    tags: Mapping[str, str] | None,
) -> str:
    mlflow = require_mlflow()
    from mlflow.entities import Metric, Param
    from mlflow.tracking import MlflowClient

    now = int(time.time() * 1000)
    try:
        client = MlflowClient(tracking_uri=target.uri)  # opens the store: it can fail already
        run = client.create_run(
            _experiment_id(client, target.experiment), run_name=name, tags=dict(tags or {})
        )
        run_id: str = run.info.run_id
        client.log_batch(
            run_id,
            params=[Param(key, str(value)) for key, value in params.items()],
            # An undefined score (NaN) is left out here; the series table keeps it as null.
            metrics=[
                Metric(key, float(value), now, 0)
                for key, value in metrics.items()
                if math.isfinite(value)
            ],
        )
        client.log_table(run_id, series, SERIES_TABLE)
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / FORECAST_FILE
            forecast.to_csv(path, index=False)
            client.log_artifact(run_id, str(path))
        client.set_terminated(run_id)
    except (mlflow.exceptions.MlflowException, OSError) as error:
        # The store's message can hold its address or paths: the log has it, the caller not.
        logger.warning("MLflow run not recorded", exc_info=error)
        raise TrackingUnavailable(
            "the MLflow tracking store did not record the run; retry later, or send without 'track'"
        ) from error
    return run_id


def _experiment_id(client: Any, name: str) -> str:
    experiment = client.get_experiment_by_name(name)
    if experiment is not None:
        return str(experiment.experiment_id)
    mlflow = require_mlflow()
    try:
        return str(client.create_experiment(name))
    except mlflow.exceptions.MlflowException:
        # Another thread or replica created it first.
        experiment = client.get_experiment_by_name(name)
        if experiment is None:
            raise
        return str(experiment.experiment_id)
