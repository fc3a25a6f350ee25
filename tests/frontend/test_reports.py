"""The selection, coverage and anomaly tables built from the API's answers: no browser, no service."""

from __future__ import annotations

import pandas as pd

from frontend.reports import (
    anomaly_points,
    calibration_note,
    coverage_table,
    flagged_points,
    left_out_text,
    selection_table,
)

AUTO = {
    "selection": [
        {"unique_id": "north", "selected_model": "auto-ets", "score": 0.123456,
         "runner_up": "seasonal-naive", "runner_up_score": 0.5, "metric": "WQL"},
        {"unique_id": "south", "selected_model": "seasonal-naive", "score": None,
         "runner_up": None, "runner_up_score": None, "metric": "WQL"},
    ],
    "candidates_left_out": {"auto-theta": "over the 30 s selection budget"},
}  # fmt: skip
ENSEMBLE = {
    "selection": [
        {"unique_id": "north", "selected_model": "auto-ets", "score": 0.1, "runner_up": "theta",
         "runner_up_score": 0.2, "metric": "MASE", "members": ["auto-ets", "theta"]},
    ],
}  # fmt: skip
CALIBRATION = {
    "windows": 10,
    "pooled": True,
    "quantiles": [{"level": 0.1, "before": 0.02, "after": 0.1}],
    "intervals": [{"level": 80.0, "before": 0.55, "after": 0.8125}],
}


def test_selection_per_request_and_series() -> None:
    table = selection_table({"auto": AUTO, "ensemble": ENSEMBLE, "auto-ets": {}})
    # An undefined score is missing (NaN in the frame, an empty cell on the page).
    assert table.astype(object).where(table.notna(), None).to_dict(orient="records") == [
        {"request": "auto", "series": "north", "chosen": "auto-ets", "score": 0.1235,
         "metric": "WQL", "runner-up": "seasonal-naive", "its score": 0.5},
        {"request": "auto", "series": "south", "chosen": "seasonal-naive", "score": None,
         "metric": "WQL", "runner-up": None, "its score": None},
        {"request": "ensemble", "series": "north", "chosen": "auto-ets + theta", "score": 0.1,
         "metric": "MASE", "runner-up": "theta", "its score": 0.2},
    ]  # fmt: skip
    assert selection_table({"auto-ets": {}}).empty
    assert left_out_text({"auto": AUTO}) == [
        "auto: left out auto-theta (over the 30 s selection budget)"
    ]


def test_coverage_before_and_after_in_percent() -> None:
    table = coverage_table({"auto-ets": {"calibration": CALIBRATION}, "theta": {}})
    assert table.to_dict(orient="records") == [
        {"model": "auto-ets", "what": "80% interval", "nominal %": 80.0, "before %": 55.0,
         "after %": 81.2},
        {"model": "auto-ets", "what": "q-0.1 (at or below)", "nominal %": 10.0, "before %": 2.0,
         "after %": 10.0},
    ]  # fmt: skip
    assert calibration_note({"auto-ets": {"calibration": CALIBRATION}}) == [
        "auto-ets: calibrated on 10 windows (pooled across series: short histories)"
    ]
    assert coverage_table({}).empty


def answer(id_column: str) -> dict:
    rows = [
        {id_column: 7, "ds": "2024-03-01T00:00:00", "y": 9.0, "mean": 1.0, "lo": 0.0, "hi": 2.0,
         "anomaly": True, "score": 3.5},
        {id_column: 7, "ds": "2024-02-01T00:00:00", "y": 1.5, "mean": 1.0, "lo": 0.0, "hi": 2.0,
         "anomaly": False, "score": 0.0},
        {id_column: 8, "ds": "2024-01-01T00:00:00", "y": -1.0, "mean": 1.0, "lo": 0.0,
         "hi": 2.0, "anomaly": True, "score": 0.5},
    ]  # fmt: skip
    return {"anomalies": rows}


def test_anomaly_points_and_the_flagged_ones_most_anomalous_first() -> None:
    points = anomaly_points(answer("store"), "store")
    assert list(points.columns) == ["unique_id", "ds", "y", "mean", "lo", "hi", "anomaly", "score"]
    assert points["unique_id"].tolist() == ["7", "7", "8"]
    assert points["ds"].iloc[0] == pd.Timestamp("2024-03-01")
    flagged = flagged_points(points)
    assert flagged.to_dict(orient="records") == [
        {"series": "7", "ds": "2024-03-01", "y": 9.0, "lo": 0.0, "hi": 2.0, "score": 3.5},
        {"series": "8", "ds": "2024-01-01", "y": -1.0, "lo": 0.0, "hi": 2.0, "score": 0.5},
    ]
    assert anomaly_points({"anomalies": []}, "store").empty
    assert flagged_points(anomaly_points({}, "unique_id")).empty
