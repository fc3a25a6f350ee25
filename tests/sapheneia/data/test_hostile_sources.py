"""load_table against hostile sources: compression bombs, lying Parquet footers, oversized tables."""

from __future__ import annotations

import dataclasses
import gzip
import io
import tracemalloc
import zlib
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler

import brotli
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sapheneia.data import DataLimits, load_table
from sapheneia.errors import LimitExceeded, PayloadTooLarge
from tests.sapheneia.data.conftest import SAMPLE_CSV, ScriptedServer

MIB = 1024 * 1024
EXPECTED = pd.read_csv(io.StringIO(SAMPLE_CSV))


def gzip_stream(chunks: int, chunk: bytes) -> bytes:
    """gzip of ``chunks`` copies of ``chunk``, compressed piece by piece (never held inflated)."""
    deflater = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    return b"".join([*(deflater.compress(chunk) for _ in range(chunks)), deflater.flush()])


@pytest.fixture(scope="module")
def bomb_200mib() -> bytes:
    """200 MiB of zeros under ``gzip, gzip``: a few hundred bytes on the wire."""
    body = gzip.compress(gzip_stream(200, b"\0" * MIB), 9)
    assert len(body) < 2048
    return body


def answer(body: bytes, encoding: str | None = None) -> Callable[[BaseHTTPRequestHandler], None]:
    def send(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", "text/csv")
        if encoding:
            handler.send_header("Content-Encoding", encoding)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    return send


def private(limits: DataLimits, **changes: object) -> DataLimits:
    return dataclasses.replace(limits, allow_private_urls=True, url_ports=None, **changes)  # type: ignore[arg-type]


def test_stacked_gzip_bomb_is_refused_without_inflating_it(
    scripted: ScriptedServer, limits: DataLimits, bomb_200mib: bytes
) -> None:
    scripted.answers["/bomb.csv"] = answer(bomb_200mib, "gzip, gzip")
    tracemalloc.start()
    try:
        with pytest.raises(PayloadTooLarge, match=r"over the limit of 1.0 MiB once decoded"):
            load_table(f"{scripted.url}/bomb.csv", private(limits, max_bytes=MIB))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 8 * MIB, f"peak {peak / MIB:.1f} MiB while refusing a 200 MiB bomb"


def test_downloads_ask_for_no_encoding(scripted: ScriptedServer, limits: DataLimits) -> None:
    scripted.answers["/x.csv"] = answer(SAMPLE_CSV.encode())
    load_table(f"{scripted.url}/x.csv", private(limits))
    assert scripted.seen[-1]["Accept-Encoding"] == "identity"


@pytest.mark.parametrize(
    ("encoding", "encode"),
    [
        ("gzip", gzip.compress),
        ("x-gzip", gzip.compress),
        ("deflate", zlib.compress),
        ("deflate", lambda data: zlib.compress(data, wbits=-zlib.MAX_WBITS)),  # raw deflate
        ("br", brotli.compress),
        ("gzip, br", lambda data: brotli.compress(gzip.compress(data))),
        ("gzip, gzip", lambda data: gzip.compress(gzip.compress(data))),
        ("identity", lambda data: data),
    ],
)
def test_encoded_answers_are_decoded(
    scripted: ScriptedServer,
    limits: DataLimits,
    encoding: str,
    encode: Callable[[bytes], bytes],
) -> None:
    scripted.answers["/x.csv"] = answer(encode(SAMPLE_CSV.encode()), encoding)
    pd.testing.assert_frame_equal(load_table(f"{scripted.url}/x.csv", private(limits)), EXPECTED)


def test_brotli_bomb_is_refused(scripted: ScriptedServer, limits: DataLimits) -> None:
    scripted.answers["/bomb.csv"] = answer(brotli.compress(b"\0" * 50 * MIB), "br")
    with pytest.raises(PayloadTooLarge, match="once decoded"):
        load_table(f"{scripted.url}/bomb.csv", private(limits, max_bytes=MIB))


def test_unknown_encoding_is_refused(scripted: ScriptedServer, limits: DataLimits) -> None:
    scripted.answers["/x.csv"] = answer(SAMPLE_CSV.encode(), "compress")
    with pytest.raises(Exception, match="encoded as 'compress'") as error:
        load_table(f"{scripted.url}/x.csv", private(limits))
    assert error.value.status == 400  # type: ignore[attr-defined]


def test_gzip_upload_is_read(limits: DataLimits) -> None:
    content = gzip.compress(SAMPLE_CSV.encode())
    pd.testing.assert_frame_equal(load_table(content, limits, filename="x.csv.gz"), EXPECTED)


def test_gzip_upload_bomb_is_refused(limits: DataLimits) -> None:
    bomb = gzip_stream(100, b"\0" * MIB)
    with pytest.raises(
        PayloadTooLarge, match=r"the decompressed file is over the limit of 1.0 MiB"
    ):
        load_table(bomb, dataclasses.replace(limits, max_bytes=MIB), filename="x.csv.gz")


def test_gzip_file_in_the_data_dir_is_capped(limits: DataLimits) -> None:
    (limits.data_dir / "bomb.csv.gz").write_bytes(gzip_stream(100, b"\0" * MIB))
    with pytest.raises(PayloadTooLarge, match="once decoded"):
        load_table("bomb.csv.gz", dataclasses.replace(limits, max_bytes=MIB))


# --- Parquet footers --------------------------------------------------------------------------


def parquet_bytes(table: pa.Table, **options: object) -> bytes:
    buffer = io.BytesIO()
    pq.write_table(table, buffer, **options)  # type: ignore[arg-type]
    return buffer.getvalue()


def test_parquet_with_too_many_rows_is_refused_from_its_footer(
    limits: DataLimits, monkeypatch: pytest.MonkeyPatch
) -> None:
    content = parquet_bytes(pa.table({"y": pa.array(range(11), pa.float64())}))

    def no_read(*args: object, **kwargs: object) -> None:
        raise AssertionError("the data was read before the footer was checked")

    monkeypatch.setattr(pq.ParquetFile, "read", no_read)
    with pytest.raises(LimitExceeded, match="the table has 11 rows, over the limit of 10") as error:
        load_table(content, dataclasses.replace(limits, max_rows=10), filename="x.parquet")
    assert "SAPHENEIA_MAX_ROWS" in error.value.message and error.value.status == 413


def test_parquet_with_too_many_columns_is_refused(limits: DataLimits) -> None:
    content = parquet_bytes(pa.table({f"c{i}": [1.0] for i in range(5)}))
    with pytest.raises(
        LimitExceeded, match=r"5 columns, over the limit of 4.*SAPHENEIA_MAX_COLUMNS"
    ):
        load_table(content, dataclasses.replace(limits, max_columns=4), filename="x.parquet")


def test_parquet_that_inflates_past_the_cap_is_refused(limits: DataLimits) -> None:
    content = parquet_bytes(pa.table({"y": pa.array([0.0] * (MIB // 2), pa.float64())}))
    assert len(content) < 64 * 1024  # 4 MiB of float64 zeros, compressed
    with pytest.raises(PayloadTooLarge, match=r"the Parquet file is over the limit of 1.0 MiB"):
        load_table(content, dataclasses.replace(limits, max_bytes=MIB), filename="x.parquet")


# --- rows and columns of CSV and JSON ---------------------------------------------------------


def test_csv_with_too_many_rows_is_refused(limits: DataLimits) -> None:
    content = ("y\n" + "1\n" * 11).encode()
    with pytest.raises(LimitExceeded, match="more than 10 rows, over the limit of 10"):
        load_table(content, dataclasses.replace(limits, max_rows=10), filename="x.csv")
    assert len(load_table(content, dataclasses.replace(limits, max_rows=11))) == 11


def test_csv_header_with_too_many_columns_is_refused(limits: DataLimits) -> None:
    content = (",".join(f"c{i}" for i in range(300)) + "\n" + ",".join(["1"] * 300)).encode()
    with pytest.raises(LimitExceeded, match="300 columns, over the limit of 256"):
        load_table(content, limits, filename="x.csv")


def test_json_records_over_the_row_cap_are_refused(limits: DataLimits) -> None:
    records = [{"y": 1.0}] * 11
    with pytest.raises(LimitExceeded, match="11 rows"):
        load_table(records, dataclasses.replace(limits, max_rows=10))


def test_json_row_with_a_million_keys_is_refused(limits: DataLimits) -> None:
    records = [{f"k{i}": i for i in range(1_000_000)}]
    with pytest.raises(LimitExceeded, match="1,000,000 columns, over the limit of 256"):
        load_table(records, limits)


def test_json_columns_over_the_caps_are_refused(limits: DataLimits) -> None:
    with pytest.raises(LimitExceeded, match="11 rows"):
        load_table({"y": [1.0] * 11}, dataclasses.replace(limits, max_rows=10))
    with pytest.raises(LimitExceeded, match="3 columns"):
        load_table({"a": [1], "b": [1], "c": [1]}, dataclasses.replace(limits, max_columns=2))


def test_jsonl_upload_is_capped(limits: DataLimits) -> None:
    content = b'{"y": 1}\n' * 11
    with pytest.raises(LimitExceeded, match="11 rows"):
        load_table(content, dataclasses.replace(limits, max_rows=10), filename="x.jsonl")


def test_parquet_text_that_inflates_past_the_cap_is_refused(limits: DataLimits) -> None:
    repeated = pa.array(["x" * 1024] * 2048).dictionary_encode()  # 2 MiB of text, stored once
    content = parquet_bytes(pa.table({"unique_id": repeated}))
    assert len(content) < 64 * 1024
    with pytest.raises(PayloadTooLarge, match=r"the Parquet file is over the limit of 1.0 MiB"):
        load_table(content, dataclasses.replace(limits, max_bytes=MIB), filename="x.parquet")


def test_parquet_text_and_dates_read_as_before(limits: DataLimits) -> None:
    frame = pd.DataFrame(
        {
            "unique_id": ["a", "b", None],
            "ds": pd.date_range("2024-01-01", periods=3),
            "y": [1, 2, 3],
        }
    )
    content = parquet_bytes(pa.Table.from_pandas(frame))
    pd.testing.assert_frame_equal(load_table(content, limits, filename="x.parquet"), frame)
