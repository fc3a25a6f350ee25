"""The figures: trace names, nested bands, the covariate axis, backtest gaps, escaped names."""

from __future__ import annotations

import pandas as pd

from frontend.plots import anomalies_figure, backtest_figure, forecast_figure


def forecast(start: str, horizon: int, level: float) -> pd.DataFrame:
    ds = pd.date_range(start, periods=horizon, freq="MS")
    frame = pd.DataFrame({"ds": ds, "mean": level, "median": level})
    for q in (0.1, 0.3, 0.5, 0.7, 0.9):
        frame[f"q-{q}"] = level + (q - 0.5) * 10
    return frame


def test_history_median_and_nested_bands_per_model() -> None:
    history = pd.DataFrame({"ds": pd.date_range("2024-01-01", periods=12, freq="MS"), "y": 1.0})
    covariates = pd.DataFrame(
        {"ds": pd.date_range("2024-01-01", periods=15, freq="MS"), "<b>price</b>": 2.0}
    )
    figure = forecast_figure(
        history,
        {"auto-ets": forecast("2025-01-01", 3, 5), "<i>m</i>": forecast("2025-01-01", 3, 6)},
        target="sales",
        covariates=covariates,
        title="sales — <script>",
    )
    names = [t.name for t in figure.data]
    assert names == [
        "history",
        "auto-ets 10–90% (lower)", "auto-ets 10–90%", "auto-ets 30–70% (lower)", "auto-ets 30–70%",
        "auto-ets median",
        "&lt;i&gt;m&lt;/i&gt; 10–90% (lower)", "&lt;i&gt;m&lt;/i&gt; 10–90%",
        "&lt;i&gt;m&lt;/i&gt; 30–70% (lower)", "&lt;i&gt;m&lt;/i&gt; 30–70%",
        "&lt;i&gt;m&lt;/i&gt; median",
        "&lt;b&gt;price&lt;/b&gt; (covariate)",
    ]  # fmt: skip
    upper = figure.data[2]
    assert upper.fill == "tonexty" and list(upper.y) == [9.0, 9.0, 9.0]
    assert figure.data[-1].yaxis == "y2" and len(figure.data[-1].x) == 15
    assert figure.layout.yaxis2.overlaying == "y"
    assert figure.layout.xaxis.rangeslider.visible is True
    assert figure.layout.title.text == "sales — &lt;script&gt;"


def test_backtest_windows_are_not_joined() -> None:
    rows = []
    for cutoff, start in (("2024-03-01", "2024-04-01"), ("2024-05-01", "2024-06-01")):
        for ds in pd.date_range(start, periods=2, freq="MS"):
            for model in ("a", "b"):
                rows.append({"cutoff": cutoff, "ds": ds, "y": 1.0, "model": model, "mean": 2.0})
    figure = backtest_figure(pd.DataFrame(rows), target="y")
    assert [t.name for t in figure.data] == ["actual", "a", "b"]
    assert len(figure.data[0].x) == 4
    assert list(figure.data[1].y) == [2.0, 2.0, None, 2.0, 2.0, None]


def test_anomalies_are_marked_over_the_one_step_interval() -> None:
    ds = pd.date_range("2024-01-01", periods=6, freq="MS")
    history = pd.DataFrame({"ds": ds, "y": [1.0, 2.0, 1.0, 9.0, 1.0, 2.0]})
    points = pd.DataFrame(
        {
            "unique_id": "a", "ds": ds[2:], "y": [1.0, 9.0, 1.0, 2.0], "mean": 1.5,
            "lo": 0.0, "hi": 3.0, "anomaly": [False, True, False, False],
            "score": [0.0, 2.0, 0.0, 0.0],
        }
    )  # fmt: skip
    figure = anomalies_figure(history, points, level=99, target="<b>y</b>", title="t")
    names = [t.name for t in figure.data]
    assert names == [
        "actual", "99% one-step interval (lower)", "99% one-step interval",
        "one-step forecast", "anomaly",
    ]  # fmt: skip
    assert len(figure.data[0].x) == 6 and figure.data[2].fill == "tonexty"
    marked = figure.data[-1]
    assert list(marked.x) == [ds[3]] and list(marked.y) == [9.0]
    assert list(marked.customdata) == [2.0]
    assert figure.layout.yaxis.title.text == "&lt;b&gt;y&lt;/b&gt;"
