"""The Jobs tab's pure parts: a file's first rows (never the whole file), a job's progress as text,
the list of jobs as a table.

A job's file may be too big for the UI replica to parse: only its first ``HEAD_ROWS`` rows (and,
for Parquet, the row count from its footer) are read, to show the columns to map.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.parquet as pq

from frontend.tables import DataError
from frontend.text import error, plain

HEAD_ROWS = 20
TERMINAL = ("succeeded", "failed", "cancelled")
JOBS_COLUMNS = ["job", "kind", "models", "status", "series", "rows written", "submitted", "seconds"]


@dataclass(frozen=True)
class FileHead:
    """The first rows of a file, its size, and its row count where the format says it cheaply."""

    frame: pd.DataFrame
    name: str
    size_bytes: int
    rows: int | None


def file_head(path: str, rows: int = HEAD_ROWS) -> FileHead:
    """The first ``rows`` rows of a CSV or Parquet file; DataError when it is neither."""
    source = Path(path)
    suffix = source.suffix.lower()
    try:
        if suffix in {".parquet", ".pq"}:
            parquet = pq.ParquetFile(source)
            batch = next(parquet.iter_batches(batch_size=rows), None)
            frame = batch.to_pandas() if batch is not None else pd.DataFrame()
            total: int | None = parquet.metadata.num_rows
        elif suffix in {".csv", ".txt"}:
            frame, total = pd.read_csv(source, nrows=rows), None
        else:
            raise DataError(f"'{source.name}' is neither CSV nor Parquet (.csv, .parquet)")
    except (ValueError, OSError, pd.errors.ParserError) as problem:
        if isinstance(problem, DataError):
            raise
        raise DataError(f"cannot read '{source.name}': {type(problem).__name__}") from problem
    frame.columns = [str(c) for c in frame.columns]
    return FileHead(frame.head(rows), source.name, source.stat().st_size, total)


def head_text(head: FileHead) -> str:
    """What the Jobs tab says about an uploaded file (escaped Markdown)."""
    size = f"{head.size_bytes / 2**20:.1f} MiB" if head.size_bytes >= 2**20 else "under 1 MiB"
    rows = f"{head.rows:,} rows, " if head.rows is not None else ""
    return plain(
        f"{head.name}: {rows}{size}. Showing its first {len(head.frame)} rows only: the job "
        "reads the whole file on the cluster."
    )


def _count(progress: dict[str, Any], key: str) -> int:
    return int(progress.get(key) or 0)


def progress_text(view: dict[str, Any]) -> str:
    """A job's status line (escaped Markdown): status, series done of total, rows, time, error."""
    progress = view.get("progress") or {}
    done, total = _count(progress, "series_done"), _count(progress, "series_total")
    status = str(view.get("status"))
    parts = [f"{view.get('job_id')} ({view.get('kind')}, {', '.join(view.get('models') or [])})"]
    parts.append(status)
    if total:
        parts.append(f"{done:,} of {total:,} series ({100 * done / total:.0f}%)")
    parts.append(f"{_count(progress, 'rows_written'):,} rows written")
    failed = _count(progress, "series_failed")
    if failed:
        parts.append(f"{failed:,} series failed")
    if view.get("duration_seconds") is not None:
        parts.append(f"{float(view['duration_seconds']):.1f} s")
    text = plain(": ".join(parts[:2]) + (", " + ", ".join(parts[2:]) if parts[2:] else ""))
    problem = view.get("error")
    if isinstance(problem, dict) and problem.get("message"):
        text += "\n\n" + error(f"{problem['message']} ({problem.get('code')})")
    if status == "succeeded":
        text += "\n\n" + plain("Done: download the result below.")
    return text


def is_finished(view: dict[str, Any]) -> bool:
    return view.get("status") in TERMINAL


def jobs_table(views: list[dict[str, Any]]) -> pd.DataFrame:
    """The caller's jobs, newest first, one row each."""
    rows = []
    for view in views:
        progress = view.get("progress") or {}
        total = _count(progress, "series_total")
        rows.append(
            [
                view.get("job_id"),
                view.get("kind"),
                ", ".join(view.get("models") or []),
                view.get("status"),
                f"{_count(progress, 'series_done')} / {total}" if total else "",
                _count(progress, "rows_written"),
                str(view.get("submitted_at") or "")[:19].replace("T", " "),
                view.get("duration_seconds"),
            ]
        )
    return pd.DataFrame(rows, columns=JOBS_COLUMNS)


def result_name(job_id: str, file_format: str) -> str:
    return f"{job_id}.{'csv' if file_format == 'csv' else 'parquet'}"
