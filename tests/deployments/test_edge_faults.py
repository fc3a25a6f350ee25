"""A replica that dies mid-request, and CORS on error answers, over the real Serve instance.

An application of its own (``/edge``) so that killing its replica disturbs no other test: one
Prophet replica (fits take seconds, so a request is surely in flight when it is killed), and CORS
origins configured.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.deployments.conftest import API_KEY, assert_error, undeploy
from tests.deployments.test_served_timesfm import forecast_request, series

ORIGIN = "https://forecasts.example"


@pytest.fixture(scope="module")
def edge(serve_url: str, data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    from ray import serve

    from deployments.builder import build_app_with_settings
    from sapheneia.settings import Settings

    settings = Settings(
        api_keys=API_KEY,
        data_dir=data_dir,
        state_dir=tmp_path_factory.mktemp("edge-state"),
        cors_origins=ORIGIN,
        max_request_bytes=1024 * 1024,
        rate_limit_per_minute=100_000,
    )
    args = {
        "models_dir": "configs/models",
        "ingress": {"ray_actor_options": {"num_cpus": 0.1}},
        "models": [
            {
                "id": "prophet",
                "ray_actor_options": {"num_cpus": 0.1},
                "options": {"uncertainty_samples": 200, "timeout_s": 60},
            }
        ],
    }
    serve.run(build_app_with_settings(args, settings), name="edge", route_prefix="/edge")
    url = f"{serve_url}/edge"
    wait_ready(url, timeout_s=120)
    yield url
    undeploy("edge", settings.state_dir)


def wait_ready(url: str, timeout_s: float) -> float:
    """Seconds until prophet reports ready on /health."""
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        try:
            models = httpx.get(f"{url}/health", timeout=5).json()["models"]
            if models["prophet"]["status"] == "ready":
                return time.monotonic() - started
        except (httpx.HTTPError, KeyError, ValueError):
            pass
        time.sleep(0.5)
    raise TimeoutError(f"prophet not ready within {timeout_s} s")


def replica_pid(app: str, deployment: str) -> int:
    """The process id of the one replica of ``deployment``, asked of the replica actor itself."""
    import ray

    named = [
        a
        for a in ray.util.list_named_actors(all_namespaces=True)
        if a["name"].startswith(f"SERVE_REPLICA::{app}#{deployment}#")
    ]
    assert len(named) == 1, named
    actor = ray.get_actor(named[0]["name"], namespace=named[0]["namespace"])
    return int(ray.get(actor.__ray_call__.remote(lambda _self: os.getpid()), timeout=30))


def test_a_request_whose_replica_dies_gets_503_and_the_model_comes_back(edge: str) -> None:
    many = forecast_request("prophet", "s0", series(120, seed=0), horizon=12)
    many["data"] = [{**row, "unique_id": f"s{i}"} for i in range(60) for row in many["data"]]
    headers = {"Authorization": f"Bearer {API_KEY}"}

    async def kill_mid_request() -> httpx.Response:
        async with httpx.AsyncClient(base_url=edge, headers=headers, timeout=120) as http:
            pending = asyncio.create_task(http.post("/api/v2/forecast", json=many))
            await asyncio.sleep(2.0)  # sixty Prophet fits take far longer than this
            assert not pending.done()
            os.kill(replica_pid("edge", "model-prophet"), signal.SIGKILL)
            return await pending

    response = asyncio.run(kill_mid_request())
    error = assert_error(response, 503, "model_unavailable")
    assert "retry" in error["message"]
    assert int(response.headers["retry-after"]) >= 1
    # Serve restarts the replica; the model is ready again well within 30 s.
    assert wait_ready(edge, timeout_s=30) < 30
    small = forecast_request("prophet", "s", series(60, seed=1), horizon=6)
    assert httpx.post(f"{edge}/api/v2/forecast", json=small, headers=headers, timeout=60).is_success


@pytest.mark.parametrize(
    ("what", "request_kwargs", "status"),
    [
        ("no key", {}, 401),
        ("too large", {"content": b"x" * (2 * 1024 * 1024)}, 413),
        ("bad body", {"json": {"model": "prophet"}}, 400),
    ],
)
def test_error_answers_carry_cors_headers(
    edge: str, what: str, request_kwargs: dict, status: int
) -> None:
    headers = {"Origin": ORIGIN, "Content-Type": "application/json"}
    if what != "no key":
        headers["Authorization"] = f"Bearer {API_KEY}"
    response = httpx.post(f"{edge}/api/v2/forecast", headers=headers, timeout=30, **request_kwargs)
    assert_error(response, status)
    assert response.headers["access-control-allow-origin"] == ORIGIN
    # An origin that was not configured gets no CORS grant.
    other = httpx.post(
        f"{edge}/api/v2/forecast",
        headers={**headers, "Origin": "https://evil.example"},
        timeout=30,
        **request_kwargs,
    )
    assert "access-control-allow-origin" not in other.headers
