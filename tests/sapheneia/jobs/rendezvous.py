"""An adapter for testing that a job's actors work at the same time: each forecast call leaves a
mark in ``SAPHENEIA_TEST_RENDEZVOUS`` (a folder; Ray's local workers inherit the variable), then
waits until another call has left one too, at most ``WAIT_S``, and notes whether it met one."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Sequence
from pathlib import Path

from examples.custom_adapter import DriftAdapter
from sapheneia.models.base import NativeForecast
from sapheneia.tasks import ForecastTask

WAIT_S = 120


class RendezvousDrift(DriftAdapter):
    def _predict(
        self, tasks: Sequence[ForecastTask], levels: tuple[float, ...]
    ) -> list[NativeForecast]:
        folder = Path(os.environ["SAPHENEIA_TEST_RENDEZVOUS"])
        mine = f"{os.getpid()}-{uuid.uuid4().hex}"
        (folder / f"started-{mine}").touch()
        deadline = time.monotonic() + WAIT_S
        while time.monotonic() < deadline:
            others = [p for p in folder.glob("started-*") if p.name != f"started-{mine}"]
            if others:
                (folder / f"met-{mine}").touch()
                break
            time.sleep(0.1)
        return super()._predict(tasks, levels)
