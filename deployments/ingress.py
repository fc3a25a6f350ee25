"""The ingress deployment: owns HTTP (auth, request ids, size caps, data loading, routing) and
dispatches ``ForecastTask``s to the model deployments through their handles.

It implements ``deployments.gateway.Gateway``, the only thing the routes know of it.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI
from ray.exceptions import ActorDiedError, ActorUnavailableError, RayActorError
from ray.serve.exceptions import BackPressureError
from ray.serve.handle import DeploymentResponse

from deployments.api import create_api
from deployments.auth import KeyChecker
from deployments.jobs_state import JobService
from deployments.lifecycle import BoardClient, ModelState, summarize
from deployments.metrics import TrafficMetrics
from deployments.options import IngressOptions, key_limits
from deployments.rate_limits import RateLimits
from deployments.sources import SourceLoader
from deployments.state_store import open_store, start_state_actor
from deployments.traffic import Traffic
from sapheneia.blocks import ResultBlock, TaskBlock
from sapheneia.config import ModelConfig
from sapheneia.errors import (
    Conflict,
    ModelNotFound,
    ModelUnavailable,
    Overloaded,
    RequestTimeout,
    SapheneiaError,
)
from sapheneia.tasks import ForecastResult, ForecastTask

# A replica that died mid-request: Serve restarts it; the caller may retry shortly.
REPLICA_LOST = (ActorDiedError, ActorUnavailableError, RayActorError)


# Calls up to this size (each way) go by value: a quarter of the gRPC channel's default 4 MiB cap
# (RAY_SERVE_REPLICA_GRPC_MAX_MESSAGE_LENGTH), leaving room for what the estimate leaves out.
BY_VALUE_BYTES = 1024 * 1024


def call_bytes(tasks: list[ForecastTask]) -> int:
    """About the larger of a forecast call's request and answer, in bytes: 16 per history point
    (value and timestamp), 8 per future value of each answer column (mean, median, each level and
    the timestamp), and some for each series' id, settings and covariates."""
    history = sum(len(task.context) for task in tasks)
    covariates = sum(
        sum(len(v) for v in (*t.dynamic_numerical.values(), *t.dynamic_categorical.values()))
        for t in tasks
        if t.has_covariates
    )
    answer = sum(task.horizon * (len(task.quantiles) + 3) for task in tasks)
    return 16 * (history + covariates) + 8 * answer + 512 * len(tasks)


def drop(response: DeploymentResponse) -> None:
    """Cancel a model call nobody waits for: Serve cancels the replica's coroutine, and the
    request's series still queued for a batch are left out of it, so the model never computes them.
    """
    # cancel() re-raises how a call that already ended failed (queue full, replica lost): then
    # there is nothing left to drop.
    with contextlib.suppress(Exception):
        response.cancel()


class Ingress:
    """Bound by ``build_app``; the FastAPI app is built per replica by ``__serve_build_asgi_app__``."""

    def __init__(
        self,
        models: dict[str, Any],
        configs: dict[str, ModelConfig],
        options: IngressOptions,
    ) -> None:
        self.handles = models
        # By value: a call and its answer go over the replica's own gRPC channel, not through the
        # object store and an actor call (about 4 ms less ingress CPU per request on 2 cores);
        # only for small calls, under the channel's message cap.
        self.by_value = {
            name: handle.options(_by_reference=False) for name, handle in models.items()
        }
        self.configs = configs
        self.options = options
        self.aliases = {alias: cfg.id for cfg in configs.values() for alias in cfg.aliases}
        self.keys = KeyChecker.from_options(options)
        self.limits = options.limits
        self.sources = SourceLoader(
            options.limits, options.url_fetch_threads, options.url_fetches_per_key
        )
        self.board = BoardClient.of_this_replica(options.state)
        start_state_actor(options.state)
        self.rate_limits = RateLimits(
            open_store(options.state), key_limits(options), options.key_limits
        )
        self.jobs = JobService(options.jobs) if options.jobs else None
        counted = TrafficMetrics()
        self.traffic = Traffic.from_routes(
            options.traffic, on_routed=counted.routed, on_shadow=counted.shadowed
        )
        self._states: dict[str, ModelState] = {}
        self._states_at = -float("inf")

    def __serve_build_asgi_app__(self) -> FastAPI:
        return create_api(self)

    def resolve(self, name: str) -> str:
        model_id = self.aliases.get(name, name)
        if model_id not in self.handles:
            self.traffic.refuse(name)
            raise ModelNotFound(
                f"unknown model '{name}'; available: {', '.join(sorted(self.handles))}"
            )
        return model_id

    async def model_states(self, max_age_s: float = 0.0) -> dict[str, ModelState]:
        if time.monotonic() - self._states_at > max_age_s:
            ids = sorted(self.handles)
            views = await self.board.call("views", ids)
            self._states = {model_id: summarize(views[model_id]) for model_id in ids}
            self._states_at = time.monotonic()
        return self._states

    async def forecast(self, model_id: str, tasks: list[ForecastTask]) -> list[ForecastResult]:
        # One block of arrays rather than an object graph per series (sapheneia.blocks).
        handles = self.by_value if call_bytes(tasks) <= BY_VALUE_BYTES else self.handles
        response = handles[model_id].forecast.remote(TaskBlock.pack(tasks) or tasks)
        try:
            outcomes = await asyncio.wait_for(response, self.options.request_timeout_s)
        except BackPressureError as error:
            raise Overloaded(
                f"model '{model_id}' is at capacity and its queue is full; retry after "
                f"{Overloaded.retry_after_s} s"
            ) from error
        except TimeoutError as error:
            drop(response)
            raise RequestTimeout(
                f"model '{model_id}' did not answer within {self.options.request_timeout_s:g} s "
                "(SAPHENEIA_REQUEST_TIMEOUT_S); send fewer series per request or retry later"
            ) from error
        except asyncio.CancelledError:
            drop(response)  # the caller went away, or the proxy's own timeout passed
            raise
        except REPLICA_LOST as error:
            raise ModelUnavailable(
                f"the replica serving '{model_id}' stopped while answering; Ray Serve is "
                "restarting it: retry shortly"
            ) from error
        if isinstance(outcomes, ResultBlock):
            return outcomes.results()
        for outcome in outcomes:
            if isinstance(outcome, SapheneiaError):
                raise outcome
        return list(outcomes)

    async def set_state(self, model_id: str, state: str, settings: Mapping[str, int]) -> ModelState:
        current = (await self.model_states())[model_id]
        if state == "ready" and current.status == "ready":
            # The weights are loaded everywhere already: new defaults need no reload, so the
            # model keeps answering throughout (no 503 window).
            await self.board.call("update_settings", model_id, dict(settings))
            return (await self.model_states())[model_id]
        if state == "ready" and current.status == "initializing" and current.replicas:
            raise Conflict(f"model '{model_id}' is already initializing; poll its /status")
        generation = await self.board.call("set_desired", model_id, state, dict(settings))
        deadline = time.monotonic() + self.options.lifecycle_timeout_s
        while time.monotonic() < deadline:
            view = (await self.board.call("views", [model_id]))[model_id]
            replicas = view["replicas"].values()
            if replicas and all(r.get("generation", -1) >= generation for r in replicas):
                return summarize(view)
            await asyncio.sleep(0.2)
        raise ModelUnavailable(
            f"model '{model_id}' did not reach '{state}' within "
            f"{self.options.lifecycle_timeout_s:.0f} s; poll /api/v1/{model_id}/status"
        )
