"""The routes' gateway in process: real adapters, no Ray.

Every route's validation and error shapes are tested against this (fast, no cluster); the tests
that need Ray (batching, lifecycle across replicas, parity with the served path) use the session's
real Serve instance instead.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from pathlib import Path
from tempfile import mkdtemp

from deployments.auth import KeyChecker
from deployments.lifecycle import ModelState
from deployments.options import IngressOptions, key_limits
from deployments.rate_limits import RateLimits
from deployments.sources import SourceLoader
from deployments.traffic import Traffic
from sapheneia.config import ModelConfig, load_model_configs
from sapheneia.errors import ModelNotFound, SapheneiaError
from sapheneia.models import create_adapter
from sapheneia.models.base import ModelAdapter
from sapheneia.state import LocalState
from sapheneia.tasks import ForecastResult, ForecastTask

ROOT = Path(__file__).resolve().parents[2]


class LocalGateway:
    """Serves the given model ids from ``configs/models`` with in-process adapters."""

    def __init__(self, model_ids: list[str], options: IngressOptions) -> None:
        known = load_model_configs(ROOT / "configs" / "models")
        self.configs: dict[str, ModelConfig] = {m: known[m] for m in model_ids}
        self.aliases = {a: c.id for c in self.configs.values() for a in c.aliases}
        self.options = options
        self.limits = options.limits
        self.sources = SourceLoader(
            options.limits, options.url_fetch_threads, options.url_fetches_per_key
        )
        self.keys = KeyChecker.from_options(options)
        # The store the served ingress reaches through the state actor, here read directly.
        path = Path(options.state.path) if options.state else Path(mkdtemp()) / "state.sqlite3"
        self.rate_limits = RateLimits(LocalState(path), key_limits(options), options.key_limits)
        self.adapters: dict[str, ModelAdapter] = {}
        for model_id, config in self.configs.items():
            adapter = create_adapter(config)
            adapter.load()
            self.adapters[model_id] = adapter
        self.settings: dict[str, dict[str, int]] = {m: {} for m in model_ids}
        self.status = dict.fromkeys(model_ids, "ready")
        self.forecast_calls = 0
        # No Ray, so no batch jobs: their routes answer 503 "not enabled".
        self.jobs = None
        self.traffic = Traffic.from_routes(options.traffic)

    def resolve(self, name: str) -> str:
        model_id = self.aliases.get(name, name)
        if model_id not in self.configs:
            self.traffic.refuse(name)
            raise ModelNotFound(
                f"unknown model '{name}'; available: {', '.join(sorted(self.configs))}"
            )
        return model_id

    async def model_states(self, max_age_s: float = 0.0) -> dict[str, ModelState]:
        return {
            model_id: ModelState(
                status=self.status[model_id],
                reason=None,
                replicas=1,
                generation=0,
                converged=True,
                settings=dict(self.settings[model_id]),
                capabilities=adapter.capabilities.as_dict(),
            )
            for model_id, adapter in self.adapters.items()
        }

    async def forecast(self, model_id: str, tasks: list[ForecastTask]) -> list[ForecastResult]:
        self.forecast_calls += 1
        outcomes = await asyncio.to_thread(self.adapters[model_id].forecast, tasks)
        for outcome in outcomes:
            if isinstance(outcome, SapheneiaError):
                raise outcome
        return list(outcomes)  # type: ignore[arg-type]

    async def set_state(self, model_id: str, state: str, settings: Mapping[str, int]) -> ModelState:
        self.status[model_id] = "ready" if state == "ready" else "uninitialized"
        self.settings[model_id] = {**self.settings[model_id], **settings}
        return (await self.model_states())[model_id]
