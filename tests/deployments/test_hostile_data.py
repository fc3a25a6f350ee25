"""Hostile data sent over HTTP to the real Serve instance: each attack gets its 4xx in the one error
shape, naming the limit it hit, and the server answers the next normal request as before."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.deployments.conftest import assert_error

V2 = "/api/v2/forecast"
DAYS = [f"2024-01-{day:02d}" for day in range(1, 11)]


def small(**changes: Any) -> dict[str, Any]:
    data = [{"unique_id": "a", "ds": ds, "y": float(i % 3)} for i, ds in enumerate(DAYS)]
    return {"model": "seasonal-naive", "horizon": 2, "data": data, **changes}


def still_serving(client: httpx.Client) -> None:
    response = client.post(V2, json=small())
    assert response.status_code == 200, response.text
    assert len(response.json()["forecast"]) == 2


def many_rows_parquet() -> bytes:
    """A few kilobytes whose footer says 2,000,001 rows: one past the server's default cap."""
    zeros = np.zeros(2_000_001, dtype=np.int8)
    buffer = io.BytesIO()
    pq.write_table(pa.table({"unique_id": zeros, "ds": zeros, "y": zeros}), buffer)
    assert len(buffer.getvalue()) < 256 * 1024
    return buffer.getvalue()


def test_json_1e999_is_refused_with_its_row(client: httpx.Client) -> None:
    body = json.dumps(small()).replace('"y": 1.0', '"y": 1e999', 1)
    assert "1e999" in body
    response = client.post(V2, content=body, headers={"Content-Type": "application/json"})
    error = assert_error(response, 422, "non_finite_values")
    assert "target column 'y' has infinite values in rows 2" in error["message"]
    assert "Infinity" not in response.text
    still_serving(client)


def test_a_megabyte_series_id_with_a_long_horizon_is_refused(client: httpx.Client) -> None:
    huge = "x" * 1024 * 1024
    request = small(horizon=10_000, data=[{"unique_id": huge, "ds": "2024-01-01", "y": 1.0}])
    response = client.post(V2, json=request)
    error = assert_error(response, 413, "limit_exceeded")
    assert "is 1,048,576 characters long, over the limit of 256" in error["message"]
    assert "SAPHENEIA_MAX_NAME_CHARS" in error["message"] and len(response.content) < 1000
    still_serving(client)


def test_a_parquet_footer_over_the_row_cap_is_refused_from_the_data_dir(
    client: httpx.Client, data_dir: Path
) -> None:
    (data_dir / "many_rows.parquet").write_bytes(many_rows_parquet())
    response = client.post(
        V2, json={"model": "seasonal-naive", "horizon": 2, "source": "many_rows.parquet"}
    )
    error = assert_error(response, 413, "limit_exceeded")
    assert "the table has 2,000,001 rows, over the limit of 2,000,000" in error["message"]
    assert "SAPHENEIA_MAX_ROWS" in error["message"]
    still_serving(client)


def test_a_parquet_upload_over_the_row_cap_is_refused(client: httpx.Client) -> None:
    response = client.post(
        V2,
        files={"file": ("many.parquet", many_rows_parquet(), "application/octet-stream")},
        data={"request": json.dumps({"model": "seasonal-naive", "horizon": 2})},
    )
    error = assert_error(response, 413, "limit_exceeded")
    assert "2,000,001 rows" in error["message"]
    still_serving(client)


def test_too_many_quantile_levels_are_refused(client: httpx.Client) -> None:
    levels = [round(i / 1000, 3) for i in range(1, 201)]
    response = client.post(V2, json=small(quantiles=levels))
    error = assert_error(response, 413, "limit_exceeded")
    assert "200 quantile levels, over the limit of 99" in error["message"]
    assert "SAPHENEIA_MAX_QUANTILES" in error["message"]
    still_serving(client)


@pytest.mark.parametrize(
    ("csv", "status", "code", "words"),
    [
        (
            b"unique_id,ds,y\na,2024-01-01,1\na,2024-01-02,inf\na,2024-01-03,2\n",
            422,
            "non_finite_values",
            "infinite values in rows 2",
        ),
        (
            b"unique_id,ds,y, y\na,2024-01-01,1,1\n",
            400,
            "invalid_input",
            "'y', ' y' have the same name",
        ),
    ],
)
def test_csv_uploads_with_bad_numbers_or_headers(
    client: httpx.Client, csv: bytes, status: int, code: str, words: str
) -> None:
    response = client.post(
        V2,
        files={"file": ("x.csv", csv, "text/csv")},
        data={"request": json.dumps({"model": "seasonal-naive", "horizon": 2})},
    )
    assert words in assert_error(response, status, code)["message"]


def test_a_horizon_past_pandas_last_date_is_a_caller_error(client: httpx.Client) -> None:
    data = [{"unique_id": "a", "ds": f"{2200 + i}-01-01", "y": float(i)} for i in range(24)]
    response = client.post(V2, json={"model": "seasonal-naive", "horizon": 300, "data": data})
    error = assert_error(response, 400, "invalid_input")
    assert "ask for a shorter horizon" in error["message"]
    still_serving(client)
