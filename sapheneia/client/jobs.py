"""Handles of batch jobs (``/api/v2/jobs``): status, wait with progress, result, cancel."""

from __future__ import annotations

import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar

import httpx
import pandas as pd

from sapheneia.client.calls import JOBS_PATH
from sapheneia.client.results import JobState, job_result, job_state

Send = Callable[..., httpx.Response]
AsyncSend = Callable[..., Awaitable[httpx.Response]]
SendT = TypeVar("SendT")
SleepT = TypeVar("SleepT")


class Deadline:
    """``wait``'s time limit; None waits as long as the job runs."""

    def __init__(self, timeout_s: float | None) -> None:
        self.timeout_s = timeout_s
        self.at = None if timeout_s is None else time.monotonic() + timeout_s

    def check(self, state: JobState) -> None:
        if self.at is not None and time.monotonic() >= self.at:
            raise TimeoutError(f"{state.line()} after {self.timeout_s} s")


def finished(state: JobState, progress: bool) -> bool:
    """Shows the progress line; True once the job has finished, raising its error if it failed."""
    if progress:
        print("\r" + state.line(), end="\n" if state.finished else "", file=sys.stderr, flush=True)
    if state.finished and state.error is not None:
        raise state.error
    return state.finished


def cancelled(job_id: str, response: httpx.Response) -> JobState | None:
    """The state in a DELETE answer; None when it has no body (then the caller asks for it)."""
    return job_state(job_id, response.json()) if response.content else None


class JobHandle(Generic[SendT, SleepT]):
    """What ``Job`` and ``AsyncJob`` hold: the job's id and route, how to send and to wait."""

    def __init__(self, send: SendT, sleep: SleepT, job_id: str, time_col: str = "ds") -> None:
        self._send: SendT = send
        self._sleep: SleepT = sleep
        self.job_id = job_id
        self.time_col = time_col
        self.path = f"{JOBS_PATH}/{job_id}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.job_id!r})"


class Job(JobHandle[Send, Callable[[float], Any]]):
    """A job on the server: ``status()``, ``wait(progress=True)``, ``result()``, ``cancel()``."""

    def status(self) -> JobState:
        return job_state(self.job_id, self._send("GET", self.path).json())

    def wait(
        self, progress: bool = False, poll_s: float = 1.0, timeout_s: float | None = None
    ) -> JobState:
        """Polls every ``poll_s`` until the job has finished; with ``progress`` a line on stderr
        shows how far it is. Raises the job's error if it failed, ``TimeoutError`` after
        ``timeout_s``."""
        deadline = Deadline(timeout_s)
        while True:
            state = self.status()
            if finished(state, progress):
                return state
            deadline.check(state)
            self._sleep(poll_s)

    def result(self) -> pd.DataFrame:
        """The job's output as a long-format frame, once it has succeeded."""
        return job_result(self._send("GET", f"{self.path}/result"), self.time_col)

    def cancel(self) -> JobState:
        return cancelled(self.job_id, self._send("DELETE", self.path)) or self.status()


class AsyncJob(JobHandle[AsyncSend, Callable[[float], Awaitable[Any]]]):
    """``Job``'s twin for ``AsyncClient``: the same methods, awaited."""

    async def status(self) -> JobState:
        return job_state(self.job_id, (await self._send("GET", self.path)).json())

    async def wait(
        self, progress: bool = False, poll_s: float = 1.0, timeout_s: float | None = None
    ) -> JobState:
        deadline = Deadline(timeout_s)
        while True:
            state = await self.status()
            if finished(state, progress):
                return state
            deadline.check(state)
            await self._sleep(poll_s)

    async def result(self) -> pd.DataFrame:
        return job_result(await self._send("GET", f"{self.path}/result"), self.time_col)

    async def cancel(self) -> JobState:
        return cancelled(self.job_id, await self._send("DELETE", self.path)) or await self.status()
