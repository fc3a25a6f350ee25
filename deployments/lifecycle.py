"""Desired model state shared by every replica, so lifecycle calls act on all of them.

The earlier product's ``/initialization`` and ``/shutdown`` changed one in-process model. With several
replicas a request reaches only one of them, so instead the ingress writes the *desired* state of a
model to one named actor (``ModelStateBoard``), and every ``ModelServer`` replica polls it, converges
(loads or unloads its weights) and reports back what it actually is. ``/status`` reads those reports,
and lifecycle calls wait until every live replica has reached the new generation. The desired
states are also written to the shared state store (``deployments.state_store``), so they outlive
the board and the application.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import ray
from ray.exceptions import ActorDiedError, ActorUnavailableError, RayActorError

from deployments.state_store import ON_HEAD_NODE, StateOptions, open_store

BOARD_NAME = "sapheneia-model-state"
BOARD_NAMESPACE = "sapheneia"
# A replica that has not reported for this long is treated as gone (scaled down or dead).
STALE_AFTER_S = 5.0
# Where a model's desired state lives in the shared state store: per application and model.
DESIRED_KEY = "desired:{app}:{model}"
BOARD_LOST = (ActorDiedError, ActorUnavailableError, RayActorError)


@dataclass
class DesiredState:
    """What the operator asked for: ``ready`` (weights loaded) or ``shutdown``."""

    state: str = "ready"
    generation: int = 0
    settings: dict[str, Any] = field(default_factory=dict)


@ray.remote(num_cpus=0)
class ModelStateBoard:
    """One per application (and state store): desired state per model, and each replica's last
    report.

    The desired states are written through to the shared state store and read back from it, so a
    board that was killed, or a whole application deleted and deployed again, keeps a model that
    an admin shut down down. Reports are live only: replicas send them every half second.
    """

    def __init__(self, app: str, state: StateOptions | None = None) -> None:
        self.app = app
        self.store = open_store(state) if state is not None else None
        self.desired: dict[str, DesiredState] = {}
        self.reports: dict[str, dict[str, dict[str, Any]]] = {}
        # A method awaits the store, so two lifecycle calls could interleave: one at a time.
        self._changing = asyncio.Lock()

    async def _desired(self, model: str) -> DesiredState:
        if model not in self.desired:
            key = DESIRED_KEY.format(app=self.app, model=model)
            saved = await self.store.get(key) if self.store else None
            self.desired[model] = DesiredState(**saved) if saved else DesiredState()
        return self.desired[model]

    async def _save(self, model: str, desired: DesiredState) -> None:
        if self.store is not None:
            await self.store.set(DESIRED_KEY.format(app=self.app, model=model), asdict(desired))
        self.desired[model] = desired

    async def set_desired(self, model: str, state: str, settings: dict[str, Any]) -> int:
        """A new generation for every replica to converge to; settings not sent are kept."""
        async with self._changing:
            current = await self._desired(model)
            merged = {**current.settings, **settings}
            await self._save(model, DesiredState(state, current.generation + 1, merged))
            return current.generation + 1

    async def update_settings(self, model: str, settings: dict[str, Any]) -> None:
        """New request defaults for a model whose weights stay as they are: no new generation, so
        no replica reloads and no request sees a 503."""
        async with self._changing:
            current = await self._desired(model)
            merged = {**current.settings, **settings}
            await self._save(model, DesiredState(current.state, current.generation, merged))

    async def report(self, model: str, replica: str, status: dict[str, Any]) -> DesiredState:
        """A replica says what it is; the answer is what it should become."""
        self.reports.setdefault(model, {})[replica] = {**status, "seen": time.monotonic()}
        return await self._desired(model)

    async def views(self, models: list[str]) -> dict[str, dict[str, Any]]:
        """Desired state and live reports of each model, in one call for all of them."""
        now = time.monotonic()
        views = {}
        for model in models:
            live = {
                replica: report
                for replica, report in self.reports.get(model, {}).items()
                if now - report["seen"] < STALE_AFTER_S
            }
            views[model] = {"desired": await self._desired(model), "replicas": live}
        return views


def board_name(app: str, state: StateOptions | None) -> str:
    """The board of application ``app`` over the store ``state`` names.

    Every run of an application meets the same board, so a redeploy leaves no board behind; an
    application pointed at another store gets a board that reads that store.
    """
    where = (state.url or state.path) if state is not None else ""
    return f"{BOARD_NAME}-{app}-{hashlib.sha256(where.encode()).hexdigest()[:12]}"


def get_board(app: str, state: StateOptions | None = None) -> Any:
    """The board of ``app``, created by whoever asks first.

    Detached so that it survives any one replica, restarted by Ray when its process dies, and on
    the head node like the state actor, so that a lost worker node leaves it running. Replicas of
    an earlier run of the application report to it too while they drain; their reports go stale
    once they stop (``STALE_AFTER_S``).
    """
    return ModelStateBoard.options(  # type: ignore[attr-defined]
        name=board_name(app, state),
        namespace=BOARD_NAMESPACE,
        get_if_exists=True,
        lifetime="detached",
        resources=ON_HEAD_NODE,
        max_restarts=-1,
    ).remote(app, state)


class BoardClient:
    """The board as its callers reach it: a board that was killed (``ray.kill`` leaves no restart)
    is created again by name on the next call, from the desired states in the store."""

    def __init__(self, app: str, state: StateOptions | None) -> None:
        self.app = app
        self.state = state
        self._board: Any = None

    @classmethod
    def of_this_replica(cls, state: StateOptions | None) -> BoardClient:
        """The board of the application this Serve replica belongs to."""
        from ray import serve

        return cls(serve.get_replica_context().app_name, state)

    def _handle(self) -> Any:
        if self._board is None:
            self._board = get_board(self.app, self.state)
        return self._board

    async def call(self, method: str, *args: Any) -> Any:
        try:
            return await getattr(self._handle(), method).remote(*args)
        except BOARD_LOST:
            self._board = None
            return await getattr(self._handle(), method).remote(*args)

    def call_blocking(self, method: str, *args: Any, timeout_s: float = 10) -> Any:
        """For a replica's own thread, which has no event loop."""
        try:
            return ray.get(getattr(self._handle(), method).remote(*args), timeout=timeout_s)
        except BOARD_LOST:
            self._board = None
            raise


@dataclass(frozen=True)
class ModelState:
    """What the routes know of one model, from one look at the board."""

    status: str
    reason: str | None
    replicas: int
    generation: int
    converged: bool
    settings: dict[str, Any]
    # From the replicas' own reports, so listing models needs no call to each deployment.
    capabilities: dict[str, Any]


def summarize(view: dict[str, Any]) -> ModelState:
    """One status for a model from its replicas' reports.

    ``ready`` only when every live replica is ready at the desired generation; ``initializing`` while
    any is still converging; ``unavailable``/``error`` when a replica cannot load (with its reason).
    """
    desired: DesiredState = view["desired"]
    replicas = view["replicas"]
    statuses = [r["status"] for r in replicas.values()]
    converged = all(r.get("generation", -1) >= desired.generation for r in replicas.values())
    if not replicas:
        status = "initializing"
    elif "unavailable" in statuses:
        status = "unavailable"
    elif "error" in statuses:
        status = "error"
    elif not converged or "initializing" in statuses:
        status = "initializing"
    elif all(s == "ready" for s in statuses):
        status = "ready"
    else:
        status = "uninitialized"
    reasons = sorted({r["reason"] for r in replicas.values() if r.get("reason")})
    capabilities: dict[str, Any] = next(
        (r["capabilities"] for r in replicas.values() if "capabilities" in r), {}
    )
    return ModelState(
        status=status,
        reason="; ".join(reasons) or None,
        replicas=len(replicas),
        generation=desired.generation,
        converged=converged,
        settings=dict(desired.settings),
        capabilities=capabilities,
    )
