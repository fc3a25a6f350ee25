"""The Gradio Blocks: Data, Forecast, Backtest, Anomalies and Jobs tabs, behind the login.

The Anomalies and Jobs tabs are built (and wired) in ``layout_anomalies`` and ``layout_jobs``."""

from __future__ import annotations

from typing import Any

import gradio as gr

from frontend.auth import Sessions
from frontend.columns import COVARIATE_ROLES
from frontend.events import Events
from frontend.events_anomalies import AnomalyEvents
from frontend.events_jobs import JobEvents
from frontend.layout_anomalies import anomalies_tab
from frontend.layout_jobs import jobs_tab
from frontend.payloads import DEFAULT_QUANTILES
from frontend.tables import sample_choices


def build_blocks(
    api_base_url: str,
    sessions: Sessions,
    *,
    max_upload_bytes: int,
    keep_files_s: int,
    sweep_every_s: int,
) -> gr.Blocks:
    """The whole UI; every call to the API goes to ``api_base_url`` with the signed-in key."""
    settings: dict[str, Any] = {
        "max_upload_bytes": max_upload_bytes, "keep_files_s": keep_files_s
    }  # fmt: skip
    events = Events(api_base_url, sessions, **settings)
    # delete_cache: uploads and downloads leave Gradio's cache ``keep_files_s`` after they were
    # written (the table itself lives on in the session's memory until the sign-in ends).
    with gr.Blocks(
        title="Sapheneia", analytics_enabled=False, delete_cache=(sweep_every_s, keep_files_s)
    ) as blocks:
        with gr.Row():
            gr.Markdown(
                "# Sapheneia\nUpload a table, map its columns, forecast, compare, find "
                "anomalies, download; run a file too big for the page as a job."
            )
            # Relative to the page (/ui/): Gradio's sign-out route, which also drops the key.
            gr.Button("Sign out", link="logout", size="sm", scale=0, elem_id="sign-out")
        status = gr.Markdown(elem_id="status")
        table_state = gr.State(None)
        run_state = gr.State(None)
        with gr.Tabs():
            with gr.Tab("Data", id="data"):
                with gr.Row():
                    upload = gr.File(
                        label="Upload CSV or Parquet",
                        file_types=[".csv", ".parquet"],
                        elem_id="upload",
                    )
                    sample = gr.Dropdown(
                        choices=sample_choices(),
                        value=None,
                        label="…or a sample dataset",
                        elem_id="sample",
                    )
                data_message = gr.Markdown(elem_id="data-message")
                preview = gr.Dataframe(label="Preview", interactive=False, elem_id="preview")
                with gr.Row():
                    timestamp = gr.Dropdown(label="Timestamp column", elem_id="timestamp")
                    series_id = gr.Dropdown(label="Series id column", elem_id="series-id")
                    target = gr.Dropdown(label="Target column", elem_id="target")
                gr.Markdown("Roles of the other columns; a column in none of them is ignored.")
                with gr.Row():
                    roles = [
                        gr.Dropdown(multiselect=True, label=role.replace("_", " "), elem_id=role)
                        for role in COVARIATE_ROLES
                    ]
                data_report = gr.Markdown(elem_id="data-report")
            with gr.Tab("Forecast", id="forecast"):
                models = gr.CheckboxGroup(label="Models", elem_id="models")
                models_table = gr.Markdown(elem_id="models-table")
                with gr.Row():
                    horizon = gr.Number(12, label="Horizon (steps)", precision=0, minimum=1)
                    context = gr.Number(
                        0, label="Context length (0: model default)", precision=0, minimum=0
                    )
                    quantiles = gr.Textbox(DEFAULT_QUANTILES, label="Quantile levels")
                    freq = gr.Textbox("", label="Frequency (blank: inferred)")
                with gr.Row():
                    use_covariates = gr.Checkbox(False, label="Use covariates")
                    calibrate = gr.Checkbox(
                        False,
                        label="Calibrate intervals (conformal, on each series' own history)",
                        elem_id="calibrate",
                    )
                    plot_series = gr.Dropdown(label="Series to plot", elem_id="plot-series")
                run = gr.Button("Forecast", variant="primary", elem_id="run-forecast")
                forecast_message = gr.Markdown(elem_id="forecast-message")
                plot = gr.Plot(label="Forecast", elem_id="forecast-plot")
                selection = gr.Dataframe(
                    label="Model chosen per series (auto, ensemble): lower score is better",
                    interactive=False, visible=False, elem_id="selection",
                )  # fmt: skip
                coverage = gr.Dataframe(
                    label="Coverage on the calibration windows, before and after calibrating",
                    interactive=False, visible=False, elem_id="coverage",
                )  # fmt: skip
                download = gr.DownloadButton(
                    "Download forecast (CSV)", interactive=False, elem_id="download"
                )
                with gr.Accordion("Copy as API request", open=False):
                    curl = gr.Code(label="curl", language="shell", elem_id="curl")
                    python = gr.Code(label="Python (httpx)", language="python", elem_id="python")
            with gr.Tab("Backtest", id="backtest"):
                backtest_models = gr.CheckboxGroup(
                    label="Models to compare", elem_id="backtest-models"
                )
                with gr.Row():
                    backtest_horizon = gr.Number(12, label="Horizon", precision=0, minimum=1)
                    windows = gr.Number(3, label="Windows", precision=0, minimum=1)
                    step = gr.Number(0, label="Step (0: horizon)", precision=0, minimum=0)
                    backtest_series = gr.Dropdown(label="Series to plot")
                run_backtest = gr.Button("Run backtest", variant="primary", elem_id="run-backtest")
                backtest_message = gr.Markdown(elem_id="backtest-message")
                metrics = gr.Dataframe(label="Metrics", interactive=False, elem_id="metrics")
                backtest_plot = gr.Plot(label="Forecasts against actuals", elem_id="backtest-plot")
            mapping_inputs = [table_state, timestamp, series_id, target, *roles]
            with gr.Tab("Anomalies", id="anomalies"):
                anomaly_model, anomaly_series = anomalies_tab(
                    AnomalyEvents(api_base_url, sessions, **settings), table_state, mapping_inputs
                )
            with gr.Tab("Jobs", id="jobs") as jobs:
                job_models = jobs_tab(JobEvents(api_base_url, sessions, **settings), jobs)

        loaded_outputs = [
            table_state, preview, timestamp, series_id, target, *roles,
            data_report, data_message, plot_series, backtest_series, anomaly_series,
        ]  # fmt: skip

        # The REST API is the programmatic interface; the UI's own endpoints stay private.
        private: dict[str, Any] = {"api_visibility": "private"}
        connected = [status, models, backtest_models, models_table, anomaly_model, job_models]
        blocks.load(events.on_connect, None, connected, **private)
        upload.upload(events.on_upload, [upload], loaded_outputs, **private)
        sample.input(events.on_sample, [sample], loaded_outputs, **private)
        remapped = [*roles, data_report, plot_series, backtest_series, anomaly_series]
        for picker in (timestamp, series_id, target):
            picker.input(events.on_mapping, mapping_inputs, remapped, **private)
        run.click(
            events.on_forecast,
            [*mapping_inputs, models, horizon, context, quantiles, freq,
             use_covariates, calibrate, plot_series],
            [forecast_message, plot, download, curl, python, run_state, selection, coverage],
            **private,
        )  # fmt: skip
        plot_series.input(
            events.on_plot_series, [table_state, run_state, plot_series], [plot], **private
        )
        run_backtest.click(
            events.on_backtest,
            [*mapping_inputs, backtest_models, backtest_horizon, windows, step,
             quantiles, use_covariates, backtest_series],
            [backtest_message, metrics, backtest_plot],
            **private,
        )  # fmt: skip
    return blocks
