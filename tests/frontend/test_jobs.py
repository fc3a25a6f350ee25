"""The Jobs tab's pure parts: a file's first rows only, progress as text, the jobs table, when
the progress timer keeps ticking."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from frontend.api_client import ApiError, MissingKey, job_path
from frontend.events_jobs import passing
from frontend.jobs import file_head, head_text, is_finished, jobs_table, progress_text, result_name
from frontend.tables import DataError

ROWS = 50_000


def long_frame(rows: int = ROWS) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "unique_id": [f"s{i // 100}" for i in range(rows)],
            "ds": pd.date_range("2000-01-01", periods=rows, freq="D").strftime("%Y-%m-%d"),
            "y": range(rows),
        }
    )


def test_only_the_first_rows_are_read(tmp_path: Path) -> None:
    frame = long_frame()
    csv, parquet = tmp_path / "big.csv", tmp_path / "big.parquet"
    frame.to_csv(csv, index=False)
    # Row groups of 1,000 rows: the first batch comes from the first group alone.
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), parquet, row_group_size=1000)
    for path, rows in ((csv, None), (parquet, ROWS)):
        head = file_head(str(path), rows=20)
        assert head.frame.shape == (20, 3) and list(head.frame.columns) == ["unique_id", "ds", "y"]
        assert head.frame["y"].tolist() == list(range(20))
        assert (head.name, head.rows, head.size_bytes) == (path.name, rows, path.stat().st_size)
    text = head_text(file_head(str(parquet)))
    assert text.startswith("big.parquet: 50,000 rows, under 1 MiB. Showing its first 20 rows only")


def test_files_that_are_not_tables_are_refused(tmp_path: Path) -> None:
    (tmp_path / "notes.txt.gz").write_bytes(b"\x1f\x8b")
    with pytest.raises(DataError, match=r"'notes\.txt\.gz' is neither CSV nor Parquet"):
        file_head(str(tmp_path / "notes.txt.gz"))
    (tmp_path / "broken.parquet").write_bytes(b"not parquet")
    with pytest.raises(DataError, match=r"cannot read 'broken\.parquet'"):
        file_head(str(tmp_path / "broken.parquet"))


VIEW = {
    "job_id": "job-1a2b",
    "kind": "forecast",
    "status": "running",
    "models": ["seasonal-naive"],
    "progress": {"series_done": 30, "series_total": 120, "series_failed": 0, "rows_written": 180},
    "submitted_at": "2026-01-02T03:04:05.123456+00:00",
    "duration_seconds": 4.25,
    "error": None,
}


def test_progress_text_while_running_and_after() -> None:
    assert progress_text(VIEW) == (
        "job-1a2b (forecast, seasonal-naive): running, 30 of 120 series (25%), 180 rows written, "
        "4.2 s"
    )
    assert not is_finished(VIEW)
    done = {**VIEW, "status": "succeeded", "progress": {**VIEW["progress"], "series_done": 120}}
    assert "succeeded, 120 of 120 series (100%)" in progress_text(done)
    assert progress_text(done).endswith("Done: download the result below.")
    assert is_finished(done)
    failed = {
        **VIEW,
        "status": "failed",
        "progress": {"series_total": 2, "series_done": 2, "series_failed": 2},
        "error": {"code": "data_error", "message": "every series failed; see the <job>"},
    }
    text = progress_text(failed)
    assert "2 series failed" in text
    assert "**Error:** every series failed; see the &lt;job&gt; (data\\_error)" in text
    queued = {**VIEW, "status": "queued", "progress": {}, "duration_seconds": None}
    assert progress_text(queued) == "job-1a2b (forecast, seasonal-naive): queued, 0 rows written"


def test_jobs_table_and_result_names() -> None:
    table = jobs_table([VIEW, {**VIEW, "job_id": "job-2", "progress": {}}])
    assert list(table.columns) == [
        "job", "kind", "models", "status", "series", "rows written", "submitted", "seconds",
    ]  # fmt: skip
    assert table.iloc[0].tolist() == [
        "job-1a2b", "forecast", "seasonal-naive", "running", "30 / 120", 180,
        "2026-01-02 03:04:05", 4.25,
    ]  # fmt: skip
    assert table.iloc[1]["series"] == ""
    assert jobs_table([]).empty
    assert (result_name("job-1", "csv"), result_name("job-1", "parquet")) == (
        "job-1.csv", "job-1.parquet",
    )  # fmt: skip


def test_the_progress_timer_outlives_passing_failures_only() -> None:
    assert passing(ApiError("Reading the job timed out"))
    assert passing(ApiError("busy", status=503, code="model_unavailable"))
    assert passing(ApiError("slow down", status=429, code="rate_limited"))
    assert not passing(ApiError("gone", status=404, code="job_not_found"))
    assert not passing(MissingKey("Your sign-in has ended"))
    assert not passing(ValueError("a bug"))
    with pytest.raises(ApiError) as raised:
        job_path("../models")
    assert not passing(raised.value)
