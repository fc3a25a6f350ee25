"""describe_table reports problems instead of raising."""

from __future__ import annotations

import numpy as np
import pandas as pd
from statsforecast.utils import AirPassengersDF

from sapheneia.data import ColumnRoles, describe_table


def test_a_clean_table() -> None:
    report = describe_table(AirPassengersDF, ColumnRoles())
    assert report["problems"] == []
    assert report["series"]["1"] == {
        "length": 144,
        "freq": "ME",
        "gaps": 0,
        "duplicates": 0,
        "missing_target": 0,
        "future_rows": 0,
        "start": "1949-01-31T00:00:00",
        "end": "1960-12-31T00:00:00",
    }


def test_gaps_duplicates_and_future_rows_are_counted() -> None:
    ds = pd.date_range("2024-01-01", periods=10, freq="D")
    a = pd.DataFrame({"unique_id": "a", "ds": ds.delete([3, 4]), "y": np.arange(8.0)})
    b = pd.DataFrame({"unique_id": "b", "ds": ds, "y": [*range(8), np.nan, np.nan]})
    b = pd.concat([b, b.iloc[[2]]])
    report = describe_table(pd.concat([a, b]), ColumnRoles())
    assert report["series"]["a"]["gaps"] == 2 and report["series"]["a"]["freq"] is None
    assert report["series"]["b"]["duplicates"] == 1
    assert report["series"]["b"]["future_rows"] == 2 and report["series"]["b"]["length"] == 9
    assert any("series 'a'" in p for p in report["problems"])


def test_missing_columns_and_bad_timestamps_do_not_raise() -> None:
    frame = pd.DataFrame({"when": ["2024-01-01", "later", "2024-01-03"], "v": [1, 2, 3]})
    report = describe_table(frame, ColumnRoles())
    assert report["series"] == {} and "missing columns: ds, y, unique_id" in report["problems"][0]
    report = describe_table(frame, ColumnRoles(timestamp="when", target="v", series_id=None))
    assert "row 2 ('later')" in report["problems"][0]
    assert report["series"]["v"]["length"] == 2
