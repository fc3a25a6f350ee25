"""Series with an anomaly, and the anomalies route's answer for them computed independently:
statsforecast's AutoETS called directly, with the second round's rule written out here (a
flagged point that does not follow a flagged one is replaced, in the history of every later
point, by its one-step mean; the later points are forecast again)."""

from __future__ import annotations

import numpy as np
import pandas as pd

MONTHS = 72


def walk(seed: int) -> np.ndarray:
    """Monthly values that wander (a random walk with drift and a small yearly cycle): AutoETS
    follows the level closely, so whatever sits at the end of a context moves the forecast."""
    rng = np.random.default_rng(seed)
    months = np.arange(MONTHS)
    return 200 + np.cumsum(rng.normal(0.5, 1.0, MONTHS)) + 3 * np.sin(2 * np.pi * months / 12)


def monthly(y: np.ndarray) -> pd.DataFrame:
    stamps = pd.date_range("2015-01-01", periods=len(y), freq="MS")
    return pd.DataFrame({"unique_id": "m", "ds": stamps, "y": y})


def ets_one_step(y: np.ndarray, points: range, level: int) -> np.ndarray:
    """``(len(points), 3)``: AutoETS' one-step mean and ``level`` % interval at each point, fitted
    on the values before it, as statsforecast computes them."""
    from statsforecast.models import AutoETS

    rows = []
    for k in points:
        out = AutoETS(season_length=12).forecast(y=y[:k], h=1, level=[level])
        rows.append([out["mean"][0], out[f"lo-{level}"][0], out[f"hi-{level}"][0]])
    return np.array(rows)


def two_rounds_reference(y: np.ndarray, last_n: int, level: int) -> tuple[np.ndarray, ...]:
    """The first round's flags, then the answer's mean, lo, hi and flags after the second."""
    points = range(len(y) - last_n, len(y))
    first = ets_one_step(y, points, level)
    tested = y[len(y) - last_n :]
    flagged = (tested < first[:, 1]) | (tested > first[:, 2])
    replaced = flagged & ~np.concatenate([[False], flagged[:-1]])
    final = first.copy()
    if replaced.any():
        cleaned = y.copy()
        cleaned[len(y) - last_n + np.flatnonzero(replaced)] = first[replaced, 0]
        after = int(np.flatnonzero(replaced)[0]) + 1
        final[after:] = ets_one_step(cleaned, points[after:], level)
    flags = (tested < final[:, 1]) | (tested > final[:, 2])
    return flagged, final[:, 0], final[:, 1], final[:, 2], flags
