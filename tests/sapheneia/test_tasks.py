"""Result tables: the vectorised columns equal the per-series frames they replace."""

from __future__ import annotations

import numpy as np
import pandas as pd

from sapheneia.tasks import ForecastResult, iso_timestamps, results_columns


def result(series_id: str, start: str, freq: str, tz: str | None = None) -> ForecastResult:
    stamps = pd.date_range(start, periods=3, freq=freq, tz=tz)
    base = np.arange(3, dtype=float) + len(series_id)
    return ForecastResult(
        series_id=series_id,
        mean=base,
        median=base + 0.5,
        quantiles={0.1: base - 1, 0.9: base + 1},
        future_timestamps=stamps,
    )


def test_columns_equal_the_concatenated_frames() -> None:
    results = [result("a", "2024-01-31", "ME"), result("bb", "2024-03-01", "MS")]
    expected = pd.concat([r.to_frame() for r in results], ignore_index=True)
    table = pd.DataFrame(results_columns(results))
    pd.testing.assert_frame_equal(table, expected, check_dtype=False)


def test_iso_text_matches_isoformat() -> None:
    for results in (
        [result("a", "2024-01-01", "D"), result("b", "2024-01-01 06:00", "h")],
        [result("a", "2024-01-01", "D", tz="UTC")],
        [result("a", "2024-01-01", "250ms")],
        # a zone across a daylight-saving change, shared instants, and two zones in one answer
        [
            result("a", "2024-03-31", "h", "Europe/Berlin"),
            result("b", "2024-03-31", "h", "Europe/Berlin"),
        ],
        [result("a", "2024-01-01", "D", tz="UTC"), result("b", "2024-01-01", "D")],
        [
            ForecastResult(
                "u", np.zeros(2), np.zeros(2), {}, pd.date_range("2300-01-01", periods=2, unit="us")
            )
        ],
    ):
        expected = [t.isoformat() for r in results for t in r.future_timestamps]
        assert iso_timestamps(results) == expected
