"""The Anomalies tab's event handlers: find the points outside a model's one-step interval, chart
one series with them marked, list and download them."""

from __future__ import annotations

from typing import Any

import gradio as gr

from frontend import handlers as h
from frontend.anomalies import AnomalyRun, anomalies_plot, most_flagged, run_anomalies, summary
from frontend.export import write_csv
from frontend.payloads import Table
from frontend.reports import flagged_points
from frontend.signed_in import SignedIn, readable
from frontend.text import plain

# Gradio finds the progress tracker by a positional parameter whose default is a Progress.
PROGRESS = gr.Progress()


class AnomalyEvents(SignedIn):
    def on_anomalies(
        self, request: gr.Request, table: Table | None, ts: str, sid: str, tgt: str,
        model: str | None, level: float, last_n: int, series: str | None,
        progress: Any = PROGRESS,
    ) -> tuple[Any, ...]:  # fmt: skip
        """Message, chart, flagged points, download of every tested point, the run."""
        try:
            client = self.client(request)  # MissingKey: no request
            table = h.require_table(table)
            mapping = h.mapping_from(ts, sid, tgt, h.role_lists(None, None, None, None))
            progress(0.1, desc=f"One-step forecasts with {model}")
            with client:
                run = run_anomalies(client, table, mapping, model, level=level, last_n=last_n)
        except Exception as problem:
            return (readable(problem), *(gr.skip(),) * 4)
        message = summary(run)
        busiest = most_flagged(run)
        if mapping.series_id is not None and busiest is not None and busiest != series:
            message += "\n\n" + plain(f"Most flagged points: series {busiest}.")
        tested = run.points.rename(columns={"unique_id": mapping.series_id or "unique_id"})
        path = write_csv(tested, table.file_name, keep_s=self.keep_files_s, suffix="anomalies")
        return (
            message,
            anomalies_plot(table, run, series),
            flagged_points(run.points),
            gr.DownloadButton(value=path, interactive=True),
            run,
        )

    def on_anomaly_series(
        self, table: Table | None, run: AnomalyRun | None, series: str | None
    ) -> Any:
        if table is None or run is None:
            return gr.skip()
        return anomalies_plot(table, run, series)
