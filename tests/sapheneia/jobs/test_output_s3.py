"""A job's output location on an S3 endpoint (moto's S3 server on loopback), without Ray."""

from __future__ import annotations

from collections.abc import Iterator

import pyarrow as pa
import pyarrow.fs as pafs
import pytest

from sapheneia.jobs.output import Location, write_bucket

CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    store = pafs.S3FileSystem(
        endpoint_override=url,
        access_key="testing",
        secret_key="testing",
        region="us-east-1",
        allow_bucket_creation=True,
    )
    store.create_dir("out")
    yield url
    server.stop()


def test_parts_written_to_s3_are_read_back_and_removed(
    endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    location = Location("s3://out/jobs/job-1/result", endpoint)
    assert location.root == "out/jobs/job-1/result" and not location.exists()
    table = pa.table({"unique_id": ["a", "a", "b"], "mean": [1.0, 2.0, 3.0]})
    errors = pa.table({"unique_id": ["c"], "code": ["data_error"], "message": ["too short"]})
    write_bucket(location, 3, table, series=3, errors=errors)
    write_bucket(location, 1, table.slice(0, 1), series=1, errors=errors.slice(0, 0))
    location.write_json("_manifest.json", {"buckets": 4})

    assert location.read_json("_manifest.json") == {"buckets": 4}
    assert [p.rsplit("/", 1)[1] for p in location.parts()] == [
        "part-00001.parquet",
        "part-00003.parquet",
    ]
    infos = location.part_infos()
    assert (infos[3].series, infos[3].rows, infos[3].failed) == (3, 3, 1)
    assert (infos[1].series, infos[1].rows, infos[1].failed) == (1, 1, 0)
    rows = pa.Table.from_batches(list(location.read_parts()))
    assert rows.column("mean").to_pylist() == [1.0, 1.0, 2.0, 3.0]
    # No temporary object is left beside the parts.
    listed = location.fs.get_file_info(pafs.FileSelector(location.root, recursive=True))
    assert not [i.path for i in listed if ".tmp-" in i.path]
    assert location.child("errors").exists("part-00003.parquet")

    location.remove()
    assert not location.exists() and location.parts() == []
