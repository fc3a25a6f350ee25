"""Helpers for tests: random-weight checkpoints written through each library's own save method (tiny
where the library lets the size be chosen; TimesFM-2.5's is full size), and hand-built
``ForecastTask``s. Nothing here downloads anything."""

from sapheneia.testing.checkpoints import (
    write_random_timesfm_2p5,
    write_tiny_timesfm_2p0,
    write_tiny_timesfm_2p0_original,
    write_tiny_timesfm_3p0,
)
from sapheneia.testing.tasks import covariate_task, make_task, result_of, wavy_series

__all__ = [
    "covariate_task",
    "make_task",
    "result_of",
    "wavy_series",
    "write_random_timesfm_2p5",
    "write_tiny_timesfm_2p0",
    "write_tiny_timesfm_2p0_original",
    "write_tiny_timesfm_3p0",
]
