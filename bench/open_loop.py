"""Open-loop load: requests start on a fixed schedule whether or not earlier ones have answered, so
the offered load stays what was asked for even when the server slows down (a closed loop would back
off and never overload it). Shared by the overload tests and the soak.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass

import httpx


@dataclass(frozen=True)
class Shot:
    """One request to send: ``label`` groups it in reports (route and kind)."""

    label: str
    path: str
    body: bytes


@dataclass(frozen=True)
class Outcome:
    label: str
    started_s: float  # since the run began
    seconds: float
    status: int | None  # None: no HTTP answer at all (connection error, client timeout)
    content_type: str = ""
    retry_after: str | None = None
    text: str = ""  # the body of an answer that is not 200, cut to 300 characters
    failure: str = ""  # the exception's name when status is None

    @property
    def code(self) -> str:
        """The error code of our error shape, or what else came back."""
        if self.status is None:
            return f"no answer ({self.failure})"
        if self.status == 200:
            return "ok"
        if self.content_type.startswith("application/json") and '"code"' in self.text:
            return self.text.split('"code":"', 1)[1].split('"', 1)[0]
        return f"{self.status} {self.content_type.split(';')[0]}"


async def shoot(http: httpx.AsyncClient, shot: Shot, run_started: float) -> Outcome:
    started = time.perf_counter()
    try:
        response = await http.post(shot.path, content=shot.body)
    except httpx.HTTPError as error:
        return Outcome(
            shot.label,
            started - run_started,
            time.perf_counter() - started,
            None,
            failure=type(error).__name__,
        )
    seconds = time.perf_counter() - started
    return Outcome(
        shot.label,
        started - run_started,
        seconds,
        response.status_code,
        response.headers.get("content-type", ""),
        response.headers.get("retry-after"),
        "" if response.status_code == 200 else response.text[:300],
    )


async def offer(
    base_url: str,
    headers: dict[str, str],
    next_shot: Callable[[int], Shot],
    rate_per_s: float,
    seconds: float,
    timeout_s: float = 60,
    stop: Callable[[], bool] | None = None,
) -> list[Outcome]:
    """Start ``rate_per_s`` requests a second for ``seconds`` (or until ``stop()`` says so); every
    outcome, once all answered."""
    limits = httpx.Limits(max_connections=None, max_keepalive_connections=200)
    headers = {"Content-Type": "application/json", **headers}
    async with httpx.AsyncClient(
        base_url=base_url, headers=headers, timeout=timeout_s, limits=limits
    ) as http:
        loop = asyncio.get_running_loop()
        run_started = time.perf_counter()
        begin = loop.time()
        pending = []
        for i in range(int(rate_per_s * seconds)):
            if stop is not None and stop():
                break
            await asyncio.sleep(max(0.0, begin + i / rate_per_s - loop.time()))
            pending.append(asyncio.create_task(shoot(http, next_shot(i), run_started)))
        return list(await asyncio.gather(*pending))
