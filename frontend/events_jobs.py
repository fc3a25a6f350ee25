"""The Jobs tab's event handlers: submit a file (uploaded, or named on the server) as a job,
follow its progress on a timer, cancel it, download its result, list the caller's jobs.

The UI never parses a job's file in full: it reads its first rows to show the columns, and streams
the file to the API from disk. The result is streamed from the API to disk, never held in memory.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gradio as gr

from frontend import handlers as h
from frontend.api_client import ApiError, MissingKey
from frontend.columns import detect_mapping
from frontend.export import download_folder
from frontend.jobs import file_head, head_text, is_finished, jobs_table, progress_text, result_name
from frontend.payloads import job_request, parse_quantiles
from frontend.signed_in import SignedIn, readable
from frontend.text import plain

DEFAULT_COLUMNS = ("unique_id", "ds", "y")
RETRIED = (429, 500, 502, 503, 504)


def _job_choices(views: list[dict[str, Any]], value: str | None = None) -> Any:
    choices = [(f"{v['job_id']} ({v['status']})", str(v["job_id"])) for v in views]
    return gr.Dropdown(choices=choices, value=value) if value else gr.Dropdown(choices=choices)


def passing(problem: Exception) -> bool:
    """A failure worth another tick (the API busy, restarting, unreachable for a moment); a
    refusal (signed out, no such job) is not."""
    if not isinstance(problem, ApiError) or isinstance(problem, MissingKey):
        return False
    if problem.status is None:
        return problem.code is None  # no answer at all (timeout, refused connection)
    return problem.status in RETRIED


def _ticking(view: dict[str, Any] | None) -> Any:
    """The progress timer: ticking while the watched job may still change (no job: stopped)."""
    return gr.Timer(active=view is not None and not is_finished(view))


class JobEvents(SignedIn):
    def on_job_file(self, request: gr.Request, path: str | None) -> tuple[Any, ...]:
        """Preview (first rows only), message, and the id / timestamp / target pickers."""
        if not path:
            return ("", "", *(gr.skip(),) * 3)
        try:
            self._key(request)
            head = file_head(path)
        except Exception as problem:
            return (gr.skip(), readable(problem), *(gr.skip(),) * 3)
        columns = list(head.frame.columns)
        found = detect_mapping(head.frame) if len(head.frame) else None
        picked = (
            ((found.series_id or h.NO_SERIES), found.timestamp, found.target)
            if found
            else DEFAULT_COLUMNS
        )
        choices = [[h.NO_SERIES, *columns], columns, columns]
        return (
            head.frame,
            head_text(head),
            *(gr.Dropdown(choices=c, value=v) for c, v in zip(choices, picked, strict=True)),
        )

    def on_job_submit(
        self, request: gr.Request, path: str | None, source: str, sid: str, ts: str, tgt: str,
        kind: str, models: list[str], horizon: int, quantiles: str, windows: int,
    ) -> tuple[Any, ...]:  # fmt: skip
        """Message, the watched job id, its status, the timer, the jobs table and picker."""
        try:
            client = self.client(request)
            named = (source or "").strip()
            if named and path:
                raise h.UserError(
                    "Either upload a file or name one on the server, not both: clear one of them."
                )
            if not named and not path:
                raise h.UserError(
                    "Upload a CSV or Parquet file, or name a file in the server's data directory."
                )
            series_id = "" if sid in (None, h.NO_SERIES) else sid
            try:
                body = job_request(
                    kind, list(models or []), (series_id, ts, tgt), horizon=int(horizon or 0),
                    quantiles=parse_quantiles(quantiles), n_windows=int(windows or 0) or None,
                    source=named or None,
                )  # fmt: skip
            except ValueError as problem:
                raise h.UserError(str(problem)) from problem
            with client:
                if named:
                    created = client.submit_job(body)
                else:
                    with Path(str(path)).open("rb") as upload:
                        created = client.submit_job(body, (Path(str(path)).name, upload))
                view = client.job(created["job_id"])
                views = client.jobs()
        except Exception as problem:
            return (readable(problem), *(gr.skip(),) * 5)
        job_id = str(created["job_id"])
        return (
            plain(f"Submitted {job_id}."),
            job_id,
            progress_text(view),
            _ticking(view),
            jobs_table(views),
            _job_choices(views, job_id),
        )

    def on_job_tick(self, request: gr.Request, job_id: str | None) -> tuple[Any, ...]:
        """The watched job's status and the timer; the jobs table and picker once it has ended."""
        if not job_id:
            return gr.skip(), _ticking(None), gr.skip(), gr.skip()
        try:
            with self.client(request) as client:
                view = client.job(job_id)
                views = client.jobs() if is_finished(view) else None
        except Exception as problem:
            return readable(problem), gr.Timer(active=passing(problem)), gr.skip(), gr.skip()
        if views is None:
            return progress_text(view), _ticking(view), gr.skip(), gr.skip()
        return progress_text(view), _ticking(view), jobs_table(views), _job_choices(views, job_id)

    def on_job_pick(self, request: gr.Request, job_id: str | None) -> tuple[Any, ...]:
        """Watch another of the caller's jobs: the job id, its status, the timer."""
        if not job_id:
            return gr.skip(), gr.skip(), gr.skip()
        try:
            with self.client(request) as client:
                view = client.job(job_id)
        except Exception as problem:
            return gr.skip(), readable(problem), gr.skip()
        return job_id, progress_text(view), _ticking(view)

    def on_job_cancel(self, request: gr.Request, job_id: str | None) -> tuple[Any, ...]:
        """Status after the cancel, the timer, the jobs table."""
        try:
            if not job_id:
                raise h.UserError("No job to cancel: submit one or pick one from the list.")
            with self.client(request) as client:
                view = client.cancel_job(job_id)
                views = client.jobs()
        except Exception as problem:
            return readable(problem), gr.skip(), gr.skip()
        return progress_text(view), _ticking(view), jobs_table(views)

    def on_job_fetch(
        self, request: gr.Request, job_id: str | None, file_format: str
    ) -> tuple[Any, ...]:
        """Message and the result file, streamed from the API to the UI's download folder."""
        try:
            if not job_id:
                raise h.UserError("No job: submit one or pick one from the list.")
            fmt = "csv" if file_format == "csv" else "parquet"
            path = download_folder(self.keep_files_s) / result_name(job_id, fmt)
            with self.client(request) as client:
                size = client.download_result(job_id, fmt, path)
        except Exception as problem:
            return readable(problem), gr.skip()
        return plain(f"Result of {job_id}: {size:,} bytes, ready to save."), str(path)

    def on_jobs_list(self, request: gr.Request) -> tuple[Any, ...]:
        """Message (only on failure), the jobs table and the job picker."""
        try:
            with self.client(request) as client:
                views = client.jobs()
        except Exception as problem:
            return readable(problem), gr.skip(), gr.skip()
        return gr.skip(), jobs_table(views), _job_choices(views)
