"""Concurrent requests to one model share model calls, and batching never changes a result."""

from __future__ import annotations

import asyncio

import httpx
import numpy as np
from statsforecast.utils import AirPassengersDF

from tests.deployments.conftest import API_KEY


def request_for(index: int) -> dict:
    air = AirPassengersDF.tail(60)
    scale = 1.0 + index / 10
    return {
        "model": "auto-ets",
        "horizon": 6,
        "quantiles": [0.1, 0.9],
        "data": [
            {"unique_id": f"s{index}", "ds": ds.strftime("%Y-%m-%d"), "y": float(y) * scale}
            for ds, y in zip(air["ds"], air["y"], strict=True)
        ],
    }


async def send_all(url: str, requests: list[dict]) -> list[dict]:
    headers = {"Authorization": f"Bearer {API_KEY}"}
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=120) as client:
        responses = await asyncio.gather(
            *(client.post("/api/v2/forecast", json=r) for r in requests)
        )
    for response in responses:
        assert response.status_code == 200, response.text
    return [r.json() for r in responses]


def test_32_concurrent_requests_are_batched_and_equal_solo_results(serve_url: str) -> None:
    requests = [request_for(i) for i in range(32)]
    together = asyncio.run(send_all(serve_url, requests))
    batch_sizes = [b["metadata"]["batch_sizes"][0] for b in together]
    assert max(batch_sizes) > 1, batch_sizes

    for index in (0, 7, 31):
        (alone,) = asyncio.run(send_all(serve_url, [requests[index]]))
        for key in ("mean", "q-0.1", "q-0.9"):
            solo = np.array([row[key] for row in alone["forecast"]])
            batched = np.array([row[key] for row in together[index]["forecast"]])
            np.testing.assert_allclose(batched, solo, rtol=1e-9)
