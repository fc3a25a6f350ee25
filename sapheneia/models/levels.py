"""Quantile levels: picking a requested level from a model's native ones."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def select_level(
    levels: Sequence[float], values: np.ndarray, level: float
) -> tuple[np.ndarray, bool]:
    """The row of ``values`` ``(n_levels, horizon)`` at ``level``; linear in between, flat outside.

    Returns the row and whether it was native (no interpolation).
    """
    native = np.asarray(levels, dtype=float)
    match = np.flatnonzero(np.isclose(native, level, atol=1e-9))
    if match.size:
        return np.asarray(values[match[0]], dtype=float), True
    order = np.argsort(native)
    native, rows = native[order], np.asarray(values, dtype=float)[order]
    interpolated = np.array(
        [np.interp(level, native, rows[:, step]) for step in range(rows.shape[1])]
    )
    return interpolated, False
