"""Jobs whose location is an S3 bucket (moto's S3 server on loopback, a real S3 endpoint), in an
application of their own; and a job that outlives the ingress replica that took it.

Every node of a cluster reaches the bucket, as it would reach S3: the upload, the job's record and
its result parts all live there, none on a node's disk.
"""

from __future__ import annotations

import io
import json
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pyarrow.fs as pafs
import pytest

from tests.deployments.cluster_load import deploy, placement, ready_with, wait_for
from tests.deployments.conftest import API_KEY, free_port, undeploy

pytestmark = pytest.mark.cluster

APP = "s3jobs"
BUCKET = "sapheneia-jobs"
# moto accepts any credentials; the job's processes (ingress, board, runner, Ray Data workers)
# read them from the usual AWS variables, given to the ingress and inherited by what it starts.
AWS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}
PER_BUCKET = 40


def frame_of(series: int, length: int, freq: str, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "unique_id": np.repeat([f"u{i:04d}" for i in range(series)], length),
            "ds": np.tile(pd.date_range("2021-01-01", periods=length, freq=freq), series),
            "y": 50 + rng.normal(size=series * length).cumsum(),
        }
    )


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    bucket_store(endpoint).create_dir(BUCKET)
    yield endpoint
    server.stop()


def bucket_store(endpoint: str) -> pafs.S3FileSystem:
    """The bucket as this test sees it, with its own client (not the service's code)."""
    return pafs.S3FileSystem(
        endpoint_override=endpoint,
        access_key=AWS["AWS_ACCESS_KEY_ID"],
        secret_key=AWS["AWS_SECRET_ACCESS_KEY"],
        region=AWS["AWS_DEFAULT_REGION"],
        allow_bucket_creation=True,
    )


@pytest.fixture(scope="module")
def s3_app(
    s3_endpoint: str, serve_url: str, data_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    import ray

    from deployments.builder import job_options
    from deployments.jobs_state import NAMESPACE, board_name
    from sapheneia.settings import Settings

    args = {
        "models_dir": "configs/models",
        "ingress": {
            "ray_actor_options": {"num_cpus": 0.1, "runtime_env": {"env_vars": AWS}},
        },
        "models": [
            {"id": "seasonal-naive", "ray_actor_options": {"num_cpus": 0.1}},
            {"id": "auto-ets", "ray_actor_options": {"num_cpus": 0.1}},
        ],
    }
    jobs = {
        "jobs_uri": f"s3://{BUCKET}/jobs",
        "jobs_s3_endpoint": s3_endpoint,
        "jobs_series_per_bucket": PER_BUCKET,
    }
    state_dir = tmp_path_factory.mktemp("s3state")
    deploy(APP, args, state_dir, data_dir, **jobs)
    url = f"{serve_url}/{APP}"
    wait_for(lambda: ready_with(url, "auto-ets", 1), 120, "the app")
    yield url
    undeploy(APP, state_dir)
    # The detached board of this location would outlive the moto server.
    options = job_options(Settings(state_dir=data_dir, **jobs))  # type: ignore[arg-type]
    ray.kill(ray.get_actor(board_name(options), namespace=NAMESPACE))


@pytest.fixture(scope="module")
def http(s3_app: str) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {API_KEY}"}
    with httpx.Client(base_url=s3_app, headers=headers, timeout=120) as c:
        yield c


def wait_done(http: httpx.Client, job_id: str, timeout_s: float = 300) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    view: dict[str, Any] = {}
    while time.monotonic() < deadline:
        view = http.get(f"/api/v2/jobs/{job_id}").json()
        if view["status"] in ("succeeded", "failed", "cancelled"):
            return view
        time.sleep(0.5)
    raise TimeoutError(view)


def served_csv(http: httpx.Client, body: dict[str, Any]) -> pd.DataFrame:
    response = http.post("/api/v2/forecast", json={**body, "format": "csv"})
    assert response.status_code == 200, response.text
    return pd.read_csv(io.StringIO(response.text), parse_dates=["ds"])


def same_rows(got: pd.DataFrame, expected: pd.DataFrame, ids: list[str]) -> None:
    keys = ["unique_id", "ds"]
    left = got[got.unique_id.isin(ids)].sort_values(keys).reset_index(drop=True)
    right = expected[expected.unique_id.isin(ids)].sort_values(keys).reset_index(drop=True)
    assert len(left) == len(right) > 0
    pd.testing.assert_frame_equal(left[right.columns], right, check_dtype=False)


def test_an_uploaded_job_lives_in_the_bucket_and_its_result_is_the_served_forecast(
    http: httpx.Client, s3_endpoint: str, data_dir: Path
) -> None:
    series, horizon = 100, 6
    frame = frame_of(series, 30, "W", seed=11)
    frame.to_parquet(data_dir / "s3_upload.parquet", index=False)
    content = (data_dir / "s3_upload.parquet").read_bytes()
    request = {"kind": "forecast", "model": "seasonal-naive", "horizon": horizon}
    response = http.post(
        "/api/v2/jobs",
        files={"file": ("series.parquet", content, "application/vnd.apache.parquet")},
        data={"request": json.dumps(request)},
    )
    assert response.status_code == 202, response.text
    job_id = response.json()["job_id"]
    view = wait_done(http, job_id)
    assert view["status"] == "succeeded", view
    buckets = view["progress"]["buckets_total"]
    assert view["progress"]["series_done"] == series and buckets >= 2

    got = pd.read_parquet(io.BytesIO(http.get(f"/api/v2/jobs/{job_id}/result").content))
    assert len(got) == series * horizon
    expected = served_csv(
        http, {"source": "s3_upload.parquet", "model": "seasonal-naive", "horizon": horizon}
    )
    same_rows(got, expected, sorted(frame.unique_id.unique()))

    # In the bucket: the upload, the record, the manifest and one part per non-empty bucket.
    store = bucket_store(s3_endpoint)
    prefix = f"{BUCKET}/jobs/{job_id}"
    listed = store.get_file_info(pafs.FileSelector(prefix, recursive=True))
    names = {i.path.removeprefix(f"{prefix}/") for i in listed if i.type == pafs.FileType.File}
    parts = {n for n in names if n.startswith("result/part-")}
    assert {"input.parquet", "job.json", "result/_manifest.json"} <= names, names
    assert len(parts) == buckets, names
    with store.open_input_stream(f"{prefix}/job.json") as stream:
        record = json.loads(stream.read())
    assert record["status"] == "succeeded" and record["source"] == f"s3://{prefix}/input.parquet"
    with store.open_input_stream(f"{prefix}/input.parquet") as stream:
        assert stream.read() == content
    # The result read straight from the parts equals the one served over HTTP.
    from_parts = pd.concat(
        pd.read_parquet(io.BytesIO(store.open_input_stream(f"{prefix}/{p}").read()))
        for p in sorted(parts)
    )
    same_rows(got, from_parts, sorted(frame.unique_id.unique()))


def test_a_job_survives_a_killed_ingress(http: httpx.Client, s3_app: str, data_dir: Path) -> None:
    series, horizon = 400, 7
    frame = frame_of(series, 90, "D", seed=5)
    frame.to_parquet(data_dir / "s3_long.parquet", index=False)
    body = {"kind": "forecast", "source": "s3_long.parquet", "model": "auto-ets"}
    response = http.post("/api/v2/jobs", json={**body, "horizon": horizon})
    assert response.status_code == 202, response.text
    job_id = response.json()["job_id"]
    wait_for(
        lambda: http.get(f"/api/v2/jobs/{job_id}").json()["status"] == "running",
        120,
        "the job running",
    )
    before = http.get(f"/api/v2/jobs/{job_id}").json()
    assert before["status"] == "running", before
    (victim,) = placement(APP, "ingress")
    os.kill(victim, signal.SIGKILL)
    print(f"\ningress {victim} killed with the job at {before['progress']}")

    # Serve starts another ingress; it finds the job (its board is a detached actor).
    def answered_by_a_new_ingress() -> bool:
        return victim not in placement(APP, "ingress") and (
            httpx.get(
                f"{s3_app}/api/v2/jobs/{job_id}",
                headers={"Authorization": f"Bearer {API_KEY}"},
                timeout=10,
            ).status_code
            == 200
        )

    wait_for(answered_by_a_new_ingress, 120, "a new ingress serving the job")
    after = http.get(f"/api/v2/jobs/{job_id}").json()
    assert after["status"] in ("running", "succeeded"), after
    assert after["submitted_at"] == before["submitted_at"]
    assert after["started_at"] == before["started_at"]  # the same run, not a new one

    view = wait_done(http, job_id)
    assert view["status"] == "succeeded", view
    assert view["progress"]["series_done"] == series
    assert job_id in {j["job_id"] for j in http.get("/api/v2/jobs").json()["jobs"]}
    got = pd.read_parquet(io.BytesIO(http.get(f"/api/v2/jobs/{job_id}/result").content))
    assert len(got) == series * horizon
    sample = ["u0000", "u0123", "u0399"]
    rows = frame[frame.unique_id.isin(sample)].assign(ds=lambda f: f.ds.dt.strftime("%Y-%m-%d"))
    expected = served_csv(
        http,
        {"data": rows.to_dict(orient="records"), "model": "auto-ets", "horizon": horizon},
    )
    same_rows(got, expected, sample)
