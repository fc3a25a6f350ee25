"""load_table: formats, confined local paths, guarded URLs, size caps."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import pandas as pd
import pytest

from sapheneia.data import DataLimits, load_table
from sapheneia.data import urls as urls_module
from sapheneia.errors import (
    InvalidInput,
    PayloadTooLarge,
    SourceForbidden,
    SourceNotFound,
    SourceUnreachable,
    UnsupportedFormat,
)

SAMPLE_CSV = (
    "date,price,volume\n2024-01-01,10,1\n2024-02-01,11,2\n2024-03-01,12,3\n2024-04-01,13,4\n"
)
EXPECTED = pd.read_csv(io.StringIO(SAMPLE_CSV))


def assert_no_server_path(message: str, *paths: Path) -> None:
    for path in paths:
        assert str(path) not in message
        assert str(path.resolve()) not in message


# --- inline records and uploads ---------------------------------------------------------------


def test_records_become_a_frame(limits: DataLimits) -> None:
    frame = load_table([{"ds": "2024-01-01", "y": 1.0}, {"ds": "2024-01-02", "y": 2.0}], limits)
    assert list(frame.columns) == ["ds", "y"] and len(frame) == 2


def test_record_that_is_not_an_object_is_refused(limits: DataLimits) -> None:
    with pytest.raises(InvalidInput, match="data row 2 is not an object"):
        load_table([{"ds": "2024-01-01", "y": 1}, 5], limits)  # type: ignore[list-item]


@pytest.mark.parametrize("name", ["upload.csv", None])
def test_csv_upload_with_and_without_name(limits: DataLimits, name: str | None) -> None:
    frame = load_table(SAMPLE_CSV.encode(), limits, filename=name)
    pd.testing.assert_frame_equal(frame, EXPECTED)


@pytest.mark.parametrize("name", ["upload.parquet", None])
def test_parquet_upload_with_and_without_name(limits: DataLimits, name: str | None) -> None:
    buffer = io.BytesIO()
    EXPECTED.to_parquet(buffer)
    pd.testing.assert_frame_equal(load_table(buffer.getvalue(), limits, filename=name), EXPECTED)


@pytest.mark.parametrize("orient", ["records", "list"])
def test_json_upload_records_or_columns(limits: DataLimits, orient: str) -> None:
    content = json.dumps(EXPECTED.to_dict(orient=orient)).encode()  # type: ignore[call-overload]
    pd.testing.assert_frame_equal(load_table(content, limits, filename="t.json"), EXPECTED)


def test_oversized_upload_is_refused(data_dir: Path) -> None:
    small = DataLimits(data_dir=data_dir, max_bytes=64)
    with pytest.raises(PayloadTooLarge, match=r"the limit is 0\.0 MiB"):
        load_table(SAMPLE_CSV.encode() * 4, small, filename="big.csv")


def test_broken_parquet_says_what_to_send(limits: DataLimits) -> None:
    with pytest.raises(UnsupportedFormat, match=r"could not be read as PARQUET.*send CSV"):
        load_table(b"PAR1 not really parquet", limits, filename="x.parquet")


def test_broken_json_names_the_line(limits: DataLimits) -> None:
    with pytest.raises(UnsupportedFormat, match=r"not valid JSON.*line 1"):
        load_table(b'[{"ds": 1,', limits, filename="x.json")


def test_spreadsheet_is_refused_with_the_fix(limits: DataLimits) -> None:
    with pytest.raises(UnsupportedFormat, match=r"spreadsheets \(.xlsx\).*export the sheet as CSV"):
        load_table(b"PK\x03\x04", limits, filename="book.xlsx")


def test_empty_upload_is_refused(limits: DataLimits) -> None:
    with pytest.raises(UnsupportedFormat, match="the file is empty"):
        load_table(b"  \n", limits, filename="x.csv")


# --- local paths ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "source",
    ["sample.csv", "uploads/sample.csv", "nested/sample.csv", "data/uploads/sample.csv"],
)
def test_local_paths_the_earlier_product_accepted(limits: DataLimits, source: str) -> None:
    pd.testing.assert_frame_equal(load_table(source, limits), EXPECTED)


def test_absolute_path_inside_the_data_dir(limits: DataLimits, data_dir: Path) -> None:
    frame = load_table(str(data_dir / "nested" / "sample.csv"), limits)
    pd.testing.assert_frame_equal(frame, EXPECTED)


@pytest.mark.parametrize(
    "source", ["../etc/passwd", "/etc/passwd", "uploads/../../secret.csv", "data/../secret.csv"]
)
def test_paths_outside_the_data_dir_are_forbidden(
    limits: DataLimits, data_dir: Path, source: str
) -> None:
    (data_dir.parent / "secret.csv").write_text(SAMPLE_CSV)
    with pytest.raises(SourceForbidden, match="outside the data directory") as caught:
        load_table(source, limits)
    assert_no_server_path(caught.value.message, data_dir, data_dir.parent)
    assert "passwd" not in caught.value.message


def test_symlink_out_of_the_data_dir_is_forbidden(limits: DataLimits, data_dir: Path) -> None:
    outside = data_dir.parent / "outside.csv"
    outside.write_text(SAMPLE_CSV)
    os.symlink(outside, data_dir / "uploads" / "link.csv")
    with pytest.raises(SourceForbidden, match="outside the data directory") as caught:
        load_table("link.csv", limits)
    assert_no_server_path(caught.value.message, data_dir, outside)


def test_symlink_inside_the_data_dir_is_followed(limits: DataLimits, data_dir: Path) -> None:
    os.symlink(data_dir / "nested" / "sample.csv", data_dir / "alias.csv")
    pd.testing.assert_frame_equal(load_table("alias.csv", limits), EXPECTED)


def test_missing_file_echoes_only_the_callers_string(limits: DataLimits, data_dir: Path) -> None:
    with pytest.raises(
        SourceNotFound, match=r"no file 'nope\.csv' in the data directory"
    ) as caught:
        load_table("nope.csv", limits)
    assert_no_server_path(caught.value.message, data_dir)


def test_oversized_local_file_is_refused(data_dir: Path) -> None:
    with pytest.raises(PayloadTooLarge, match="the limit is"):
        load_table("sample.csv", DataLimits(data_dir=data_dir, max_bytes=10))


def test_a_folder_is_not_a_file(limits: DataLimits) -> None:
    with pytest.raises(InvalidInput, match="'nested' is a folder"):
        load_table("nested", limits)


@pytest.mark.parametrize(
    ("source", "error", "words"),
    [
        ("file:///etc/passwd", SourceForbidden, "file:// URLs are not accepted"),
        ("ftp://example.com/x.csv", UnsupportedFormat, "'ftp://' sources are not supported"),
        ("s3://bucket/x.csv", SourceForbidden, "s3:// sources are disabled"),
    ],
)
def test_other_schemes_are_refused_with_the_fix(
    limits: DataLimits, source: str, error: type[Exception], words: str
) -> None:
    with pytest.raises(error, match=words):
        load_table(source, limits)


def test_object_store_without_its_plugin_says_what_to_install(data_dir: Path) -> None:
    allowed = DataLimits(data_dir=data_dir, allow_object_stores=True)
    with pytest.raises(UnsupportedFormat, match="needs fsspec and s3fs"):
        load_table("s3://bucket/x.csv", allowed)


# --- URLs -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/x.csv",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]/x.csv",
        "http://localhost/x.csv",
        "http://10.0.0.8/x.csv",
        "http://[::ffff:127.0.0.1]/x.csv",
        "https://0.0.0.0/x.csv",
    ],
)
def test_private_urls_are_forbidden(limits: DataLimits, data_dir: Path, url: str) -> None:
    with pytest.raises(SourceForbidden, match="private, loopback or link-local") as caught:
        load_table(url, limits)
    assert_no_server_path(caught.value.message, data_dir)


def test_url_load_from_loopback_when_allowed(data_dir: Path, http_root: tuple[str, Path]) -> None:
    base, _ = http_root
    allowed = DataLimits(data_dir=data_dir, allow_private_urls=True, url_ports=None)
    pd.testing.assert_frame_equal(load_table(f"{base}/x.csv", allowed), EXPECTED)


def test_url_redirects_are_followed_and_rechecked(
    data_dir: Path, http_root: tuple[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    base, _ = http_root
    allowed = DataLimits(data_dir=data_dir, allow_private_urls=True, url_ports=None)
    pd.testing.assert_frame_equal(load_table(f"{base}/redirect/x.csv", allowed), EXPECTED)
    # Treat 127.0.0.1 as public and every other address as private: the first hop passes,
    # the redirect to 127.0.0.2 must be refused by the check on the new connection.
    monkeypatch.setattr(urls_module, "is_public", lambda address: address == "127.0.0.1")
    guarded = DataLimits(data_dir=data_dir, url_ports=None)
    pd.testing.assert_frame_equal(load_table(f"{base}/x.csv", guarded), EXPECTED)
    with pytest.raises(SourceForbidden, match=r"host '127\.0\.0\.2'"):
        load_table(f"{base}/away", guarded)


def test_url_download_over_the_cap(data_dir: Path, http_root: tuple[str, Path]) -> None:
    base, root = http_root
    (root / "big.csv").write_text(SAMPLE_CSV * 50)
    small = DataLimits(data_dir=data_dir, max_bytes=100, allow_private_urls=True, url_ports=None)
    with pytest.raises(PayloadTooLarge, match="over the limit"):
        load_table(f"{base}/big.csv", small)


def test_url_error_status_is_unreachable(data_dir: Path, http_root: tuple[str, Path]) -> None:
    base, _ = http_root
    allowed = DataLimits(data_dir=data_dir, allow_private_urls=True, url_ports=None)
    with pytest.raises(SourceUnreachable, match="answered HTTP 404"):
        load_table(f"{base}/missing.csv", allowed)


def test_url_that_answers_too_slowly(data_dir: Path, http_root: tuple[str, Path]) -> None:
    base, _ = http_root
    impatient = DataLimits(
        data_dir=data_dir, timeout_s=0.3, allow_private_urls=True, url_ports=None
    )
    with pytest.raises(SourceUnreachable, match="could not be fetched"):
        load_table(f"{base}/slow/x.csv", impatient)
