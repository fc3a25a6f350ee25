"""Traffic splits and shadow models: a routed name in serve_config.yaml sends each series to one
of several models by weight, and may copy the request to a candidate whose answers are recorded,
never returned.

A series meets the same arm on every request and every ingress replica: its arm is drawn from a
SHA-256 of the route's name and the series id, not from a random number or Python's per-process
``hash``. Changing the weights moves only the series whose draw crosses a boundary.
"""

from __future__ import annotations

import asyncio
import bisect
import hashlib
import json
import logging
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator

from sapheneia.errors import ModelNotFound
from sapheneia.tasks import ForecastResult, ForecastTask

logger = logging.getLogger("sapheneia.shadow")

# Shadow calls run after the answer, beside the live traffic; past this many in flight per ingress
# replica a copy is skipped (and counted) rather than queued, so a slow candidate never backs up.
SHADOW_IN_FLIGHT = 8

Forecaster = Callable[[str, list[ForecastTask]], Awaitable[list[ForecastResult]]]


class TrafficRoute(BaseModel):
    """``traffic:`` entries of the api application's args."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, description="The name callers send as 'model'.")
    split: dict[str, float] = Field(
        min_length=1,
        description="Model id -> weight (any positive numbers; 90 and 10 are 90 % and 10 %).",
    )
    shadow: str | None = Field(
        default=None,
        description="A model that also forecasts every request of this route; its answers are "
        "recorded for comparison, never returned.",
    )

    @field_validator("split")
    @classmethod
    def _positive(cls, split: dict[str, float]) -> dict[str, float]:
        for model, weight in split.items():
            if not weight > 0:
                raise ValueError(f"weight of '{model}' must be a positive number, got {weight}")
        return split

    def models(self) -> set[str]:
        return set(self.split) | ({self.shadow} if self.shadow else set())

    def arm(self, series_id: str) -> str:
        """The model that forecasts ``series_id`` on this route (the same one every time)."""
        digest = hashlib.sha256(f"{self.name}\0{series_id}".encode()).digest()
        draw = int.from_bytes(digest[:8], "big") / 2**64  # uniform in [0, 1)
        arms = sorted(self.split)
        bounds = np.cumsum([self.split[m] for m in arms]) / sum(self.split.values())
        return arms[min(bisect.bisect_right(list(bounds), draw), len(arms) - 1)]


@dataclass
class ShadowRecord:
    """What one route's shadow model did, since this ingress replica started."""

    series_compared: int = 0
    absolute_difference_sum: float = 0.0  # of the mean forecasts, per step, summed
    steps_compared: int = 0
    failed_requests: int = 0
    skipped_requests: int = 0
    last_error: str | None = None

    def view(self, model: str) -> dict[str, Any]:
        mean_abs = (
            self.absolute_difference_sum / self.steps_compared if self.steps_compared else None
        )
        return {
            "model": model,
            "series_compared": self.series_compared,
            "mean_absolute_difference": mean_abs,
            "failed_requests": self.failed_requests,
            "skipped_requests": self.skipped_requests,
            "last_error": self.last_error,
        }


@dataclass
class Traffic:
    """The routes of one ingress replica, with what each arm and shadow has served."""

    routes: dict[str, TrafficRoute]
    on_routed: Callable[[str, str, int], None] = lambda route, model, series: None
    on_shadow: Callable[[str, str, str, int], None] = lambda route, model, outcome, n: None
    series_by_arm: dict[str, Counter[str]] = field(default_factory=dict)
    shadows: dict[str, ShadowRecord] = field(default_factory=dict)
    _in_flight: set[asyncio.Task[None]] = field(default_factory=set)

    @classmethod
    def from_routes(cls, routes: list[TrafficRoute], **hooks: Any) -> Traffic:
        return cls(routes={r.name: r for r in routes}, **hooks)

    def refuse(self, name: str) -> None:
        """Where a route needs one model (backtests, v1, jobs): say that ``name`` is a split."""
        route = self.routes.get(name)
        if route is not None:
            raise ModelNotFound(
                f"'{name}' is a traffic split, answered by /api/v2/forecast only; here name one of "
                f"its models: {', '.join(sorted(route.split))}"
            )

    async def forecast(
        self, name: str, tasks: list[ForecastTask], forecast: Forecaster, request_id: str
    ) -> tuple[list[ForecastResult], list[str]]:
        """Each task forecast by its arm, concurrently; results and arms in task order. Starts the
        shadow copy, which runs after this returns."""
        route = self.routes[name]
        arms = [route.arm(task.series_id) for task in tasks]
        by_arm: dict[str, list[int]] = {}
        for index, arm in enumerate(arms):
            by_arm.setdefault(arm, []).append(index)
        answers = await asyncio.gather(
            *(forecast(arm, [tasks[i] for i in indexes]) for arm, indexes in by_arm.items())
        )
        results: list[ForecastResult | None] = [None] * len(tasks)
        counts = self.series_by_arm.setdefault(name, Counter())
        for (arm, indexes), answer in zip(by_arm.items(), answers, strict=True):
            for index, result in zip(indexes, answer, strict=True):
                results[index] = result
            counts[arm] += len(indexes)
            self.on_routed(name, arm, len(indexes))
        done = [r for r in results if r is not None]
        if route.shadow is not None:
            self._start_shadow(route, tasks, done, arms, forecast, request_id)
        return done, arms

    def _start_shadow(
        self,
        route: TrafficRoute,
        tasks: list[ForecastTask],
        primary: list[ForecastResult],
        arms: list[str],
        forecast: Forecaster,
        request_id: str,
    ) -> None:
        assert route.shadow is not None
        record = self.shadows.setdefault(route.name, ShadowRecord())
        if len(self._in_flight) >= SHADOW_IN_FLIGHT:
            record.skipped_requests += 1
            self.on_shadow(route.name, route.shadow, "skipped", len(tasks))
            return
        job = asyncio.create_task(
            self._shadow(route, route.shadow, tasks, primary, arms, forecast, request_id, record)
        )
        self._in_flight.add(job)  # a reference, or the event loop may drop the task unfinished
        job.add_done_callback(self._in_flight.discard)

    async def _shadow(
        self,
        route: TrafficRoute,
        model: str,
        tasks: list[ForecastTask],
        primary: list[ForecastResult],
        arms: list[str],
        forecast: Forecaster,
        request_id: str,
        record: ShadowRecord,
    ) -> None:
        try:
            candidate = await forecast(model, tasks)
        except Exception as error:  # the candidate's failure is recorded, never the caller's
            record.failed_requests += 1
            record.last_error = f"{type(error).__name__}: {error}"[:300]
            self.on_shadow(route.name, model, "failed", len(tasks))
            return
        gaps = [
            np.abs(np.asarray(c.mean, dtype=float) - np.asarray(p.mean, dtype=float))
            for c, p in zip(candidate, primary, strict=True)
        ]
        record.series_compared += len(gaps)
        record.steps_compared += sum(gap.size for gap in gaps)
        record.absolute_difference_sum += float(sum(gap.sum() for gap in gaps))
        self.on_shadow(route.name, model, "compared", len(candidate))
        logger.info(
            json.dumps(
                {
                    "event": "shadow",
                    "route": route.name,
                    "request_id": request_id,
                    "shadow": model,
                    "series": [
                        {
                            "unique_id": p.series_id,
                            "primary": arm,
                            "mean_absolute_difference": float(gap.mean()) if gap.size else None,
                        }
                        for p, arm, gap in zip(primary, arms, gaps, strict=True)
                    ][:100],  # a bounded line: the summary is in the record and the metrics
                }
            )
        )

    async def settled(self) -> None:
        """Wait for the shadow copies in flight (tests, and a replica that drains)."""
        while self._in_flight:
            await asyncio.gather(*list(self._in_flight), return_exceptions=True)

    def view(self) -> list[dict[str, Any]]:
        """Each route: its arms with weight share and series served, and its shadow's record."""
        listing = []
        for name, route in sorted(self.routes.items()):
            total = sum(route.split.values())
            counts = self.series_by_arm.get(name, Counter())
            entry: dict[str, Any] = {
                "name": name,
                "arms": [
                    {"model": m, "share": route.split[m] / total, "series": counts.get(m, 0)}
                    for m in sorted(route.split)
                ],
                "shadow": None,
            }
            if route.shadow is not None:
                entry["shadow"] = self.shadows.get(name, ShadowRecord()).view(route.shadow)
            listing.append(entry)
        return listing
