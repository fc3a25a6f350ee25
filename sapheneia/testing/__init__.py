"""Helpers for tests: tiny random-weight checkpoints written through each library's own save method,
and hand-built ``ForecastTask``s. Nothing here downloads anything."""

from sapheneia.testing.checkpoints import (
    write_tiny_timesfm_2p0,
    write_tiny_timesfm_2p0_original,
    write_tiny_timesfm_2p5,
    write_tiny_timesfm_3p0,
)
from sapheneia.testing.tasks import make_task

__all__ = [
    "make_task",
    "write_tiny_timesfm_2p0",
    "write_tiny_timesfm_2p0_original",
    "write_tiny_timesfm_2p5",
    "write_tiny_timesfm_3p0",
]
