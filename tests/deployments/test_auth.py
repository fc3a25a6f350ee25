"""Bearer keys: public routes stay public, everything else needs a valid key, lifecycle routes an
admin key. In process (``local``); the session's Serve instance is checked for the public routes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.deployments.conftest import ADMIN_KEY, API_KEY, OTHER_KEY, assert_error

PROTECTED = [
    ("GET", "/api/v2/models"),
    ("POST", "/api/v2/backtest"),
    ("POST", "/api/v1/auto-ets/initialization"),
    ("POST", "/api/v1/auto-ets/shutdown"),
    ("GET", "/api/v1/auto-ets/status"),
    ("POST", "/api/v1/auto-ets/inference"),
    ("POST", "/api/v2/forecast"),
]


@pytest.mark.parametrize(("method", "path"), PROTECTED)
def test_no_key_is_refused(local_anonymous: httpx.Client, method: str, path: str) -> None:
    error = assert_error(local_anonymous.request(method, path), 401, "unauthorized")
    assert "Authorization: Bearer" in error["message"]


@pytest.mark.parametrize(("method", "path"), PROTECTED)
def test_wrong_key_is_refused(local_anonymous: httpx.Client, method: str, path: str) -> None:
    response = local_anonymous.request(method, path, headers={"Authorization": "Bearer nope"})
    assert assert_error(response, 401, "unauthorized")["message"] == "invalid API key"


def test_malformed_header_is_refused(local_anonymous: httpx.Client) -> None:
    response = local_anonymous.get(
        "/api/v2/models", headers={"Authorization": "Basic dXNlcjpwYXNz"}
    )
    assert "malformed" in assert_error(response, 401)["message"]


@pytest.mark.parametrize("path", ["/", "/health", "/info", "/models", "/docs", "/openapi.json"])
def test_public_routes_need_no_key(local_anonymous: httpx.Client, path: str) -> None:
    assert local_anonymous.get(path).status_code == 200


def test_every_configured_key_works(local_anonymous: httpx.Client) -> None:
    for key in (API_KEY, OTHER_KEY, ADMIN_KEY):
        response = local_anonymous.get("/api/v2/models", headers={"Authorization": f"Bearer {key}"})
        assert response.status_code == 200
        assert "auto-ets" in {m["id"] for m in response.json()["models"]}


def test_openapi_lists_both_surfaces(local_anonymous: httpx.Client) -> None:
    paths = local_anonymous.get("/openapi.json").json()["paths"]
    for path in [
        "/health",
        "/api/v1/{model}/inference",
        "/api/v1/{model}/initialization",
        "/api/v1/{model}/status",
        "/api/v1/{model}/shutdown",
        "/api/v2/forecast",
        "/api/v2/models",
    ]:
        assert path in paths


@pytest.mark.parametrize("action", ["initialization", "shutdown"])
def test_lifecycle_needs_an_admin_key(local_anonymous: httpx.Client, action: str) -> None:
    path = f"/api/v1/auto-ets/{action}"
    for key in (API_KEY, OTHER_KEY):
        response = local_anonymous.post(path, headers={"Authorization": f"Bearer {key}"})
        assert "admin key" in assert_error(response, 403, "forbidden")["message"]
    admin = {"Authorization": f"Bearer {ADMIN_KEY}"}
    assert local_anonymous.post(path, headers=admin).status_code == 200
    # Leave the model ready for the other in-process tests.
    local_anonymous.post("/api/v1/auto-ets/initialization", headers=admin).raise_for_status()


@pytest.mark.parametrize("path", ["/", "/health", "/info", "/models"])
def test_public_routes_show_nothing_internal(anonymous: httpx.Client, path: str) -> None:
    """Over the real Serve instance, where one model has no weights at a local path."""
    response = anonymous.get(path)
    assert response.status_code == 200
    text = response.text
    assert "/nonexistent" not in text and "/tmp" not in text
    assert "sapheneia pull" not in text  # error texts are for callers with a key
    if path == "/models":
        models = response.json()["models"]
        assert models["timesfm-2.5"]["status"] == "unavailable"
        assert set(models["auto-ets"]) == {"id", "name", "version", "description", "status"}


def test_failed_authentication_is_rate_limited_per_client_address(data_dir: Path) -> None:
    from fastapi.testclient import TestClient

    from deployments.api import create_api
    from deployments.options import IngressOptions
    from sapheneia.data import DataLimits
    from sapheneia.keys import digest
    from tests.deployments.local_gateway import LocalGateway

    options = IngressOptions(
        key_digests=[digest(API_KEY)],
        limits=DataLimits(data_dir=data_dir),
        auth_failures_per_minute=3,
    )
    app = create_api(LocalGateway(["seasonal-naive"], options))
    guesser = TestClient(app, client=("203.0.113.7", 5000))
    for _ in range(3):
        assert_error(guesser.get("/api/v2/models", headers={"Authorization": "Bearer x"}), 401)
    response = guesser.get("/api/v2/models", headers={"Authorization": f"Bearer {API_KEY}"})
    assert_error(response, 429, "rate_limited")
    assert 1 <= int(response.headers["retry-after"]) <= 60
    # Another address is not held back by the guesser.
    other = TestClient(app, client=("198.51.100.2", 5000))
    assert other.get("/api/v2/models", headers={"Authorization": f"Bearer {API_KEY}"}).is_success


def test_a_body_without_a_valid_key_is_not_read(anonymous: httpx.Client) -> None:
    """Over the real Serve instance: a chunked 3 MiB body (over the 2 MiB cap, no length given)
    without a key is refused as unauthorized, not as too large: nothing was read."""

    def chunks() -> Iterator[bytes]:
        for _ in range(12):
            yield b" " * (256 * 1024)

    for path in ("/api/v2/forecast", "/api/v1/auto-ets/inference"):
        response = anonymous.post(
            path, content=chunks(), headers={"Content-Type": "application/json"}
        )
        assert_error(response, 401, "unauthorized")
