"""``describe_table``: what the web UI shows about a table before forecasting. Never raises for
data problems; it reports them."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from sapheneia.data.calendar import best_grid
from sapheneia.data.roles import ColumnRoles
from sapheneia.data.table import labels, parse_timestamps, to_datetimes
from sapheneia.errors import DataError


def describe_table(frame: pd.DataFrame, roles: ColumnRoles) -> dict[str, Any]:
    """``{"rows", "columns", "problems": [text], "series": {id: {length, freq, gaps, duplicates,
    missing_target, future_rows, start, end}}}``; ``freq`` is None when no calendar fits."""
    report: dict[str, Any] = {
        "rows": len(frame),
        "columns": [str(c) for c in frame.columns],
        "problems": [],
        "series": {},
    }
    named = [roles.timestamp, roles.target, *roles.covariates]
    if roles.series_id is not None:
        named.append(roles.series_id)
    missing = [c for c in named if c not in frame.columns]
    if missing:
        report["problems"].append(f"missing columns: {', '.join(missing)}")
        return report
    try:
        times = parse_timestamps(frame[roles.timestamp].reset_index(drop=True), roles.timestamp)
    except DataError as exc:
        report["problems"].append(exc.message)
        try:
            times = to_datetimes(frame[roles.timestamp].reset_index(drop=True))
        except DataError:
            return report
    target = pd.to_numeric(frame[roles.target].reset_index(drop=True), errors="coerce")
    ids = (
        pd.Series(roles.target, index=times.index)
        if roles.series_id is None
        else labels(frame[roles.series_id].reset_index(drop=True))
    )
    table = pd.DataFrame({"series": ids, "time": times, "target": target}).dropna(subset=["time"])
    for series, rows in table.sort_values(["series", "time"], kind="stable").groupby("series"):
        report["series"][str(series)] = _describe_series(rows)
        summary = report["series"][str(series)]
        if summary["duplicates"] or summary["gaps"] or summary["freq"] is None:
            report["problems"].append(
                f"series '{series}': {summary['duplicates']} duplicate timestamps, "
                f"{summary['gaps'] if summary['gaps'] is not None else 'unknown'} gaps, "
                f"frequency {summary['freq'] or 'not inferred'}"
            )
    return report


def _describe_series(rows: pd.DataFrame) -> dict[str, Any]:
    times = pd.DatetimeIndex(rows["time"])
    observed = np.flatnonzero(rows["target"].notna().to_numpy())
    history = times[: observed[-1] + 1] if observed.size else times[:0]
    unique = history.unique()
    freq, gaps = None, None
    if len(unique) >= 3:
        inferred = pd.infer_freq(unique)
        found = best_grid(unique)
        if inferred is not None:
            freq, gaps = inferred, 0
        elif found is not None:
            freq, gaps = (found.freq, 0) if found.regular else (None, len(found.missing))
    return {
        "length": len(history),
        "freq": freq,
        "gaps": gaps,
        "duplicates": int(times.duplicated().sum()),
        "missing_target": int(rows["target"].iloc[: len(history)].isna().sum()),
        "future_rows": len(times) - len(history),
        "start": times[0].isoformat() if len(times) else None,
        "end": times[-1].isoformat() if len(times) else None,
    }
