"""Tables the UI shows beside a forecast or an anomaly run, from the API's answers; pure functions.

- ``selection_table``: what ``auto`` / ``ensemble`` chose per series (the answer's ``selection``).
- ``coverage_table``: the calibration block's coverage before and after, per interval and level.
- ``anomaly_points`` / ``flagged_points``: the anomalies answer as a frame, and its flagged rows.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

SELECTION_COLUMNS = ["request", "series", "chosen", "score", "metric", "runner-up", "its score"]
COVERAGE_COLUMNS = ["model", "what", "nominal %", "before %", "after %"]
FLAGGED_COLUMNS = ["series", "ds", "y", "lo", "hi", "score"]


def _score(value: Any) -> float | None:
    return None if value is None else round(float(value), 4)


def selection_table(extras: dict[str, dict[str, Any]]) -> pd.DataFrame:
    """One row per (request, series): the chosen model (an ensemble's members joined with '+'),
    its score and the runner-up. ``extras``: requested model -> the answer's extra blocks."""
    rows = []
    for requested, extra in extras.items():
        for entry in extra.get("selection") or []:
            members = entry.get("members")
            rows.append(
                [
                    requested,
                    str(entry.get("unique_id")),
                    " + ".join(members) if members else entry.get("selected_model"),
                    _score(entry.get("score")),
                    entry.get("metric"),
                    entry.get("runner_up"),
                    _score(entry.get("runner_up_score")),
                ]
            )
    return pd.DataFrame(rows, columns=SELECTION_COLUMNS)


def left_out_text(extras: dict[str, dict[str, Any]]) -> list[str]:
    """Candidates that ``auto`` / ``ensemble`` could not use, with the API's reason."""
    return [
        f"{requested}: left out {model} ({why})"
        for requested, extra in extras.items()
        for model, why in (extra.get("candidates_left_out") or {}).items()
    ]


def _percent(value: Any) -> float | None:
    return None if value is None else round(float(value) * 100, 1)


def coverage_table(extras: dict[str, dict[str, Any]]) -> pd.DataFrame:
    """Per model: each central interval (share of actuals inside it) and each quantile level
    (share of actuals at or below it) with its nominal coverage and the empirical coverage on the
    calibration windows before and after calibrating, in percent."""
    rows = []
    for model, extra in extras.items():
        report = extra.get("calibration")
        if not report:
            continue
        for interval in report.get("intervals") or []:
            level = float(interval["level"])
            rows.append(
                [
                    model,
                    f"{level:g}% interval",
                    round(level, 1),
                    _percent(interval.get("before")),
                    _percent(interval.get("after")),
                ]
            )
        for quantile in report.get("quantiles") or []:
            level = float(quantile["level"])
            rows.append(
                [
                    model,
                    f"q-{level:g} (at or below)",
                    round(level * 100, 1),
                    _percent(quantile.get("before")),
                    _percent(quantile.get("after")),
                ]
            )
    return pd.DataFrame(rows, columns=COVERAGE_COLUMNS)


def calibration_note(extras: dict[str, dict[str, Any]]) -> list[str]:
    """How each model was calibrated: the windows, and whether scores were pooled."""
    notes = []
    for model, extra in extras.items():
        report = extra.get("calibration")
        if report:
            pooled = " (pooled across series: short histories)" if report.get("pooled") else ""
            notes.append(f"{model}: calibrated on {report.get('windows')} windows{pooled}")
    return notes


def anomaly_points(answer: dict[str, Any], id_column: str) -> pd.DataFrame:
    """Every tested point: ``unique_id`` (as text), ``ds`` (parsed), ``y``, ``mean``, ``lo``,
    ``hi``, ``anomaly`` (bool) and ``score``; the caller's id column renamed to ``unique_id``."""
    frame = pd.DataFrame(answer.get("anomalies") or [])
    columns = ["unique_id", "ds", "y", "mean", "lo", "hi", "anomaly", "score"]
    if frame.empty:
        empty = pd.DataFrame(columns=columns).astype(float)
        return empty.astype({"unique_id": str, "ds": "datetime64[ns]", "anomaly": bool})
    if id_column in frame.columns and id_column != "unique_id":
        frame = frame.rename(columns={id_column: "unique_id"})
    if "unique_id" not in frame.columns:
        frame["unique_id"] = ""  # one series
    frame["unique_id"] = frame["unique_id"].astype(str)
    frame["ds"] = pd.to_datetime(frame["ds"])
    frame["anomaly"] = frame["anomaly"].astype(bool)
    return frame[columns]


def flagged_points(points: pd.DataFrame) -> pd.DataFrame:
    """The flagged points, most anomalous first, as the table shows them."""
    flagged = points[points["anomaly"].astype(bool)].sort_values(
        ["score", "ds"], ascending=[False, True]
    )
    table = flagged.rename(columns={"unique_id": "series"})[FLAGGED_COLUMNS].copy()
    table["ds"] = table["ds"].dt.strftime("%Y-%m-%d %H:%M:%S").str.removesuffix(" 00:00:00")
    for column in ("y", "lo", "hi", "score"):
        table[column] = table[column].astype(float).round(4)
    return table.reset_index(drop=True)
