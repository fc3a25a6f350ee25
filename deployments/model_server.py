"""One deployment class for every model: the adapter comes from the model's config.

The server owns only the model: load it, batch tasks from concurrent requests into one adapter call,
report its state. HTTP, auth and data loading belong to the ingress.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import threading
import time
import uuid
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from ray import serve

from deployments.lifecycle import BoardClient
from deployments.metrics import ModelMetrics
from deployments.state_store import StateOptions, start_state_actor
from sapheneia.blocks import ResultBlock, TaskBlock
from sapheneia.config import ModelConfig
from sapheneia.errors import ModelUnavailable, Overloaded, SapheneiaError
from sapheneia.models import create_adapter
from sapheneia.models.torch_runtime import ModelThread, use_threads
from sapheneia.tasks import ForecastResult, ForecastTask

logger = logging.getLogger("ray.serve")

POLL_INTERVAL_S = 0.5
# How long a starting replica waits for the board's first answer (the board may be starting too).
START_TIMEOUT_S = 60.0


def series_in(pieces: list[list[ForecastTask]]) -> int:
    """A batch's size for ``@serve.batch``: the series in its pieces."""
    return sum(len(piece) for piece in pieces)


class BatchSettings(BaseModel):
    """``user_config`` of a model deployment; changes apply through ``reconfigure`` without restart."""

    model_config = ConfigDict(extra="forbid")

    max_batch_size: int = Field(default=32, ge=1, le=1024, description="Series per model call.")
    batch_wait_timeout_s: float = Field(
        default=0.01, ge=0, le=10, description="How long a batch waits to fill before it runs."
    )
    max_queued_series: int = Field(
        default=50_000,
        ge=1,
        description="Series a replica holds (waiting for a batch or in one); a request that would "
        "take it past this is answered 503 overloaded. A request into an empty replica is always "
        "taken, whatever its size.",
    )


class ModelServer:
    """Serves one model. Bound by ``build_app`` as ``serve.deployment(ModelServer, ...)``."""

    def __init__(self, config: ModelConfig, state: StateOptions | None = None) -> None:
        self.config = config
        use_threads([config])
        self.adapter = create_adapter(config)
        self._model_thread = ModelThread(f"model-{config.id}")
        self.replica = uuid.uuid4().hex[:8]
        self.status = "initializing"
        self.reason: str | None = None
        self.generation = 0
        self.metrics = ModelMetrics(config.id)
        # Reported to the board with the state: the series this replica actually computed, so that
        # dropping a cancelled request's queued series is observable.
        self.series_forecasted = 0
        # Requests are bounded by Serve (max_ongoing / max_queued_requests), but one request may
        # carry thousands of series: this bound is in series, so that waits stay within deadlines.
        self.max_queued_series = BatchSettings().max_queued_series
        self.max_batch_size = BatchSettings().max_batch_size
        self.series_held = 0
        self._lock = threading.Lock()
        self._board = BoardClient.of_this_replica(state)
        if state is not None:
            start_state_actor(state)
        self._start_as_desired()
        self._stop = threading.Event()
        # A thread, not an asyncio task: loading weights blocks, and requests must keep being
        # answered (with 503) while it does.
        threading.Thread(target=self._follow_board, daemon=True, name="model-state").start()

    # -- lifecycle -------------------------------------------------------------------------------

    def _load(self) -> None:
        with self._lock:
            self.status, self.reason = "initializing", None
            try:
                self._model_thread.call(self.adapter.load)
            except ModelUnavailable as error:
                self.status, self.reason = "unavailable", error.message
                logger.warning("model %s unavailable: %s", self.config.id, error.message)
                return
            except Exception as error:  # any loader failure is reported, never fatal
                self.status = "error"
                self.reason = f"loading failed ({type(error).__name__}); see the replica log"
                logger.exception("model %s failed to load", self.config.id)
                return
            self.status = "ready"

    def _start_as_desired(self) -> None:
        """Load the weights unless an admin shut this model down, in this run or an earlier one
        (the board reads that from the state store): a new replica never serves a model that is
        meant to be down, not even until its first look at the board."""
        try:
            desired = self._board.call_blocking(
                "report", self.config.id, self.replica, self.state(), timeout_s=START_TIMEOUT_S
            )
        except Exception:  # no board yet to ask: load, and converge on the first look that works
            logger.exception("model %s: state board unreachable at start", self.config.id)
            self._load()
            return
        if desired.state == "shutdown":
            self.status, self.reason = "uninitialized", "shut down by /shutdown"
        else:
            self._load()
        self.generation = desired.generation

    def _unload(self) -> None:
        with self._lock:
            self._model_thread.call(self.adapter.unload)
            self.status, self.reason = "uninitialized", "shut down by /shutdown"

    def _follow_board(self) -> None:
        while not self._stop.is_set():
            try:
                desired = self._board.call_blocking(
                    "report", self.config.id, self.replica, self.state()
                )
                if desired.generation > self.generation:
                    if desired.state == "shutdown":
                        self._unload()
                    else:
                        self._load()
                    self.generation = desired.generation
                    self._board.call_blocking("report", self.config.id, self.replica, self.state())
            except Exception:  # the board may be restarting; keep serving and retry
                logger.exception("model %s: state board unreachable", self.config.id)
            self._stop.wait(POLL_INTERVAL_S)

    def state(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "reason": self.reason,
            "generation": self.generation,
            "replica": self.replica,
            "series_forecasted": self.series_forecasted,
            # Read each time: some adapters learn their limits from the weights they load.
            "capabilities": self.adapter.capabilities.as_dict(),
        }

    def reconfigure(self, user_config: dict[str, Any]) -> None:
        settings = BatchSettings.model_validate(user_config or {})
        self.max_batch_size = settings.max_batch_size
        self._batched.set_max_batch_size(settings.max_batch_size)  # type: ignore[attr-defined]
        self._batched.set_batch_wait_timeout_s(settings.batch_wait_timeout_s)  # type: ignore[attr-defined]
        self.max_queued_series = settings.max_queued_series

    def check_health(self) -> None:
        # An unavailable model is healthy as a replica: it answers 503 with the fix. Only a dead
        # state thread is a reason for Serve to restart the replica.
        if self._stop.is_set():
            raise RuntimeError("model state thread stopped")

    def __del__(self) -> None:
        if hasattr(self, "_stop"):
            self._stop.set()
        if hasattr(self, "_model_thread"):
            self._model_thread.close()

    # -- forecasting -----------------------------------------------------------------------------

    async def forecast(
        self, tasks: TaskBlock | list[ForecastTask]
    ) -> ResultBlock | list[ForecastResult | SapheneiaError]:
        """Forecast one request's tasks (a block, or a list where a block cannot hold them); the
        results come back as a block when every task succeeded.

        The tasks join the shared batch queue in pieces of at most a batch, so that one request's
        series cost a few queue entries rather than one each, and a batch still fills with series
        from several requests (``@serve.batch`` counts series, not pieces). When the caller cancels
        (deadline, disconnect), Serve cancels this coroutine; ``gather`` then cancels each piece's
        place in the batch queue and ``@serve.batch`` leaves it out."""
        if isinstance(tasks, TaskBlock):
            tasks = tasks.tasks()
        if self.status != "ready":
            error = ModelUnavailable(
                f"model '{self.config.id}' is {self.status}: "
                f"{self.reason or 'call POST /api/v1/' + self.config.id + '/initialization'}"
            )
            return [error for _ in tasks]
        if self.series_held and self.series_held + len(tasks) > self.max_queued_series:
            shed = Overloaded(
                f"model '{self.config.id}' holds {self.series_held} series, and {len(tasks)} more "
                f"would pass its max_queued_series ({self.max_queued_series}); retry after "
                f"{Overloaded.retry_after_s} s or send fewer series per request"
            )
            return [shed for _ in tasks]
        self.series_held += len(tasks)
        try:
            size = self.max_batch_size
            pieces = [tasks[i : i + size] for i in range(0, len(tasks), size)]
            answered = await asyncio.gather(*(self._batched(piece) for piece in pieces))
        finally:
            self.series_held -= len(tasks)
        outcomes = [outcome for piece in answered for outcome in piece]
        return ResultBlock.pack(outcomes) or outcomes

    @serve.batch(max_batch_size=32, batch_wait_timeout_s=0.01, batch_size_fn=series_in)
    async def _batched(
        self, pieces: list[list[ForecastTask]]
    ) -> list[list[ForecastResult | SapheneiaError]]:
        tasks = [task for piece in pieces for task in piece]
        started = time.perf_counter()
        # The adapter is synchronous and CPU-bound: run it off the event loop so that the replica
        # keeps accepting requests (and filling the next batch) meanwhile, on the one thread that
        # also loaded it (see ModelThread).
        results = await self._model_thread.run(self.adapter.forecast, tasks)
        elapsed = time.perf_counter() - started
        self.metrics.observe(len(tasks), elapsed)
        self.series_forecasted += len(tasks)
        for result in results:
            if isinstance(result, ForecastResult):
                result.metadata.update(
                    batch_size=len(tasks), replica=self.replica, model_seconds=round(elapsed, 6)
                )
        bounds = itertools.accumulate((len(piece) for piece in pieces), initial=0)
        return [results[start:stop] for start, stop in itertools.pairwise(bounds)]
