"""The Anomalies tab: points outside a model's one-step interval, marked on the chart and listed."""

from __future__ import annotations

from typing import Any

import gradio as gr

from frontend.events_anomalies import AnomalyEvents

PRIVATE: dict[str, Any] = {"api_visibility": "private"}


def anomalies_tab(
    events: AnomalyEvents, table_state: gr.State, mapping_inputs: list[Any]
) -> tuple[gr.Dropdown, gr.Dropdown]:
    """Builds the tab's components in the open tab and wires them; returns its model and series
    pickers, which the Data tab and the connection fill in."""
    gr.Markdown(
        "Each point is forecast one step ahead from the history before it; a point outside the "
        "model's central interval is flagged. Uses the table and columns of the Data tab."
    )
    with gr.Row():
        model = gr.Dropdown(label="Model", elem_id="anomaly-model")
        level = gr.Number(99, label="Interval (%)", minimum=0.1, maximum=99.9, elem_id="level")
        last_n = gr.Number(
            0, label="Points tested per series (0: as many as the server allows)", precision=0,
            minimum=0, elem_id="last-n",
        )  # fmt: skip
        series = gr.Dropdown(label="Series to plot", elem_id="anomaly-series")
    run = gr.Button("Find anomalies", variant="primary", elem_id="run-anomalies")
    message = gr.Markdown(elem_id="anomalies-message")
    plot = gr.Plot(label="Anomalies", elem_id="anomalies-plot")
    flagged = gr.Dataframe(
        label="Flagged points, most anomalous first (score: distance outside the interval, in "
        "interval widths)",
        interactive=False,
        elem_id="anomalies-table",
    )
    download = gr.DownloadButton(
        "Download every tested point (CSV)", interactive=False, elem_id="anomalies-download"
    )
    run_state = gr.State(None)
    run.click(
        events.on_anomalies,
        [*mapping_inputs[:4], model, level, last_n, series],
        [message, plot, flagged, download, run_state],
        **PRIVATE,
    )
    series.input(events.on_anomaly_series, [table_state, run_state, series], [plot], **PRIVATE)
    return model, series
