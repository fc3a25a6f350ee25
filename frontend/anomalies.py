"""What the Anomalies tab does: ask the API which points leave a model's one-step interval, then
chart one series with its flagged points and list every flagged point."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd
import plotly.graph_objects as go

from frontend.api_client import ApiClient
from frontend.columns import ColumnMapping
from frontend.handlers import UserError
from frontend.payloads import Table, anomalies_request
from frontend.plots import anomalies_figure
from frontend.reports import anomaly_points
from frontend.tables import history_and_future
from frontend.text import plain


@dataclass(frozen=True)
class AnomalyRun:
    """One click of Find anomalies, kept in the session for re-plotting another series."""

    mapping: ColumnMapping
    model: str
    level: float
    points: pd.DataFrame  # reports.anomaly_points: every tested point of every series
    metadata: dict[str, Any]


def run_anomalies(
    client: ApiClient,
    table: Table,
    mapping: ColumnMapping,
    model: str | None,
    *,
    level: float,
    last_n: int | None,
    freq: str | None = None,
) -> AnomalyRun:
    if not model:
        raise UserError("Pick the model whose one-step intervals test the points.")
    try:
        body = anomalies_request(
            model, mapping, level=float(level or 0), last_n=int(last_n or 0) or None, freq=freq
        )
    except ValueError as problem:
        raise UserError(str(problem)) from problem
    answer = client.anomalies(body, table.file_name, table.content)
    points = anomaly_points(answer, body["id_column"])
    return AnomalyRun(mapping, str(answer.get("model") or model), body["level"], points,
                      dict(answer.get("metadata") or {}))  # fmt: skip


def summary(run: AnomalyRun) -> str:
    """One line (escaped Markdown): points flagged of points tested, per how many series."""
    points = run.points
    flagged = int(points["anomaly"].sum())
    series = points["unique_id"].nunique()
    per_series = run.metadata.get("points_per_series")
    tested = f"{per_series} points per series" if per_series else f"{len(points)} points"
    return plain(
        f"Anomalies with {run.model}: {flagged} of {len(points)} points outside the "
        f"{run.level:g}% one-step interval ({series} series, the latest {tested})."
    )


def anomalies_plot(table: Table, run: AnomalyRun, series: str | None) -> go.Figure:
    """The chosen series' history, interval and flagged points."""
    mapping = run.mapping
    history, _ = history_and_future(table.frame, mapping, series)
    points = run.points
    if mapping.series_id is not None and series is not None:
        points = points[points["unique_id"] == series]
    title = f"Anomalies: {mapping.target}" + (f" — {series}" if series else "")
    return anomalies_figure(
        history[["ds", "y"]], points, level=run.level, target=mapping.target, title=title
    )


def most_flagged(run: AnomalyRun) -> str | None:
    """The series with the most flagged points (the first by name on a tie), or None."""
    flagged = run.points[run.points["anomaly"]]
    if flagged.empty:
        return None
    counts = flagged.groupby("unique_id").size()
    return str(counts[counts == counts.max()].index.min())
