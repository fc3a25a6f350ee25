"""Slow URL sources cannot stall other callers, over the real Serve instance.

A second application on the session's Serve instance, ``/lenient``, fetches from loopback (its
operator allowed private URLs and any port) so that a trickling server started here can be its
source.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from tests.deployments.conftest import API_KEY, OTHER_KEY, assert_error, undeploy
from tests.deployments.test_unified import rows

THIRD_KEY = "third-key-0123456789"
TIMEOUT_S = 6.0
PER_KEY = 4


class Trickle(BaseHTTPRequestHandler):
    """Answers a header byte every 0.2 s: inside any per-read timeout, never done in time."""

    def do_GET(self) -> None:
        try:
            for byte in b"HTTP/1.1 200 OK\r\nContent-Type: text/csv\r\n" * 20:
                self.wfile.write(bytes([byte]))
                self.wfile.flush()
                time.sleep(0.2)
        except OSError:  # the fetcher hung up at its deadline, as it should
            pass

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def trickle_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Trickle)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/series.csv"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def lenient(
    serve_url: str, data_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    from ray import serve

    from deployments.builder import build_app_with_settings
    from sapheneia.settings import Settings

    settings = Settings(
        api_keys=f"{API_KEY},{OTHER_KEY},{THIRD_KEY}",
        data_dir=data_dir,
        state_dir=tmp_path_factory.mktemp("lenient-state"),
        allow_private_urls=True,
        url_ports="*",
        url_timeout_s=TIMEOUT_S,
        url_fetches_per_key=PER_KEY,
        rate_limit_per_minute=100_000,
    )
    args = {
        "models_dir": "configs/models",
        "ingress": {"ray_actor_options": {"num_cpus": 0.1}},
        "models": [{"id": "seasonal-naive", "ray_actor_options": {"num_cpus": 0.1}}],
    }
    serve.run(build_app_with_settings(args, settings), name="lenient", route_prefix="/lenient")
    url = f"{serve_url}/lenient"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        health = httpx.get(f"{url}/health", timeout=5).json()
        if health["models"]["seasonal-naive"]["status"] == "ready":
            break
        time.sleep(0.5)
    yield url
    undeploy("lenient", settings.state_dir)


def test_eight_trickling_urls_leave_other_callers_served(lenient: str, trickle_url: str) -> None:
    inline = {"model": "seasonal-naive", "horizon": 3, "data": rows({"a": 1.0})}
    from_url = {"model": "seasonal-naive", "horizon": 3, "source": trickle_url}

    async def scenario() -> None:
        async with httpx.AsyncClient(base_url=lenient, timeout=60) as http:

            def post(key: str, body: dict) -> asyncio.Task[httpx.Response]:
                headers = {"Authorization": f"Bearer {key}"}
                return asyncio.create_task(
                    http.post("/api/v2/forecast", json=body, headers=headers)
                )

            slow = [post(key, from_url) for key in (API_KEY, OTHER_KEY) for _ in range(PER_KEY)]
            await asyncio.sleep(1.0)  # all eight are fetching now
            # A ninth from a key that already has its share is refused at once, not queued.
            extra = await post(API_KEY, from_url)
            assert_error(extra, 429, "rate_limited")
            assert "SAPHENEIA_URL_FETCHES_PER_KEY" in extra.json()["error"]["message"]
            assert int(extra.headers["retry-after"]) >= 1
            # Another caller's inline request is answered while every fetch is still hanging.
            for _ in range(3):
                answer = await post(THIRD_KEY, inline)
                assert answer.status_code == 200, answer.text
            assert not any(task.done() for task in slow)
            for response in await asyncio.gather(*slow):
                assert_error(response, 422, "source_unreachable")

    started = time.monotonic()
    asyncio.run(scenario())
    assert time.monotonic() - started < TIMEOUT_S + 20  # every fetch ended at its deadline
