"""Per-model metrics reach Ray's Prometheus endpoint."""

from __future__ import annotations

import os
import time

import httpx

from tests.deployments.test_seed_contract import SEED_REQUEST


def test_model_metrics_are_exported(client: httpx.Client) -> None:
    assert client.post("/api/v1/seasonal-naive/inference", json=SEED_REQUEST).status_code == 200
    url = f"http://127.0.0.1:{os.environ['SAPHENEIA_TEST_METRICS_PORT']}/metrics"
    deadline = time.monotonic() + 60
    text = ""
    while time.monotonic() < deadline:
        text = httpx.get(url, timeout=5).text
        if "sapheneia_series_forecasted" in text and "sapheneia_batch_size" in text:
            break
        time.sleep(2)
    assert 'model="seasonal-naive"' in text
    for name in (
        "sapheneia_series_forecasted",
        "sapheneia_batch_size",
        "sapheneia_model_latency_seconds",
    ):
        assert name in text
    assert "ray_serve_num_http_requests" in text or "serve_num_http_requests" in text
