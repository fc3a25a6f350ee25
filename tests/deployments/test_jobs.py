"""``/api/v2/jobs`` over HTTP against the session's Ray Serve instance: a Ray Data job per request."""

from __future__ import annotations

import io
import json
import time
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest

from tests.deployments.conftest import OTHER_KEY, assert_error

pytestmark = pytest.mark.cluster

SERIES, LENGTH, HORIZON = 120, 36, 6


@pytest.fixture(scope="module")
def job_file(data_dir: Path) -> str:
    rng = np.random.default_rng(7)
    ids = np.repeat([f"s{i:03d}" for i in range(SERIES)], LENGTH)
    stamps = np.tile(pd.date_range("2021-01-31", periods=LENGTH, freq="ME"), SERIES)
    season = np.tile(np.sin(np.arange(LENGTH) * np.pi / 6), SERIES)
    frame = pd.DataFrame(
        {"unique_id": ids, "ds": stamps, "y": 10 + season + rng.normal(size=len(ids))}
    )
    # Shuffled: a job must gather each series from wherever its rows are.
    frame.sample(frac=1.0, random_state=1).to_parquet(data_dir / "jobs.parquet", index=False)
    return "jobs.parquet"


def wait_for(client: httpx.Client, job_id: str, timeout_s: float = 180) -> dict:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        view = client.get(f"/api/v2/jobs/{job_id}").json()
        if view["status"] in ("succeeded", "failed", "cancelled"):
            return view
        time.sleep(0.5)
    raise TimeoutError(view)


@pytest.fixture(scope="module")
def finished(client: httpx.Client, job_file: str) -> dict:
    body = {"kind": "forecast", "source": job_file, "model": "seasonal-naive", "horizon": HORIZON}
    response = client.post("/api/v2/jobs", json=body)
    assert response.status_code == 202, response.text
    assert response.json()["status"] == "queued"
    return wait_for(client, response.json()["job_id"])


def test_a_forecast_job_succeeds_with_progress_and_timings(finished: dict) -> None:
    assert finished["status"] == "succeeded", finished
    progress = finished["progress"]
    assert progress["series_total"] == progress["series_done"] == SERIES
    assert progress["rows_written"] == SERIES * HORIZON
    assert finished["error"] is None and finished["duration_seconds"] > 0
    assert finished["started_at"] >= finished["submitted_at"]


def test_result_as_parquet_and_csv_equals_the_served_forecast(
    client: httpx.Client, finished: dict, job_file: str
) -> None:
    job_id = finished["job_id"]
    parquet = client.get(f"/api/v2/jobs/{job_id}/result")
    assert parquet.status_code == 200
    table = pd.read_parquet(io.BytesIO(parquet.content))
    csv = client.get(f"/api/v2/jobs/{job_id}/result", params={"format": "csv"})
    assert csv.headers["content-type"].startswith("text/csv")
    from_csv = pd.read_csv(io.StringIO(csv.text), parse_dates=["ds"])
    assert len(table) == len(from_csv) == SERIES * HORIZON
    assert list(table.columns) == ["unique_id", "ds", "mean", "median", "q-0.1", "q-0.5", "q-0.9"]
    # Parity: the served path on the same file, a sample of series.
    served = client.post(
        "/api/v2/forecast",
        json={"source": job_file, "model": "seasonal-naive", "horizon": HORIZON, "format": "csv"},
    )
    assert served.status_code == 200, served.text
    expected = pd.read_csv(io.StringIO(served.text), parse_dates=["ds"])
    sample = ["s000", "s017", "s064", "s119"]
    for got in (table, from_csv):
        left = (
            got[got.unique_id.isin(sample)].sort_values(["unique_id", "ds"]).reset_index(drop=True)
        )
        right = expected[expected.unique_id.isin(sample)].sort_values(["unique_id", "ds"])
        pd.testing.assert_frame_equal(left, right.reset_index(drop=True), check_dtype=False)


def test_another_key_gets_404_and_lists_none_of_them(serve_url: str, finished: dict) -> None:
    job_id = finished["job_id"]
    with httpx.Client(
        base_url=serve_url, headers={"Authorization": f"Bearer {OTHER_KEY}"}
    ) as other:
        for path in (
            f"/api/v2/jobs/{job_id}",
            f"/api/v2/jobs/{job_id}/result",
            f"/api/v2/jobs/{job_id}/events",
        ):
            assert_error(other.get(path), 404, "job_not_found")
        assert_error(other.delete(f"/api/v2/jobs/{job_id}"), 404, "job_not_found")
        assert job_id not in {j["job_id"] for j in other.get("/api/v2/jobs").json()["jobs"]}


def test_the_list_holds_the_callers_jobs(client: httpx.Client, finished: dict) -> None:
    jobs = client.get("/api/v2/jobs").json()["jobs"]
    assert finished["job_id"] in {j["job_id"] for j in jobs}


def test_events_stream_progress_until_the_end(client: httpx.Client, job_file: str) -> None:
    body = {"kind": "forecast", "source": job_file, "model": "seasonal-naive", "horizon": 3}
    job_id = client.post("/api/v2/jobs", json=body).json()["job_id"]
    events: list[tuple[str, dict]] = []
    with client.stream("GET", f"/api/v2/jobs/{job_id}/events", timeout=180) as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        name = ""
        for line in stream.iter_lines():
            if line.startswith("event: "):
                name = line[len("event: ") :]
            elif line.startswith("data: "):
                events.append((name, json.loads(line[len("data: ") :])))
    assert events[-1] == ("end", {"status": "succeeded"})
    progress = [data for name, data in events if name == "progress"]
    assert progress[0]["status"] in ("queued", "running")
    assert progress[-1]["progress"]["series_done"] == SERIES


def test_delete_cancels_a_long_job(client: httpx.Client, data_dir: Path) -> None:
    rng = np.random.default_rng(3)
    n, length = 3000, 60
    frame = pd.DataFrame(
        {
            "unique_id": np.repeat([f"l{i}" for i in range(n)], length),
            "ds": np.tile(pd.date_range("2020-01-01", periods=length, freq="D"), n),
            "y": rng.normal(size=n * length).cumsum(),
        }
    )
    frame.to_parquet(data_dir / "long_job.parquet", index=False)
    body = {"kind": "forecast", "source": "long_job.parquet", "model": "auto-ets", "horizon": 14}
    job_id = client.post("/api/v2/jobs", json=body).json()["job_id"]
    deadline = time.monotonic() + 60
    while client.get(f"/api/v2/jobs/{job_id}").json()["status"] == "queued":
        assert time.monotonic() < deadline
        time.sleep(0.2)
    cancelled = client.delete(f"/api/v2/jobs/{job_id}")
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    time.sleep(1)
    view = client.get(f"/api/v2/jobs/{job_id}").json()
    assert view["status"] == "cancelled" and view["finished_at"] is not None
    assert_error(client.get(f"/api/v2/jobs/{job_id}/result"), 409, "job_not_ready")


def test_bad_submissions_say_what_to_fix(client: httpx.Client) -> None:
    error = assert_error(
        client.post(
            "/api/v2/jobs",
            json={
                "kind": "forecast",
                "source": "../etc/passwd",
                "model": "seasonal-naive",
                "horizon": 3,
            },
        ),
        403,
        "source_forbidden",
    )
    assert "data directory" in error["message"]
    assert_error(
        client.post(
            "/api/v2/jobs",
            json={
                "kind": "forecast",
                "source": "missing.parquet",
                "model": "seasonal-naive",
                "horizon": 3,
            },
        ),
        404,
        "source_not_found",
    )
    error = assert_error(
        client.post(
            "/api/v2/jobs",
            json={"kind": "backtest", "source": "jobs.parquet", "model": "auto-ets", "horizon": 3},
        ),
        400,
        "invalid_input",
    )
    assert "models" in error["message"]
    assert_error(client.get("/api/v2/jobs/job-nope"), 404, "job_not_found")


def test_a_backtest_job_equals_the_served_backtest(client: httpx.Client, job_file: str) -> None:
    fields = {"models": ["seasonal-naive", "auto-ets"], "horizon": 4, "n_windows": 2}
    response = client.post("/api/v2/jobs", json={"kind": "backtest", "source": job_file, **fields})
    assert response.status_code == 202, response.text
    view = wait_for(client, response.json()["job_id"])
    assert view["status"] == "succeeded", view
    assert view["models"] == ["seasonal-naive", "auto-ets"]
    assert view["progress"]["series_done"] == view["progress"]["series_total"] == SERIES
    got = pd.read_parquet(io.BytesIO(client.get(f"/api/v2/jobs/{view['job_id']}/result").content))
    served = client.post("/api/v2/backtest", json={"source": job_file, **fields})
    assert served.status_code == 200, served.text
    expected = pd.DataFrame(served.json()["forecasts"])
    for column in ("cutoff", "ds"):
        expected[column] = pd.to_datetime(expected[column])
        got[column] = pd.to_datetime(got[column])
    # Every model, window and step of every series (2 models x 2 windows x 4 steps).
    assert len(got) == len(expected) == SERIES * 2 * 2 * 4
    assert sorted(got.columns) == sorted(expected.columns)
    keys = ["model", "unique_id", "cutoff", "ds"]
    left = got[expected.columns].sort_values(keys).reset_index(drop=True)
    right = expected.sort_values(keys).reset_index(drop=True)
    pd.testing.assert_frame_equal(left, right, check_dtype=False)
