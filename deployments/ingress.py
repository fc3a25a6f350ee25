"""The ingress deployment: owns HTTP (auth, request ids, size caps, data loading, routing) and
dispatches ``ForecastTask``s to the model deployments through their handles."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel, ConfigDict, Field

from deployments.auth import KeyChecker
from deployments.lifecycle import get_board, summarize
from sapheneia import __version__
from sapheneia.config import ModelConfig
from sapheneia.data import DataLimits
from sapheneia.errors import Conflict, ModelNotFound, ModelUnavailable, SapheneiaError
from sapheneia.tasks import ForecastResult, ForecastTask

API_VERSION = __version__


class IngressOptions(BaseModel):
    """Settings of the ingress, resolved by ``build_app`` on the machine that runs ``serve run``."""

    model_config = ConfigDict(extra="forbid")

    key_digests: list[str] = Field(description="SHA-256 digests of the accepted API keys.")
    limits: DataLimits = Field(description="Where data may come from and how much of it.")
    cors_origins: list[str] = Field(default_factory=list)
    rate_limit_per_minute: int = 600
    lifecycle_timeout_s: float = 120.0
    request_defaults: dict[str, dict[str, int]] = Field(
        default_factory=dict,
        description="Per model: context_len / horizon_len used by /api/v1 when a request omits them.",
    )


class Ingress:
    """Bound by ``build_app``; the FastAPI app is built per replica by ``__serve_build_asgi_app__``."""

    def __init__(
        self,
        models: dict[str, Any],
        configs: dict[str, ModelConfig],
        options: IngressOptions,
        run_id: str,
    ) -> None:
        self.handles = models
        self.configs = configs
        self.options = options
        self.aliases = {alias: cfg.id for cfg in configs.values() for alias in cfg.aliases}
        self.keys = KeyChecker(options.key_digests, options.rate_limit_per_minute)
        self.limits = options.limits
        self.board = get_board(run_id)
        self.started = time.time()

    def __serve_build_asgi_app__(self) -> FastAPI:
        from deployments.api import create_api

        return create_api(self)

    # -- models ----------------------------------------------------------------------------------

    def resolve(self, name: str) -> str:
        """The model id for an id or alias; ``ModelNotFound`` lists what exists."""
        model_id = self.aliases.get(name, name)
        if model_id not in self.handles:
            raise ModelNotFound(
                f"unknown model '{name}'; available: {', '.join(sorted(self.handles))}"
            )
        return model_id

    async def status(self, model_id: str) -> dict[str, Any]:
        view = await self.board.view.remote(model_id)
        return summarize(view)

    async def all_status(self) -> dict[str, dict[str, Any]]:
        ids = sorted(self.handles)
        summaries = await asyncio.gather(*(self.status(i) for i in ids))
        return dict(zip(ids, summaries, strict=True))

    async def capabilities(self, model_id: str) -> dict[str, Any]:
        result: dict[str, Any] = await self.handles[model_id].capabilities.remote()
        return result

    async def forecast(self, model_id: str, tasks: list[ForecastTask]) -> list[ForecastResult]:
        """Results in task order; the first failed task's error is raised for the whole request."""
        outcomes = await self.handles[model_id].forecast.remote(tasks)
        for outcome in outcomes:
            if isinstance(outcome, SapheneiaError):
                raise outcome
        return list(outcomes)

    async def set_state(
        self, model_id: str, state: str, settings: dict[str, Any]
    ) -> dict[str, Any]:
        """Ask every replica of a model to become ``ready`` or ``shutdown``; wait until they have."""
        current = await self.status(model_id)
        if state == "ready" and current["status"] == "initializing" and current["replicas"]:
            raise Conflict(f"model '{model_id}' is already initializing; poll its /status")
        generation = await self.board.set_desired.remote(model_id, state, settings)
        deadline = time.monotonic() + self.options.lifecycle_timeout_s
        while time.monotonic() < deadline:
            view = await self.board.view.remote(model_id)
            replicas = view["replicas"].values()
            if replicas and all(r.get("generation", -1) >= generation for r in replicas):
                return summarize(view)
            await asyncio.sleep(0.2)
        raise ModelUnavailable(
            f"model '{model_id}' did not reach '{state}' within "
            f"{self.options.lifecycle_timeout_s:.0f} s; poll /api/v1/{model_id}/status"
        )
