"""Tables sent as the body itself (Arrow IPC, Parquet, CSV), the orjson request and response
paths, and what they must match: the same request as JSON rows, pydantic's own parsing, and
``json.dumps`` of the same answer. In process, no Ray."""

from __future__ import annotations

import io
import json

import httpx
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from deployments.parsing import REQUEST_HEADER, parse_table_body
from deployments.schemas import BacktestRequest, ForecastRequest, parse_body
from sapheneia.errors import SapheneiaError
from tests.deployments.conftest import assert_error

V2 = "/api/v2/forecast"
MONTHS = pd.date_range("2021-01-01", periods=36, freq="MS")
ROWS = [
    {"unique_id": uid, "ds": f"{t:%Y-%m-%d}", "y": float(10 + i % 12 + 3 * k)}
    for k, uid in enumerate(("b", "a", "c"))
    for i, t in enumerate(MONTHS)
]
FIELDS = {"model": "seasonal-naive", "horizon": 4, "quantiles": [0.1, 0.5, 0.9]}


def arrow_stream(frame: pd.DataFrame) -> bytes:
    table = pa.Table.from_pandas(frame, preserve_index=False)
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table, max_chunksize=50)
    return bytes(sink.getvalue().to_pybytes())


def parquet(frame: pd.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    return buffer.getvalue()


def frame() -> pd.DataFrame:
    return pd.DataFrame(ROWS).assign(ds=lambda f: pd.to_datetime(f["ds"]))


BODIES = {
    "application/vnd.apache.arrow.stream": lambda: arrow_stream(frame()),
    "application/vnd.apache.parquet": lambda: parquet(frame()),
    "text/csv": lambda: frame().to_csv(index=False).encode(),
}


@pytest.mark.parametrize("content_type", list(BODIES))
def test_a_table_body_answers_as_the_same_rows_sent_inline(
    local: httpx.Client, content_type: str
) -> None:
    inline = local.post(V2, json={**FIELDS, "data": ROWS})
    sent = local.post(
        V2,
        content=BODIES[content_type](),
        headers={"Content-Type": content_type, REQUEST_HEADER: json.dumps(FIELDS)},
    )
    assert inline.status_code == sent.status_code == 200, sent.text
    assert sent.json()["forecast"] == inline.json()["forecast"]
    assert sent.json()["metadata"]["series_count"] == 3


def test_an_arrow_file_uploaded_as_a_part_reads_as_its_rows(local: httpx.Client) -> None:
    inline = local.post(V2, json={**FIELDS, "data": ROWS})
    upload = local.post(
        V2,
        files={"file": ("series.arrow", arrow_stream(frame()))},
        data={"request": json.dumps(FIELDS)},
    )
    assert upload.status_code == 200, upload.text
    assert upload.json()["forecast"] == inline.json()["forecast"]


def test_a_table_body_without_its_fields_says_where_they_go(local: httpx.Client) -> None:
    response = local.post(
        V2,
        content=arrow_stream(frame()),
        headers={"Content-Type": "application/vnd.apache.arrow.stream"},
    )
    message = assert_error(response, 400, "invalid_input")["message"]
    assert message.startswith(
        "a table sent as the body (application/vnd.apache.arrow.stream) needs the request's "
        "fields as JSON in the X-Sapheneia-Request header"
    )


@pytest.mark.parametrize(
    ("header", "message"),
    [
        ("{oops", "X-Sapheneia-Request header is not valid JSON"),
        ("[1]", "X-Sapheneia-Request header must be a JSON object"),
        (
            json.dumps({**FIELDS, "data": ROWS[:2]}),
            "with the table as the body: leave 'data' and 'source' out of the "
            "X-Sapheneia-Request header",
        ),
        (json.dumps({**FIELDS, "horizon": 0}), "horizon"),
    ],
)
def test_bad_fields_beside_a_table_body(local: httpx.Client, header: str, message: str) -> None:
    response = local.post(
        V2,
        content=parquet(frame()),
        headers={"Content-Type": "application/vnd.apache.parquet", REQUEST_HEADER: header},
    )
    assert message in assert_error(response, 400, "invalid_input")["message"]


def test_a_table_body_over_the_cap_is_refused(local: httpx.Client) -> None:
    response = local.post(
        V2,
        content=b"y\n" + b"1\n" * (2 * 1024 * 1024),
        headers={"Content-Type": "text/csv", REQUEST_HEADER: json.dumps(FIELDS)},
    )
    assert_error(response, 413, "payload_too_large")


def test_the_unsupported_type_message_lists_every_way_in(local: httpx.Client) -> None:
    response = local.post(V2, content=b"x", headers={"Content-Type": "text/plain"})
    message = assert_error(response, 400, "unsupported_format")["message"]
    for way in ("application/json", "multipart/form-data", "application/vnd.apache.arrow.stream"):
        assert way in message


# --- the orjson request path gives pydantic's answer --------------------------------------------

BODY_CASES = [
    {**FIELDS, "data": ROWS[:3]},
    {**FIELDS, "data": []},
    {**FIELDS, "data": ROWS[:3], "source": "x.csv"},  # both: the model validator's message
    {**FIELDS, "data": [ROWS[0], [1, 2]]},  # a row that is not an object
    {**FIELDS, "data": "rows"},
    {**FIELDS, "data": ROWS[:2], "surprise": 1},
    {**FIELDS, "horizon": "4", "data": ROWS[:2]},
    {**FIELDS, "horizon": 0, "quantiles": [2], "data": ROWS[:2]},
    {"data": ROWS[:2]},
    [ROWS[0]],
]
RAW_CASES = [
    *[json.dumps(case).encode() for case in BODY_CASES],
    b"{not json",
    b'{"model": "m", "horizon": 2, "data": [{"y": NaN}]}',
    b'{"model": "m", "horizon": 2, "data": [{"y": 123456789012345678901234567890}]}',
    b'{"model": "m", "horizon": 2, "data": [{"y": 1}], "model": "n"}',
]


@pytest.mark.parametrize("model", [ForecastRequest, BacktestRequest])
@pytest.mark.parametrize("raw", RAW_CASES)
def test_orjson_parsing_answers_as_pydantic(model: type, raw: bytes) -> None:
    try:
        expected = parse_body(model, raw)
    except SapheneiaError as error:
        with pytest.raises(type(error)) as raised:
            parse_table_body(model, raw)
        assert raised.value.message == error.message
        return
    got = parse_table_body(model, raw)
    assert repr(got.model_dump()) == repr(expected.model_dump())  # NaN != NaN, but reprs agree


# --- the orjson response is the JSON json.dumps writes ------------------------------------------


def test_the_json_answer_parses_to_what_json_dumps_would_write(local: httpx.Client) -> None:
    from deployments.routes_v2 import ForecastAnswer
    from sapheneia.config import ModelConfig
    from sapheneia.data import ColumnRoles, build_tasks
    from sapheneia.models import create_adapter

    adapter = create_adapter(ModelConfig(id="seasonal-naive", adapter="statsforecast"))
    adapter.load()
    tasks = build_tasks(frame(), ColumnRoles(), 4, (0.1, 0.5, 0.9))
    results = adapter.forecast(tasks)
    body = ForecastRequest.model_validate({**FIELDS, "data": ROWS, "id_column": "unique_id"})
    metadata = {"series_count": 3, "total_time_seconds": 0.5, "batch_sizes": [3, 3, None]}
    text = ForecastAnswer(results, body, "seasonal-naive", metadata).as_json()  # type: ignore[arg-type]
    assert isinstance(text, bytes)
    answer = json.loads(text)
    # The reference: the same rows written with the standard library, one by one.
    rows = []
    for result in results:
        for step, stamp in enumerate(result.future_timestamps):
            row = {
                "unique_id": result.series_id,
                "ds": stamp.isoformat(),
                "mean": float(result.mean[step]),
                "median": float(result.median[step]),
            }
            row |= {f"q-{q:g}": float(v[step]) for q, v in sorted(result.quantiles.items())}
            rows.append(row)
    assert answer == json.loads(
        json.dumps({"model": "seasonal-naive", "forecast": rows, "metadata": metadata})
    )


def test_a_non_finite_value_is_still_refused_rather_than_written_as_null() -> None:
    from deployments.routes_v2 import ForecastAnswer
    from sapheneia.tasks import ForecastResult

    stamps = pd.date_range("2024-01-01", periods=2, freq="D")
    bad = ForecastResult("a", np.array([1.0, np.nan]), np.zeros(2), {0.5: np.zeros(2)}, stamps)
    body = ForecastRequest.model_validate({**FIELDS, "data": ROWS})
    with pytest.raises(ValueError, match="JSON compliant"):
        ForecastAnswer([bad], body, "m", {}).as_json()


# --- the Arrow answer holds what the JSON answer holds --------------------------------------------


@pytest.mark.parametrize("ask", ["field", "accept"])
def test_the_arrow_answer_has_the_json_answers_rows_and_metadata(
    local: httpx.Client, ask: str
) -> None:
    as_json = local.post(V2, json={**FIELDS, "data": ROWS}).json()
    if ask == "field":
        response = local.post(V2, json={**FIELDS, "data": ROWS, "format": "arrow"})
    else:
        accept = {"Accept": "application/vnd.apache.arrow.stream"}
        response = local.post(V2, json={**FIELDS, "data": ROWS}, headers=accept)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/vnd.apache.arrow.stream"
    data = pa.ipc.open_stream(response.content).read_all()
    described = json.loads(data.schema.metadata[b"sapheneia"])
    assert described["model"] == "seasonal-naive"
    assert described["metadata"]["series_count"] == 3
    assert pa.types.is_timestamp(data.schema.field("ds").type)
    rows = data.to_pandas().assign(ds=lambda f: f["ds"].map(lambda t: t.isoformat()))
    assert rows.to_dict(orient="records") == as_json["forecast"]


def test_an_arrow_answer_keeps_the_time_zone(local: httpx.Client) -> None:
    zoned = [{**row, "ds": row["ds"] + "T00:00:00+01:00"} for row in ROWS]
    response = local.post(V2, json={**FIELDS, "data": zoned, "format": "arrow"})
    assert response.status_code == 200, response.text
    data = pa.ipc.open_stream(response.content).read_all()
    as_json = local.post(V2, json={**FIELDS, "data": zoned}).json()["forecast"]
    stamps = [t.isoformat() for t in data.column("ds").to_pandas()]
    assert stamps == [row["ds"] for row in as_json]
