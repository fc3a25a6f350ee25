"""Plotly figures: history, median forecasts with nested quantile bands, backtest overlays,
anomalies against their one-step intervals.

Plotly renders a subset of HTML in names and titles, so every user-supplied name is escaped.
"""

from __future__ import annotations

import html

import pandas as pd
import plotly.graph_objects as go
from plotly.colors import qualitative

from frontend.payloads import quantile_columns

PALETTE = qualitative.Plotly
HISTORY_COLOR = "#444444"
ANOMALY_COLOR = "#d62728"


def _rgba(hex_color: str, alpha: float) -> str:
    red, green, blue = (int(hex_color.lstrip("#")[i : i + 2], 16) for i in (0, 2, 4))
    return f"rgba({red},{green},{blue},{alpha})"


def bands(levels: list[float]) -> list[tuple[float, float]]:
    """Symmetric pairs present in ``levels``, widest first: [(0.1, 0.9), (0.3, 0.7)]."""
    present = {round(q, 6) for q in levels}
    return [(q, round(1 - q, 6)) for q in sorted(present) if q < 0.5 and round(1 - q, 6) in present]


def _percent(q: float) -> str:
    return f"{q * 100:g}"


def _center(frame: pd.DataFrame) -> str:
    return "median" if "median" in frame.columns else "q-0.5" if "q-0.5" in frame else "mean"


def forecast_figure(
    history: pd.DataFrame,
    forecasts: dict[str, pd.DataFrame],
    *,
    target: str,
    covariates: pd.DataFrame | None = None,
    title: str = "",
) -> go.Figure:
    """History (``ds``, ``y``) and, per model, the median and each band as a filled pair.

    ``forecasts``: model -> frame of one series with ``ds``, ``median``/``mean`` and ``q-<level>``
    columns. ``covariates``: ``ds`` plus numerical columns, drawn on a second y axis.
    """
    figure = go.Figure()
    figure.add_trace(
        go.Scatter(
            x=history["ds"],
            y=history["y"],
            name="history",
            mode="lines",
            line={"color": HISTORY_COLOR},
        )
    )
    alphas = [0.15, 0.3, 0.45]
    for index, (model, frame) in enumerate(forecasts.items()):
        color = PALETTE[index % len(PALETTE)]
        label = html.escape(model)
        columns = quantile_columns(frame)
        for depth, (low, high) in enumerate(bands(list(columns))):
            band = f"{label} {_percent(low)}–{_percent(high)}%"
            group = f"{model}-{low}"
            figure.add_trace(
                go.Scatter(
                    x=frame["ds"],
                    y=frame[columns[low]],
                    mode="lines",
                    line={"width": 0},
                    legendgroup=group,
                    showlegend=False,
                    name=f"{band} (lower)",
                    hoverinfo="skip",
                )
            )
            figure.add_trace(
                go.Scatter(
                    x=frame["ds"],
                    y=frame[columns[high]],
                    mode="lines",
                    line={"width": 0},
                    fill="tonexty",
                    fillcolor=_rgba(color, alphas[min(depth, len(alphas) - 1)]),
                    legendgroup=group,
                    name=band,
                )
            )
        figure.add_trace(
            go.Scatter(
                x=frame["ds"],
                y=frame[_center(frame)],
                name=f"{label} median",
                mode="lines",
                line={"color": color, "width": 2},
            )
        )
    if covariates is not None:
        for column in [c for c in covariates.columns if c != "ds"]:
            figure.add_trace(
                go.Scatter(
                    x=covariates["ds"],
                    y=covariates[column],
                    name=f"{html.escape(str(column))} (covariate)",
                    mode="lines",
                    line={"dash": "dot", "width": 1},
                    yaxis="y2",
                )
            )
        figure.update_layout(
            yaxis2={"title": {"text": "covariates"}, "overlaying": "y", "side": "right"}
        )
    _finish(figure, title, target)
    return figure


def backtest_figure(forecasts: pd.DataFrame, *, target: str, title: str = "") -> go.Figure:
    """Actuals and each model's mean per window (``cutoff``), with gaps between windows."""
    figure = go.Figure()
    actuals = forecasts.drop_duplicates("ds").sort_values("ds")
    figure.add_trace(
        go.Scatter(
            x=actuals["ds"],
            y=actuals["y"],
            name="actual",
            mode="lines+markers",
            line={"color": HISTORY_COLOR},
        )
    )
    for index, (model, rows) in enumerate(forecasts.groupby("model", sort=True)):
        xs: list[object] = []
        ys: list[object] = []
        # One trace per model; a None between windows keeps them from being joined.
        for _, window in rows.sort_values("ds").groupby("cutoff", sort=True):
            xs += [*window["ds"], None]
            ys += [*window[_center(window)], None]
        figure.add_trace(
            go.Scatter(
                x=xs,
                y=ys,
                name=html.escape(str(model)),
                mode="lines",
                line={"color": PALETTE[index % len(PALETTE)]},
                connectgaps=False,
            )
        )
    _finish(figure, title, target)
    return figure


def anomalies_figure(
    history: pd.DataFrame, points: pd.DataFrame, *, level: float, target: str, title: str = ""
) -> go.Figure:
    """History (``ds``, ``y``), the one-step ``level`` % interval (``lo``-``hi``) and ``mean`` over
    the tested points, and the flagged points (``anomaly``) as markers whose hover shows ``score``.
    """
    figure = go.Figure()
    figure.add_trace(
        go.Scatter(
            x=history["ds"], y=history["y"], name="actual", mode="lines",
            line={"color": HISTORY_COLOR},
        )
    )  # fmt: skip
    tested = points.sort_values("ds")
    band = f"{level:g}% one-step interval"
    figure.add_trace(
        go.Scatter(
            x=tested["ds"], y=tested["lo"], mode="lines", line={"width": 0}, legendgroup="band",
            showlegend=False, name=f"{band} (lower)", hoverinfo="skip",
        )
    )  # fmt: skip
    figure.add_trace(
        go.Scatter(
            x=tested["ds"], y=tested["hi"], mode="lines", line={"width": 0}, fill="tonexty",
            fillcolor=_rgba(PALETTE[0], 0.25), legendgroup="band", name=band,
        )
    )  # fmt: skip
    figure.add_trace(
        go.Scatter(
            x=tested["ds"], y=tested["mean"], name="one-step forecast", mode="lines",
            line={"color": PALETTE[0], "dash": "dot", "width": 1},
        )
    )  # fmt: skip
    flagged = tested[tested["anomaly"]]
    figure.add_trace(
        go.Scatter(
            x=flagged["ds"], y=flagged["y"], name="anomaly", mode="markers",
            marker={"color": ANOMALY_COLOR, "size": 11, "symbol": "x"},
            customdata=flagged["score"], hovertemplate="anomaly: %{y} (score %{customdata:.2f})",
        )
    )  # fmt: skip
    _finish(figure, title, target)
    return figure


def _finish(figure: go.Figure, title: str, target: str) -> None:
    figure.update_layout(
        title={"text": html.escape(title)},
        yaxis={"title": {"text": html.escape(target)}},
        hovermode="x unified",
        legend={"orientation": "h", "yanchor": "bottom", "y": 1.02, "xanchor": "right", "x": 1},
        margin={"l": 60, "r": 60, "t": 80, "b": 40},
        height=520,
    )
    figure.update_xaxes(rangeslider={"visible": True})
