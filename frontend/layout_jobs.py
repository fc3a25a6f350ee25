"""The Jobs tab: a file too big to plot runs as a job on the cluster; its progress, cancel, result."""

from __future__ import annotations

from typing import Any

import gradio as gr

from frontend.events_jobs import DEFAULT_COLUMNS, JobEvents
from frontend.payloads import DEFAULT_QUANTILES

PRIVATE: dict[str, Any] = {"api_visibility": "private"}
TICK_S = 1.0


def jobs_tab(events: JobEvents, tab: gr.Tab) -> gr.Dropdown:
    """Builds the tab's components in the open tab and wires them; returns its model picker,
    which the connection fills in."""
    gr.Markdown(
        "For data too big to forecast here: the job runs on the cluster and the UI reads only the "
        "first rows of the file, to show its columns. Upload a file (up to the upload limit), or "
        "name a file that is already in the server's data directory, or a URL."
    )
    with gr.Row():
        upload = gr.File(
            label="Upload CSV or Parquet", file_types=[".csv", ".parquet"], elem_id="job-upload"
        )
        source = gr.Textbox(
            label="…or a file on the server (data directory path, URL, s3://)",
            elem_id="job-source",
        )
    file_message = gr.Markdown(elem_id="job-file-message")
    preview = gr.Dataframe(label="First rows", interactive=False, elem_id="job-preview")
    with gr.Row():
        id_column, ts_column, target_column = (
            gr.Dropdown(choices=[name], value=name, allow_custom_value=True, label=label,
                        elem_id=elem)
            for name, label, elem in zip(
                DEFAULT_COLUMNS,
                ("Series id column", "Timestamp column", "Target column"),
                ("job-series-id", "job-timestamp", "job-target"),
                strict=True,
            )
        )  # fmt: skip
    with gr.Row():
        kind = gr.Radio(["forecast", "backtest"], value="forecast", label="Job", elem_id="job-kind")
        models = gr.Dropdown(
            multiselect=True, label="Model (a backtest compares several)", elem_id="job-models"
        )
        horizon = gr.Number(12, label="Horizon", precision=0, minimum=1, elem_id="job-horizon")
        quantiles = gr.Textbox(DEFAULT_QUANTILES, label="Quantile levels")
        windows = gr.Number(3, label="Backtest windows", precision=0, minimum=1)
    submit = gr.Button("Submit job", variant="primary", elem_id="submit-job")
    message = gr.Markdown(elem_id="job-message")
    status = gr.Markdown(elem_id="job-status")
    with gr.Row():
        cancel = gr.Button("Cancel job", elem_id="cancel-job")
        file_format = gr.Radio(
            [("Parquet", "parquet"), ("CSV", "csv")], value="parquet", label="Result format",
            elem_id="job-format",
        )  # fmt: skip
        fetch = gr.Button("Get result", elem_id="fetch-job-result")
    result = gr.File(label="Result", interactive=False, elem_id="job-result")
    with gr.Row():
        pick = gr.Dropdown(label="Watch one of your jobs", elem_id="job-pick")
        refresh = gr.Button("Refresh list", size="sm", scale=0, elem_id="refresh-jobs")
    table = gr.Dataframe(label="Your jobs", interactive=False, elem_id="jobs-table")
    watched = gr.State(None)
    timer = gr.Timer(TICK_S, active=False)

    columns = [id_column, ts_column, target_column]
    upload.upload(events.on_job_file, [upload], [preview, file_message, *columns], **PRIVATE)
    submit.click(
        events.on_job_submit,
        [upload, source, *columns, kind, models, horizon, quantiles, windows],
        [message, watched, status, timer, table, pick],
        **PRIVATE,
    )
    # Quiet ticks: no spinner over the status every second.
    timer.tick(
        events.on_job_tick,
        [watched],
        [status, timer, table, pick],
        show_progress="hidden",
        **PRIVATE,
    )
    pick.input(events.on_job_pick, [pick], [watched, status, timer], **PRIVATE)
    cancel.click(events.on_job_cancel, [watched], [status, timer, table], **PRIVATE)
    fetch.click(events.on_job_fetch, [watched, file_format], [message, result], **PRIVATE)
    for trigger in (refresh.click, tab.select):
        trigger(events.on_jobs_list, None, [message, table, pick], **PRIVATE)
    return models
