"""initialization/shutdown/status act on every replica of a model, not just the one reached."""

from __future__ import annotations

import httpx

from tests.deployments.conftest import ADMIN_KEY, assert_error
from tests.deployments.test_seed_contract import SEED_REQUEST

MODEL = "/api/v1/auto-theta"


def replica_states(client: httpx.Client) -> dict:
    return client.get(f"{MODEL}/status").json()


def test_shutdown_and_initialization_reach_both_replicas(
    client: httpx.Client, admin: httpx.Client
) -> None:
    assert replica_states(client)["replicas"] == 2

    response = admin.post(f"{MODEL}/shutdown")
    assert response.status_code == 200, response.text
    assert response.json() == {"message": "Model shut down successfully", "replicas": 2}
    assert replica_states(client)["model_status"] == "uninitialized"
    # Whichever replica a request reaches, it is shut down: every one of many requests gets 503.
    for _ in range(8):
        assert_error(client.post(f"{MODEL}/inference", json=SEED_REQUEST), 503, "model_unavailable")

    response = admin.post(f"{MODEL}/initialization", json={"context_len": 96, "horizon_len": 6})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model_status"] == "ready" and body["replicas"] == 2
    assert body["message"].startswith("Model initialized successfully from ")
    assert replica_states(client)["model_status"] == "ready"
    for _ in range(8):
        assert client.post(f"{MODEL}/inference", json=SEED_REQUEST).status_code == 200


def test_initialization_settings_become_defaults(client: httpx.Client, admin: httpx.Client) -> None:
    admin.post(f"{MODEL}/initialization", json={"context_len": 48, "horizon_len": 5})
    request = {**SEED_REQUEST, "parameters": {"use_quantiles": False}}
    body = client.post(f"{MODEL}/inference", json=request).json()
    assert len(body["prediction"]["point_forecast"][0]) == 5
    assert len(body["visualization_data"]["historical_data"]) == 48
    assert "quantile_bands" not in body["prediction"]


def test_initialization_refuses_another_checkpoint(admin: httpx.Client) -> None:
    response = admin.post(f"{MODEL}/initialization", json={"checkpoint": "someone/else"})
    assert "serve_config.yaml" in assert_error(response, 400, "invalid_input")["message"]


def test_a_forecast_key_may_not_change_a_models_state(client: httpx.Client) -> None:
    for action in ("initialization", "shutdown"):
        response = client.post(f"{MODEL}/{action}")
        assert "admin key" in assert_error(response, 403, "forbidden")["message"]
    assert replica_states(client)["model_status"] == "ready"


def test_initializing_a_ready_model_reloads_nothing_and_keeps_serving(
    serve_url: str, client: httpx.Client, admin: httpx.Client
) -> None:
    import asyncio

    before = admin.post(f"{MODEL}/initialization", json={"context_len": 48, "horizon_len": 5})
    assert before.status_code == 200, before.text

    async def forecasts_during_initialization() -> list[int]:
        headers = {"Authorization": f"Bearer {ADMIN_KEY}"}
        async with httpx.AsyncClient(base_url=serve_url, headers=headers, timeout=60) as http:
            calls = [http.post(f"{MODEL}/inference", json=SEED_REQUEST) for _ in range(12)]
            init = http.post(f"{MODEL}/initialization", json={"context_len": 48})
            responses = await asyncio.gather(*calls[:6], init, *calls[6:])
        return [r.status_code for r in responses]

    # No 503 window: the weights stay loaded, only the defaults change.
    assert asyncio.run(forecasts_during_initialization()) == [200] * 13
    assert replica_states(client)["model_status"] == "ready"
