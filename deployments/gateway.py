"""What the routes need from the service, as a protocol.

The routes depend on this protocol only, never on the Serve deployment class: the ingress
implements it with Ray handles and the lifecycle board; the route tests implement it in process
with real adapters and no Ray (``tests/deployments/local_gateway.py``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from deployments.auth import KeyChecker
from deployments.jobs_state import JobService
from deployments.lifecycle import ModelState
from deployments.options import IngressOptions
from deployments.rate_limits import RateLimits
from deployments.sources import SourceLoader
from deployments.traffic import Traffic
from sapheneia.config import ModelConfig
from sapheneia.data import DataLimits
from sapheneia.tasks import ForecastResult, ForecastTask


class Gateway(Protocol):
    options: IngressOptions
    configs: dict[str, ModelConfig]
    aliases: dict[str, str]
    limits: DataLimits
    keys: KeyChecker
    rate_limits: RateLimits  # per key, in the store every ingress replica shares
    sources: SourceLoader
    jobs: JobService | None  # None where jobs are off (the in-process test gateway)
    traffic: Traffic  # routed names (splits, shadows) and what they served on this replica

    def resolve(self, name: str) -> str:
        """The model id for an id or alias; ``ModelNotFound`` lists what exists."""
        ...

    async def model_states(self, max_age_s: float = 0.0) -> dict[str, ModelState]:
        """Every model's state, by id, in one look; at most ``max_age_s`` old."""
        ...

    async def forecast(self, model_id: str, tasks: list[ForecastTask]) -> list[ForecastResult]:
        """Results in task order; the first failed task's error is raised for the whole request."""
        ...

    async def set_state(self, model_id: str, state: str, settings: Mapping[str, int]) -> ModelState:
        """Make every replica of a model ``ready`` or ``shutdown``; return once they are."""
        ...


async def model_state(gateway: Gateway, model_id: str, max_age_s: float = 0.0) -> ModelState:
    return (await gateway.model_states(max_age_s))[model_id]
