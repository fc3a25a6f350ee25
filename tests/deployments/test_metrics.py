"""Per-model metrics reach Ray's Prometheus endpoint."""

from __future__ import annotations

import os
import time

import httpx

from tests.deployments.test_seed_contract import SEED_REQUEST

NAMES = ("sapheneia_series_forecasted", "sapheneia_batch_size", "sapheneia_model_latency_seconds")


def exported(text: str, name: str, model: str) -> bool:
    return any(
        line.startswith(f"ray_{name}") and f'model="{model}"' in line for line in text.splitlines()
    )


def test_model_metrics_are_exported(client: httpx.Client) -> None:
    assert client.post("/api/v1/seasonal-naive/inference", json=SEED_REQUEST).status_code == 200
    # Each node of the test cluster exports its own processes' metrics: read them all.
    ports = os.environ["SAPHENEIA_TEST_METRICS_PORTS"].split(",")
    # Ray exports metrics every few seconds.
    deadline = time.monotonic() + 90
    text = ""
    while time.monotonic() < deadline:
        text = "\n".join(httpx.get(f"http://127.0.0.1:{p}/metrics", timeout=5).text for p in ports)
        if all(exported(text, name, "seasonal-naive") for name in NAMES):
            break
        time.sleep(2)
    for name in NAMES:
        assert exported(text, name, "seasonal-naive"), name
    assert "ray_serve_num_http_requests_total" in text
