"""Redeploying a changed configuration under load fails no request: a new batch size, another
replica count, an added model, each applied with ``serve.run`` while requests keep arriving.

An application of its own (``/live``) on the session's Serve instance, so that its restarts disturb
no other test.
"""

from __future__ import annotations

import asyncio
import copy
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from bench.open_loop import Outcome, Shot, offer
from bench.soak import serve_pids
from sapheneia.testing import wavy_series
from tests.deployments.conftest import API_KEY, undeploy, wait_until_reported
from tests.deployments.test_served_timesfm import forecast_request

HEADERS = {"Authorization": f"Bearer {API_KEY}", "Content-Type": "application/json"}
RATE_PER_S = 10.0
BEFORE = {
    "ingress": {"ray_actor_options": {"num_cpus": 0.1}},
    "models": [
        {
            "id": "seasonal-naive",
            "ray_actor_options": {"num_cpus": 0.1},
            # 32 on the replica, 32 queued at the ingress: room for the load while a replica is replaced.
            "user_config": {"max_batch_size": 16, "batch_wait_timeout_s": 0.2},
        }
    ],
}


@pytest.fixture(scope="module")
def live(
    serve_url: str, data_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, Any]]:
    from ray import serve

    from deployments.builder import build_app_with_settings
    from sapheneia.settings import Settings

    settings = Settings(
        api_keys=API_KEY,
        data_dir=data_dir,
        state_dir=tmp_path_factory.mktemp("live-state"),
        rate_limit_per_minute=10_000_000,
    )
    url = f"{serve_url}/live"

    def apply(args: dict[str, Any]) -> None:
        serve.run(build_app_with_settings(args, settings), name="live", route_prefix="/live")
        wait_until_reported(url, {m["id"] for m in args["models"]}, timeout_s=120)

    apply(BEFORE)
    yield url, apply
    undeploy("live", settings.state_dir)


def body(model_id: str) -> bytes:
    return json.dumps(forecast_request(model_id, "s", wavy_series(48, seed=3), horizon=6)).encode()


def largest_batch(url: str, model_id: str, concurrent: int) -> int:
    """The largest batch that ``concurrent`` simultaneous one-series requests were served in."""

    async def burst() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=url, headers=HEADERS, timeout=60) as http:
            one = body(model_id)
            return await asyncio.gather(
                *(http.post("/api/v2/forecast", content=one) for _ in range(concurrent))
            )

    responses = asyncio.run(burst())
    assert all(r.status_code == 200 for r in responses), [r.text for r in responses]
    return max(max(r.json()["metadata"]["batch_sizes"]) for r in responses)


def test_redeploys_under_load_fail_no_request(live: tuple[str, Any]) -> None:
    url, apply = live
    assert largest_batch(url, "seasonal-naive", 24) <= 16
    stop = threading.Event()
    outcomes: list[Outcome] = []
    one = body("seasonal-naive")

    def load() -> None:
        shot = Shot("naive", "/api/v2/forecast", one)
        outcomes.extend(
            # Each request may take until the proxy's deadline (120 s) on a crowded machine.
            asyncio.run(offer(url, HEADERS, lambda _: shot, RATE_PER_S, 600, 130, stop.is_set))
        )

    loader = threading.Thread(target=load)
    loader.start()
    try:
        naive_before = {n: p for n, p in serve_pids("live").items() if "seasonal-naive" in n}
        bigger = copy.deepcopy(BEFORE)
        # A longer wait too, so that the burst below lands in one batch on a crowded machine.
        bigger["models"][0]["user_config"] = {"max_batch_size": 48, "batch_wait_timeout_s": 1.0}
        apply(bigger)
        assert largest_batch(url, "seasonal-naive", 24) > 16
        naive_after = {n: p for n, p in serve_pids("live").items() if "seasonal-naive" in n}

        two = copy.deepcopy(bigger)
        two["models"][0]["num_replicas"] = 2
        apply(two)
        replicas = [n for n in serve_pids("live") if "model-seasonal-naive" in n]
        assert len(replicas) == 2, replicas

        more = copy.deepcopy(two)
        more["models"].append({"id": "auto-theta", "ray_actor_options": {"num_cpus": 0.1}})
        apply(more)
        theta = httpx.post(
            f"{url}/api/v2/forecast", content=body("auto-theta"), headers=HEADERS, timeout=60
        )
        assert theta.status_code == 200, theta.text
    finally:
        stop.set()
        loader.join(timeout=120)

    failed = [o for o in outcomes if o.status != 200]
    for outcome in failed[:5]:
        print("FAILED", outcome)
    print(
        f"{len(outcomes)} requests during three redeploys, {len(failed)} failed; seasonal-naive "
        f"replica restarted for the batch-size change: {naive_before != naive_after}"
    )
    assert len(outcomes) >= 100
    assert failed == []
