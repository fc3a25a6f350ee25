"""Frequencies, seasons and future calendars."""

from __future__ import annotations

import pandas as pd
import pytest

from sapheneia.data import future_timestamps, infer_frequency, season_length
from sapheneia.errors import IrregularTimestamps


@pytest.mark.parametrize(
    ("freq", "length"),
    [
        ("h", 24),
        ("D", 7),
        ("B", 5),
        ("W-SUN", 52),
        ("MS", 12),
        ("ME", 12),
        ("QS-OCT", 4),
        ("QE-DEC", 4),
        ("YS-JAN", 1),
        ("min", 60),
        ("15min", 4),
        ("2h", 12),
        ("s", 1),
        ("not-a-freq", 1),
    ],
)
def test_season_length(freq: str, length: int) -> None:
    assert season_length(freq) == length


@pytest.mark.parametrize(
    ("freq", "start", "expected"),
    [
        ("MS", "2020-01-01", "MS"),
        ("ME", "2020-01-31", "ME"),
        ("B", "2024-01-01", "B"),
        ("W-SUN", "2024-01-07", "W-SUN"),
        ("QS-JAN", "2020-01-01", "QS-OCT"),
        ("QE-DEC", "2020-03-31", "QE-DEC"),
        ("h", "2024-01-01", "h"),
        ("D", "2024-01-01", "D"),
        ("YE-DEC", "2000-12-31", "YE-DEC"),
    ],
)
def test_infer_frequency(freq: str, start: str, expected: str) -> None:
    assert infer_frequency(pd.date_range(start, periods=12, freq=freq)) == expected


def test_infer_frequency_with_a_time_zone() -> None:
    stamps = pd.date_range("2024-03-30", periods=48, freq="h", tz="Europe/Paris")
    assert infer_frequency(stamps) == "h"
    future = future_timestamps(stamps[-1], "h", 2)
    assert future[0] == stamps[-1] + pd.Timedelta(hours=1) and str(future.tz) == "Europe/Paris"


def test_infer_frequency_names_the_gap() -> None:
    # weekend days are present, so the calendar is daily, not business-daily
    stamps = pd.date_range("2024-01-01", periods=10, freq="D").delete([2, 3, 4])
    with pytest.raises(
        IrregularTimestamps,
        match=r"series 's1' is missing 3 timestamps at frequency 'D' \(first: 2024-01-03",
    ):
        infer_frequency(stamps, series_id="s1")


def test_no_regular_spacing_at_all() -> None:
    stamps = pd.to_datetime(
        ["2024-01-01", "2024-01-02 07:13", "2024-01-09 01:00", "2024-03-01 05:00"], format="ISO8601"
    )
    with pytest.raises(IrregularTimestamps, match="the series has no regular spacing; resample"):
        infer_frequency(stamps)


@pytest.mark.parametrize(
    ("last", "freq", "expected"),
    [
        ("2024-01-31", "ME", ["2024-02-29", "2024-03-31", "2024-04-30"]),
        ("2024-11-01", "MS", ["2024-12-01", "2025-01-01", "2025-02-01"]),
        ("2024-01-05", "B", ["2024-01-08", "2024-01-09", "2024-01-10"]),
        ("2024-01-07", "W-SUN", ["2024-01-14", "2024-01-21", "2024-01-28"]),
        ("2024-12-31", "QE-DEC", ["2025-03-31", "2025-06-30", "2025-09-30"]),
        (
            "2024-01-15",
            "MS",
            ["2024-02-01", "2024-03-01", "2024-04-01"],
        ),  # last is off the calendar
    ],
)
def test_future_timestamps_follow_the_calendar(last: str, freq: str, expected: list[str]) -> None:
    future = future_timestamps(pd.Timestamp(last), freq, 3)
    assert list(future.strftime("%Y-%m-%d")) == expected
