"""Reading uploads and the data report shown before a forecast."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from frontend.columns import ColumnMapping
from frontend.tables import DataError, read_upload, report


def monthly(series: str, n: int = 24) -> pd.DataFrame:
    months = pd.date_range("2020-01-01", periods=n, freq="MS")
    return pd.DataFrame({"ds": months.strftime("%Y-%m-%d"), "unique_id": series, "y": range(n)})


def test_csv_and_parquet_uploads_keep_their_bytes(tmp_path: Path) -> None:
    frame = monthly("a")
    frame.to_csv(tmp_path / "a.csv", index=False)
    frame.to_parquet(tmp_path / "a.parquet")
    for name in ("a.csv", "a.parquet"):
        table = read_upload(str(tmp_path / name), max_bytes=10_000)
        assert table.file_name == name
        assert table.content == (tmp_path / name).read_bytes()
        assert table.frame.shape == (24, 3)


def test_other_files_are_refused_by_name(tmp_path: Path) -> None:
    (tmp_path / "notes.xlsx").write_bytes(b"PK")
    with pytest.raises(DataError, match=r"'notes.xlsx' is neither CSV nor Parquet"):
        read_upload(str(tmp_path / "notes.xlsx"), max_bytes=10_000)


def test_a_file_over_the_cap_is_refused_before_it_is_read(tmp_path: Path) -> None:
    (tmp_path / "big.csv").write_bytes(b"ds,y\n" + b"2020-01-01,1\n" * 100)
    with pytest.raises(DataError, match=r"over the 1,000-byte upload limit; upload less data"):
        read_upload(str(tmp_path / "big.csv"), max_bytes=1000)


def test_report_names_frequency_gaps_duplicates() -> None:
    frame = pd.concat([monthly("a"), monthly("b").drop(index=[3, 4]), monthly("a").head(1)])
    text = report(frame, ColumnMapping(timestamp="ds", target="y", series_id="unique_id"))
    lines = text.splitlines()
    assert lines[:3] == [
        "- 47 rows, 2 series",
        "- frequency: MS",
        "- gaps: 2, duplicate timestamps: 1",
    ]
    assert any("series 'b'" in line for line in lines)


def test_report_escapes_names() -> None:
    frame = monthly("<b>x</b>").drop(index=[3])
    text = report(frame, ColumnMapping(timestamp="ds", target="y", series_id="unique_id"))
    assert "series '&lt;b&gt;x&lt;/b&gt;'" in text and "<b>" not in text
