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
    # np.isclose's own test (atol 1e-9, rtol 1e-5), written for scalars: it runs per series and
    # level, where numpy's call overhead is most of the cost.
    for row, native_level in enumerate(levels):
        if abs(float(native_level) - level) <= 1e-9 + 1e-5 * abs(level):
            return np.asarray(values[row], dtype=float), True
    native = np.asarray(levels, dtype=float)
    order = np.argsort(native)
    native, rows = native[order], np.asarray(values, dtype=float)[order]
    interpolated = np.array(
        [np.interp(level, native, rows[:, step]) for step in range(rows.shape[1])]
    )
    return interpolated, False
