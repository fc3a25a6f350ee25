"""The Jobs tab in headless Chromium against the real service: a job submitted from the page runs
as a Ray Data job, its progress shows, its result downloads; a job can be cancelled."""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest

from tests.frontend.conftest import OUTPUT_DIR, UPLOAD_CAP, Service
from tests.frontend.pages import expect, pick_option, table_frame, table_length

pytestmark = pytest.mark.cluster

SERIES, LENGTH, HORIZON = 40, 36, 6
JOB = 240_000  # ms: a Ray Data job's first start on two shared cores
JOB_ID = re.compile(r"job-[0-9a-f]+")


def series_file(path: Path, series: int, length: int = LENGTH) -> Path:
    """Monthly series in long format, shuffled (a job gathers each series wherever it is)."""
    rng = np.random.default_rng(5)
    frame = pd.DataFrame(
        {
            "unique_id": np.repeat([f"s{i:04d}" for i in range(series)], length),
            "ds": np.tile(pd.date_range("2021-01-31", periods=length, freq="ME"), series),
            "y": rng.normal(10, 1, series * length).round(3),
        }
    ).sample(frac=1.0, random_state=1)
    if path.suffix == ".parquet":
        frame.to_parquet(path, index=False)
    else:
        frame.to_csv(path, index=False)
    return path


def jobs_tab(page: Any) -> None:
    page.get_by_role("tab", name="Jobs").click()
    expect(page.locator("#jobs-table")).to_be_visible()


def api_get(service: Service, path: str) -> httpx.Response:
    return httpx.get(
        f"{service.api_url}{path}", headers={"Authorization": f"Bearer {service.key}"}, timeout=60
    )


def test_a_job_runs_shows_progress_and_its_result_downloads(
    page: Any, service: Service, tmp_path: Path
) -> None:
    data = series_file(tmp_path / "many.parquet", SERIES)
    assert data.stat().st_size < UPLOAD_CAP
    jobs_tab(page)
    page.locator("#job-upload input[type=file]").set_input_files(str(data))
    message = page.locator("#job-file-message")
    expect(message).to_contain_text(f"many.parquet: {SERIES * LENGTH:,} rows", timeout=30_000)
    expect(message).to_contain_text("Showing its first 20 rows only")
    assert table_length(page, "job-preview") == 20  # the UI read no more than that
    expect(page.locator("#job-timestamp input")).to_have_value("ds")
    expect(page.locator("#job-target input")).to_have_value("y")
    expect(page.locator("#job-series-id input")).to_have_value("unique_id")

    pick_option(page, "job-models", "seasonal-naive")
    page.locator("#job-horizon input").fill(str(HORIZON))
    page.locator("#submit-job").click()
    expect(page.locator("#job-message")).to_contain_text("Submitted job-", timeout=60_000)
    job_id = JOB_ID.search(page.locator("#job-message").inner_text()).group(0)  # type: ignore[union-attr]

    status = page.locator("#job-status")
    expect(status).to_contain_text("succeeded", timeout=JOB)
    expect(status).to_contain_text(f"{SERIES} of {SERIES} series (100%)")
    expect(status).to_contain_text(f"{SERIES * HORIZON:,} rows written")
    # The page followed the job while it ran: the timer asked for its status more than once.
    polled = [
        p for m, p, _ in service.recorder.calls if (m, p) == ("GET", f"/api/v2/jobs/{job_id}")
    ]
    assert len(polled) >= 2
    listed = table_frame(page, "jobs-table").set_index("job")
    assert listed.loc[job_id, "status"] == "succeeded"

    page.locator("#fetch-job-result").click()
    expect(page.locator("#job-message")).to_contain_text("ready to save", timeout=60_000)
    with page.expect_download() as download:
        page.locator("#job-result a").first.click()
    saved = tmp_path / download.value.suggested_filename
    download.value.save_as(saved)
    assert saved.name == f"{job_id}.parquet"
    got = pd.read_parquet(saved)

    # The API's own result for the job, byte for byte the same table.
    expected = pd.read_parquet(
        io.BytesIO(api_get(service, f"/api/v2/jobs/{job_id}/result").content)
    )
    pd.testing.assert_frame_equal(got, expected)
    assert len(got) == SERIES * HORIZON and got["unique_id"].nunique() == SERIES
    assert ("POST", "/api/v2/jobs") in [(m, p) for m, p, _ in service.recorder.calls]
    OUTPUT_DIR.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(OUTPUT_DIR / "jobs.png"), full_page=True)


def test_a_file_on_the_server_over_the_upload_cap_runs_and_can_be_cancelled(
    page: Any, service: Service
) -> None:
    big = series_file(service.data_dir / "big.csv", 3000, length=48)
    assert big.stat().st_size > UPLOAD_CAP  # the UI could not take it as an upload
    jobs_tab(page)
    page.locator("#job-source input, #job-source textarea").first.fill("big.csv")
    pick_option(page, "job-models", "auto-ets")
    page.locator("#submit-job").click()
    expect(page.locator("#job-message")).to_contain_text("Submitted job-", timeout=60_000)
    job_id = JOB_ID.search(page.locator("#job-message").inner_text()).group(0)  # type: ignore[union-attr]
    expect(page.locator("#job-status")).to_contain_text(re.compile("queued|running"))

    page.locator("#cancel-job").click()
    expect(page.locator("#job-status")).to_contain_text(f"{job_id} (forecast, auto-ets): cancelled")
    assert api_get(service, f"/api/v2/jobs/{job_id}").json()["status"] == "cancelled"
    assert ("DELETE", f"/api/v2/jobs/{job_id}") in [(m, p) for m, p, _ in service.recorder.calls]

    # A cancelled job has no result: the API's refusal is shown as it is.
    page.locator("#fetch-job-result").click()
    expect(page.locator("#job-message")).to_contain_text(
        f"Downloading the result failed: job '{job_id}' is cancelled", timeout=30_000
    )
    expect(page.locator("#job-message")).to_contain_text("job_not_ready")


def test_job_mistakes_are_explained(page: Any, service: Service) -> None:
    jobs_tab(page)
    message = page.locator("#job-message")
    page.locator("#submit-job").click()
    expect(message).to_contain_text("Upload a CSV or Parquet file, or name a file", timeout=30_000)

    page.locator("#job-source input, #job-source textarea").first.fill("no-such-file.parquet")
    page.locator("#submit-job").click()
    expect(message).to_contain_text("pick a model for the job", timeout=30_000)

    pick_option(page, "job-models", "seasonal-naive")
    page.locator("#submit-job").click()
    expect(message).to_contain_text(
        "Submitting the job failed: no file or folder 'no-such-file.parquet' in the data "
        "directory", timeout=30_000
    )  # fmt: skip
    expect(message).to_contain_text("HTTP 404, source_not_found")

    pick_option(page, "job-models", "auto-ets")
    page.locator("#submit-job").click()
    expect(message).to_contain_text("a forecast job runs one model", timeout=30_000)
    assert [m for m, p, _ in service.recorder.calls if p == "/api/v2/jobs"] == ["GET", "POST"]
    assert service.key not in page.content()
