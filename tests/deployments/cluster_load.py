"""Helpers for the two-node tests: where replicas run, and steady HTTP load with a fault injected.

The load is bounded: a fixed number of concurrent callers, each sending its next request as soon as
the last one is answered, for a fixed time. Every answer is kept with when it was sent, so a test can
tell requests that were in flight at the fault from those sent after it.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import ray

from sapheneia.testing import wavy_series
from tests.deployments.conftest import API_KEY, HEAD_RESOURCE, undeploy, wait_until_reported
from tests.deployments.test_served_timesfm import forecast_request

# Four series of 120 points: an ETS fit takes a sizeable part of a second, so that a replica is
# surely busy when it is killed.
FOUR_SERIES = {
    **forecast_request("auto-ets", "s0", wavy_series(120, seed=0), horizon=12),
    "data": [
        {**row, "unique_id": f"s{i}"}
        for i in range(4)
        for row in forecast_request("auto-ets", "s", wavy_series(120, seed=i), horizon=12)["data"]
    ],
}
ON_HEAD = {"num_cpus": 0.1, "resources": {HEAD_RESOURCE: 0.01}}


def deploy(name: str, args: dict[str, Any], state_dir: Path, data_dir: Path, **more: Any) -> Any:
    """Deploy ``args`` as application ``name`` at /``name``; ``more``: further ``Settings`` fields
    (``jobs_uri=...``), or others' values. ``undeploy(name, state_dir)`` removes it."""
    from ray import serve

    from deployments.builder import build_app_with_settings
    from sapheneia.settings import Settings

    fields = {"api_keys": API_KEY, "rate_limit_per_minute": 100_000, **more}
    settings = Settings(data_dir=data_dir, state_dir=state_dir, **fields)
    app = build_app_with_settings(args, settings)
    serve.run(app, name=name, route_prefix=f"/{name}")
    return app


SMALL = {"num_cpus": 0.1}
#: An app of one seasonal-naive replica: enough for tests of what the ingress does.
ONE_MODEL: dict[str, Any] = {
    "models_dir": "configs/models",
    "ingress": {"ray_actor_options": SMALL},
    "models": [{"id": "seasonal-naive", "ray_actor_options": SMALL}],
}


@contextlib.contextmanager
def own_app(
    serve_url: str,
    name: str,
    data_dir: Path,
    state_dir: Path,
    args: dict[str, Any] = ONE_MODEL,
    **settings: Any,
) -> Iterator[str]:
    """``args`` (one seasonal-naive by default) with ``settings`` as an application of its own at
    ``/<name>`` on the session's Serve instance, so that its settings change no other test's; its
    URL once every model has reported, deleted on leaving (with its board and state actor)."""
    deploy(name, args, state_dir, data_dir, **settings)
    url = f"{serve_url}/{name}"
    wait_until_reported(url, {m["id"] for m in args["models"]}, timeout_s=120)
    try:
        yield url
    finally:
        undeploy(name, state_dir)


def placement(app: str, deployment: str = "") -> dict[int, str]:
    """Process id -> node id of every live replica of a deployment (of every deployment of ``app``
    without one), from Ray's actor table: no call to the replicas, which may be busy."""
    return {
        int(actor["Pid"]): str(actor["Address"]["NodeID"])
        for actor in live_replicas(app, deployment)
    }


def live_replicas(app: str, deployment: str = "") -> list[dict[str, Any]]:
    """Ray's actor-table entries of the live replicas of ``deployment`` (or of all of ``app``)."""
    prefix = f"SERVE_REPLICA::{app}#{deployment}#" if deployment else f"SERVE_REPLICA::{app}#"
    return [
        actor
        for actor in ray._private.state.actors().values()
        if actor["Name"].startswith(prefix) and actor["State"] == "ALIVE"
    ]


def busy_replica(app: str, deployment: str, timeout_s: float = 10) -> int:
    """The process id of a live replica of ``deployment`` that holds a request now, asked through
    the same probe Serve's router uses (``get_num_ongoing_requests``, answered on a thread of its
    own while the replica works). The router need not keep every replica busy at every instant,
    so a fault test that must hit requests in flight picks its victim this way."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for actor in live_replicas(app, deployment):
            replica = ray.get_actor(actor["Name"], namespace="serve")
            if ray.get(replica.get_num_ongoing_requests.remote(), timeout=5) > 0:
                return int(actor["Pid"])
        time.sleep(0.05)
    raise AssertionError(f"no replica of {app}/{deployment} held a request for {timeout_s} s")


def node_id(node: Any) -> str:
    """The Ray node id of a ``ray.cluster_utils.Cluster`` node."""
    return str(node.node_id)


@dataclass(frozen=True)
class Answer:
    sent: float  # seconds since the load began
    answered: float
    status: int
    code: str | None  # the error code of a 4xx/5xx in Sapheneia's shape, else None
    retry_after: str | None
    text: str  # the start of a failed answer's body


@dataclass
class LoadRun:
    answers: list[Answer]
    fault_at: float  # when the fault began, seconds since the load began
    fault_done: float  # when the call that injected it returned

    def statuses(self) -> Counter[int]:
        return Counter(a.status for a in self.answers)

    def failed(self) -> list[Answer]:
        return [a for a in self.answers if a.status != 200]

    def in_flight_at_fault(self) -> list[Answer]:
        return [a for a in self.answers if a.sent <= self.fault_at < a.answered]

    def summary(self) -> str:
        failed = self.failed()
        return (
            f"{len(self.answers)} answers {dict(self.statuses())}; in flight at the fault "
            f"{len(self.in_flight_at_fault())}; failures sent at "
            f"{[round(a.sent - self.fault_at, 2) for a in failed]} s from the fault, codes "
            f"{dict(Counter(a.code for a in failed))}, bodies {sorted({a.text for a in failed})}"
        )


def error_code(response: httpx.Response) -> str | None:
    try:
        return str(response.json()["error"]["code"])
    except (ValueError, KeyError, TypeError):
        return None


def run_load(
    url: str,
    body: dict[str, Any],
    fault: Callable[[], None],
    *,
    seconds: float,
    fault_after_s: float,
    callers: int,
    stop_with_fault: bool = False,
) -> LoadRun:
    """``callers`` loops posting ``body`` to ``url`` for ``seconds``; ``fault`` runs (in a thread)
    ``fault_after_s`` into the load (with ``stop_with_fault``, the load ends when it returns).
    A request that gets no answer at all counts as status 0."""
    headers = {"Authorization": f"Bearer {API_KEY}"}

    async def main() -> LoadRun:
        began = time.monotonic()
        answers: list[Answer] = []
        stop = asyncio.Event()

        async def caller(http: httpx.AsyncClient) -> None:
            while time.monotonic() - began < seconds and not stop.is_set():
                sent = time.monotonic() - began
                try:
                    response = await http.post(url, json=body)
                    status, code = response.status_code, error_code(response)
                    retry_after = response.headers.get("retry-after")
                    text = "" if response.is_success else response.text[:80]
                except httpx.HTTPError as error:
                    status, code, retry_after, text = 0, None, None, type(error).__name__
                answered = time.monotonic() - began
                answers.append(Answer(sent, answered, status, code, retry_after, text))

        async def inject() -> tuple[float, float]:
            await asyncio.sleep(fault_after_s)
            at = time.monotonic() - began
            await asyncio.to_thread(fault)
            if stop_with_fault:
                stop.set()
            return at, time.monotonic() - began

        limits = httpx.Limits(max_connections=callers + 2)
        async with httpx.AsyncClient(headers=headers, timeout=60, limits=limits) as http:
            injected = asyncio.create_task(inject())
            await asyncio.gather(*(caller(http) for _ in range(callers)))
            fault_at, fault_done = await injected
        return LoadRun(sorted(answers, key=lambda a: a.sent), fault_at, fault_done)

    return asyncio.run(main())


def wait_for(check: Callable[[], bool], timeout_s: float, what: str) -> float:
    """Seconds until ``check()`` holds (HTTP errors count as not yet)."""
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        try:
            if check():
                return time.monotonic() - started
        except (httpx.HTTPError, KeyError, ValueError):
            pass
        time.sleep(0.25)
    raise TimeoutError(f"{what} within {timeout_s} s")


def health(url: str, model: str) -> dict[str, Any]:
    """The model's entry on /health: status and live replicas."""
    return dict(httpx.get(f"{url}/health", timeout=5).json()["models"][model])


def ready_with(url: str, model: str, replicas: int) -> bool:
    entry = health(url, model)
    return bool(entry["status"] == "ready" and entry["replicas"] == replicas)
