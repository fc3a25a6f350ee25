"""The shared state store on the session's Ray Serve instance: one rate counter for every ingress
replica, a daily quota and a shut-down model that outlive ``serve.delete`` + redeploy (file and
Redis backends), and a killed lifecycle board that changes nothing a caller sees."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.deployments import cluster_load
from tests.deployments.cluster_load import placement
from tests.deployments.conftest import ADMIN_KEY, API_KEY, assert_error, undeploy
from tests.deployments.test_unified import rows
from tests.redis_server import redis_server

pytestmark = pytest.mark.cluster

SMALL = {"ray_actor_options": {"num_cpus": 0.05}}


def app_args(models: list[str], ingress_replicas: int = 1) -> dict[str, Any]:
    return {
        "models_dir": "configs/models",
        "ingress": {**SMALL, "num_replicas": ingress_replicas, "lifecycle_timeout_s": 60},
        "models": [{"id": m, **SMALL} for m in models],
    }


def deploy(
    name: str, args: dict[str, Any], data_dir: Path, state_dir: Path, **settings: Any
) -> Any:
    return cluster_load.deploy(name, args, state_dir, data_dir, admin_keys=ADMIN_KEY, **settings)


def until(check: Callable[[], Any], timeout_s: float = 60) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if result := check():
                return result
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise TimeoutError("condition not met")


def clients(url: str) -> tuple[httpx.Client, httpx.Client]:
    return (
        httpx.Client(base_url=url, headers={"Authorization": f"Bearer {API_KEY}"}, timeout=60),
        httpx.Client(base_url=url, headers={"Authorization": f"Bearer {ADMIN_KEY}"}, timeout=60),
    )


def forecast(client: httpx.Client, model: str, n_series: int) -> httpx.Response:
    names = {f"s{i}": float(i + 1) for i in range(n_series)}
    return client.post("/api/v2/forecast", json={"model": model, "horizon": 3, "data": rows(names)})


def test_two_ingress_replicas_share_one_request_counter(
    serve_url: str, data_dir: Path, tmp_path: Path
) -> None:
    allowed, refused = 5, 4
    deploy(
        "limits", app_args(["seasonal-naive"], 2), data_dir, tmp_path, rate_limit_per_minute=allowed
    )
    try:
        assert len(placement("limits", "ingress")) == 2
        client, _ = clients(f"{serve_url}/limits")
        answers = [client.get("/api/v2/models") for _ in range(allowed + refused)]
        # Each replica counting on its own would let up to twice as many through.
        assert Counter(a.status_code for a in answers) == {200: allowed, 429: refused}
        last = answers[-1]
        assert_error(last, 429, "rate_limited")
        assert last.headers["x-ratelimit-limit"] == str(allowed)
        assert last.headers["x-ratelimit-remaining"] == "0"
        assert last.headers["retry-after"] == last.headers["x-ratelimit-reset"]
    finally:
        undeploy("limits", tmp_path)


@pytest.mark.parametrize("backend", ["file", "redis"])
def test_the_quota_and_a_shut_down_model_survive_delete_and_redeploy(
    serve_url: str, data_dir: Path, tmp_path: Path, backend: str
) -> None:
    name = f"quota-{backend}"
    args = app_args(["seasonal-naive", "auto-ets"])
    with redis_server(tmp_path) as redis_url:
        settings = {"daily_series_quota": 5, "state_url": redis_url if backend == "redis" else ""}
        # The file backend must find its file again; Redis must not need the state directory.
        state_dir = tmp_path / ("state" if backend == "file" else "fresh")
        deploy(name, args, data_dir, tmp_path / "state", **settings)
        try:
            client, admin = clients(f"{serve_url}/{name}")
            until(lambda: client.get("/api/v1/auto-ets/status").json()["model_status"] == "ready")
            assert forecast(client, "seasonal-naive", 3).status_code == 200
            assert admin.post("/api/v1/auto-ets/shutdown").status_code == 200
            # The board and the state actor go with it: what survives is in the store alone.
            undeploy(name, tmp_path / "state")

            deploy(name, args, data_dir, state_dir, **settings)
            until(
                lambda: (
                    client.get("/api/v1/seasonal-naive/status").json()["model_status"] == "ready"
                )
            )
            refused = forecast(client, "seasonal-naive", 3)  # 3 + 3 > 5 series today
            assert (
                "daily quota of 5 series" in assert_error(refused, 429, "quota_exceeded")["message"]
            )
            status = client.get("/api/v1/auto-ets/status").json()
            assert status["model_status"] == "uninitialized", status
            # Series are charged once parsed, whatever the model then answers: 3 + 1 ...
            assert_error(forecast(client, "auto-ets", 1), 503, "model_unavailable")
            # ... + 1 = 5, the quota exactly.
            assert forecast(client, "seasonal-naive", 1).status_code == 200
            assert_error(forecast(client, "seasonal-naive", 1), 429, "quota_exceeded")
        finally:
            undeploy(name, state_dir)


def test_a_killed_board_keeps_health_status_inference_and_a_shut_down_model_down(
    serve_url: str, data_dir: Path, tmp_path: Path
) -> None:
    import ray

    from deployments.lifecycle import BOARD_NAMESPACE, board_name

    app = deploy("board", app_args(["seasonal-naive", "auto-ets"]), data_dir, tmp_path)
    try:
        client, admin = clients(f"{serve_url}/board")
        until(lambda: client.get("/api/v1/auto-ets/status").json()["model_status"] == "ready")
        assert admin.post("/api/v1/auto-ets/shutdown").status_code == 200

        options = app._bound_deployment.init_args[2]  # Ingress(handles, configs, options)
        ray.kill(ray.get_actor(board_name("board", options.state), namespace=BOARD_NAMESPACE))

        health = until(
            lambda: (
                (h := client.get("/health")).status_code == 200
                and h.json()["models"]["seasonal-naive"]["status"] == "ready"
                and h.json()["models"]["auto-ets"]["status"] != "initializing"
                and h.json()
            )
        )
        assert health["models"]["auto-ets"]["status"] == "uninitialized", health
        assert client.get("/api/v1/seasonal-naive/status").json()["model_status"] == "ready"
        assert client.get("/api/v1/auto-ets/status").json()["model_status"] == "uninitialized"
        assert forecast(client, "seasonal-naive", 2).status_code == 200
        assert_error(forecast(client, "auto-ets", 1), 503, "model_unavailable")
    finally:
        undeploy("board", tmp_path)
