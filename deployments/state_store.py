"""The shared state store of a deployment (``sapheneia.state``) as every replica reaches it.

With ``SAPHENEIA_STATE_URL=redis://...`` each process talks to Redis itself. Otherwise one named,
detached Ray actor owns the SQLite file in the state directory: the actor serialises every count,
so ingress replicas share one counter, and the file outlives the actor, the application and Ray.
"""

from __future__ import annotations

import hashlib
import logging
import tempfile
from pathlib import Path
from typing import Any

import ray
from pydantic import BaseModel, ConfigDict, Field, field_validator
from ray.exceptions import ActorDiedError, ActorUnavailableError, GetTimeoutError, RayActorError

from sapheneia.errors import StateUnavailable
from sapheneia.settings import Settings
from sapheneia.state import STATE_FILE_NAME, FileState, LocalState, RedisState, StateStore

logger = logging.getLogger("ray.serve")

STATE_ACTOR_NAME = "sapheneia-state"
STATE_NAMESPACE = "sapheneia"
# A store call slower than this is a store in trouble: the request gets 503 rather than a hang.
CALL_TIMEOUT_S = 5.0
LOST = (ActorDiedError, ActorUnavailableError, RayActorError)
# Ray's resource of the head node (Ray Train places its state actor the same way): the embedded
# store's file is in the head's state directory, and a lost worker node must not take it along.
ON_HEAD_NODE = {"node:__internal_head__": 0.001}


class StateOptions(BaseModel):
    """Where the store is; travels to every replica (the URL may hold a password: never logged)."""

    model_config = ConfigDict(extra="forbid")

    url: str = Field(default="", repr=False, description="redis://...; empty: the file below.")
    path: str = Field(description="The SQLite file of the embedded store (absolute).")

    @field_validator("url")
    @classmethod
    def _redis_only(cls, value: str) -> str:
        if value and not value.startswith(("redis://", "rediss://", "unix://")):
            # Refused at start: a typo must not leave every request answering 503.
            raise ValueError(
                "SAPHENEIA_STATE_URL must be a redis://, rediss:// or unix:// URL, or empty for "
                "the file in the state directory"
            )
        return value

    @classmethod
    def from_settings(cls, settings: Settings) -> StateOptions:
        return cls(
            url=settings.state_url, path=str((settings.state_dir / STATE_FILE_NAME).resolve())
        )


@ray.remote(num_cpus=0)
class StateActor:
    """One per state file: the only process that writes it."""

    def __init__(self, path: str) -> None:
        self.file = FileState(Path(path))

    def incr(self, key: str, amount: int, expire_s: float) -> tuple[int, float]:
        return self.file.incr(key, amount, expire_s)

    def get(self, key: str) -> Any:
        return self.file.get(key)

    def set(self, key: str, value: Any) -> None:
        self.file.set(key, value)


def actor_name(path: str) -> str:
    """One actor per state file, so two applications with their own state directories never share
    counts."""
    return f"{STATE_ACTOR_NAME}-{hashlib.sha256(path.encode()).hexdigest()[:12]}"


def get_state_actor(path: str) -> Any:
    """The actor of ``path``, created by whoever asks first; detached, so it outlives every replica,
    and restarted by Ray if its process dies (it reopens the file)."""
    return StateActor.options(  # type: ignore[attr-defined]
        name=actor_name(path),
        namespace=STATE_NAMESPACE,
        get_if_exists=True,
        lifetime="detached",
        resources=ON_HEAD_NODE,
        max_restarts=-1,
        max_task_retries=-1,
    ).remote(path)


class ActorState:
    """``StateStore`` over the state actor; a killed actor is created again on the next call."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._actor: Any = None

    async def incr(self, key: str, amount: int, expire_s: float) -> tuple[int, float]:
        value, left = await self._call("incr", key, amount, expire_s)
        return int(value), float(left)

    async def get(self, key: str) -> Any:
        return await self._call("get", key)

    async def set(self, key: str, value: Any) -> None:
        await self._call("set", key, value)

    async def _call(self, method: str, *args: Any) -> Any:
        # Twice at most: a handle to an actor that was killed (ray.kill leaves no restart) fails
        # once; asking by name again creates a new actor over the same file.
        for attempt in range(2):
            try:
                if self._actor is None:
                    self._actor = get_state_actor(self.path)
                ref = getattr(self._actor, method).remote(*args)
                return await _with_timeout(ref)
            except LOST as error:
                self._actor = None
                if attempt:
                    raise StateUnavailable(
                        "the shared state store (the state actor) is restarting; retry shortly"
                    ) from error
            except GetTimeoutError as error:
                raise StateUnavailable(
                    "the shared state store (the state actor) did not answer; retry shortly"
                ) from error
        raise AssertionError("unreachable")


async def _with_timeout(ref: Any) -> Any:
    import asyncio

    try:
        return await asyncio.wait_for(ref, CALL_TIMEOUT_S)
    except TimeoutError as error:
        raise GetTimeoutError("state store call timed out") from error


def start_state_actor(options: StateOptions | None, timeout_s: float = 60) -> None:
    """Start the state actor of the file backend now and wait until it answers (a no-op for Redis).

    A replica calls this as it starts: otherwise its first request would start the actor and wait
    for a new process under ``CALL_TIMEOUT_S``, which a loaded machine can exceed. A store that does
    not answer in time is logged, not fatal: requests then answer 503 until it does.
    """
    if options is None or options.url:
        return
    try:
        ray.get(get_state_actor(options.path).get.remote("started"), timeout=timeout_s)
    except (GetTimeoutError, *LOST):
        logger.warning("the state actor did not answer within %s s", timeout_s)


def open_store(options: StateOptions | None) -> StateStore:
    """The store ``options`` name: Redis when a URL is set, else the state actor's file; without
    options, a file of this process alone (an ingress built outside ``build_app``, in tests)."""
    if options is None:
        return LocalState(Path(tempfile.mkdtemp(prefix="sapheneia-state-")) / STATE_FILE_NAME)
    if options.url:
        return RedisState(options.url)
    return ActorState(options.path)
