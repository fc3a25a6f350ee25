"""The evaluation report's own scores, in numpy, so that it checks ``sapheneia.selection`` and
``sapheneia.evaluation`` (which score with ``utilsforecast``) rather than repeating them.

Every function takes one series' held-out window; the report aggregates across series.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from numpy.typing import ArrayLike


def mase(actual: np.ndarray, forecast: np.ndarray, history: np.ndarray, season: int) -> float:
    """Mean absolute error over the window divided by the history's in-sample seasonal-naive
    mean absolute error (Hyndman & Koehler 2006); NaN when that scale is zero."""
    scale = float(np.mean(np.abs(history[season:] - history[:-season])))
    error = float(np.mean(np.abs(actual - forecast)))
    return error / scale if scale > 0 else float("nan")


def wql(actual: np.ndarray, quantiles: Mapping[float, np.ndarray]) -> float:
    """Weighted quantile loss: twice the pinball loss summed over the window, averaged over the
    levels, over the sum of absolute actuals (GluonTS' mean weighted quantile loss, the same
    number as utilsforecast's ``scaled_crps``); NaN when the actuals sum to zero."""
    losses = []
    for level, values in quantiles.items():
        error = actual - values
        losses.append(float(np.sum(np.maximum(level * error, (level - 1.0) * error))))
    norm = float(np.sum(np.abs(actual)))
    return 2.0 * float(np.mean(losses)) / norm if norm > 0 else float("nan")


def covered(actual: np.ndarray, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """Per step: the actual lies inside ``[low, high]``."""
    return (low <= actual) & (actual <= high)


def relative_geomean(scores: ArrayLike, baseline: ArrayLike) -> float:
    """Geometric mean over series of ``score / baseline``, leaving out series where either is
    undefined or zero (a log of zero has no mean)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.asarray(scores, dtype=float) / np.asarray(baseline, dtype=float)
    usable = np.isfinite(ratio) & (ratio > 0)
    return float(np.exp(np.mean(np.log(ratio[usable])))) if usable.any() else float("nan")


def precision_recall(flagged: np.ndarray, injected: np.ndarray) -> tuple[float, float]:
    """Precision (flags that are injected spikes) and recall (spikes that are flagged) of two
    boolean masks over the same tested points; precision is NaN when nothing is flagged."""
    hits = int(np.sum(flagged & injected))
    precision = hits / int(np.sum(flagged)) if flagged.any() else float("nan")
    recall = hits / int(np.sum(injected)) if injected.any() else float("nan")
    return precision, recall
