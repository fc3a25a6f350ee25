"""Bearer keys: public routes stay public, everything else needs a valid key, lifecycle routes an
admin key. In process (``local``); the session's Serve instance is checked for the public routes."""

from __future__ import annotations

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
