"""An adapter for testing a job's progress: each forecast call takes ``SAPHENEIA_TEST_SLOW_S``
seconds longer than the drift forecast it returns (Ray's local workers inherit the variable)."""

from __future__ import annotations

import os
import time
from collections.abc import Sequence

from examples.custom_adapter import DriftAdapter
from sapheneia.models.base import NativeForecast
from sapheneia.tasks import ForecastTask


class SlowDrift(DriftAdapter):
    def _predict(
        self, tasks: Sequence[ForecastTask], levels: tuple[float, ...]
    ) -> list[NativeForecast]:
        time.sleep(float(os.environ["SAPHENEIA_TEST_SLOW_S"]))
        return super()._predict(tasks, levels)
