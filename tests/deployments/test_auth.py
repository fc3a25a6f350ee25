"""Bearer keys over HTTP: public routes stay public, everything else needs a valid key."""

from __future__ import annotations

import httpx
import pytest

from tests.deployments.conftest import OTHER_KEY, assert_error

PROTECTED = [
    ("GET", "/info"),
    ("GET", "/models"),
    ("GET", "/api/v2/models"),
    ("GET", "/api/v1/auto-ets/status"),
    ("POST", "/api/v1/auto-ets/inference"),
    ("POST", "/api/v2/forecast"),
]


@pytest.mark.parametrize(("method", "path"), PROTECTED)
def test_no_key_is_refused(anonymous: httpx.Client, method: str, path: str) -> None:
    error = assert_error(anonymous.request(method, path), 401, "unauthorized")
    assert "Authorization: Bearer" in error["message"]


@pytest.mark.parametrize(("method", "path"), PROTECTED)
def test_wrong_key_is_refused(anonymous: httpx.Client, method: str, path: str) -> None:
    response = anonymous.request(method, path, headers={"Authorization": "Bearer nope"})
    assert assert_error(response, 401, "unauthorized")["message"] == "invalid API key"


def test_malformed_header_is_refused(anonymous: httpx.Client) -> None:
    response = anonymous.get("/info", headers={"Authorization": "Basic dXNlcjpwYXNz"})
    assert "malformed" in assert_error(response, 401)["message"]


@pytest.mark.parametrize("path", ["/", "/health", "/docs", "/openapi.json"])
def test_public_routes_need_no_key(anonymous: httpx.Client, path: str) -> None:
    assert anonymous.get(path).status_code == 200


def test_every_configured_key_works(anonymous: httpx.Client) -> None:
    response = anonymous.get("/info", headers={"Authorization": f"Bearer {OTHER_KEY}"})
    assert response.status_code == 200
    assert "auto-ets" in response.json()["available_models"]


def test_openapi_lists_both_surfaces(anonymous: httpx.Client) -> None:
    paths = anonymous.get("/openapi.json").json()["paths"]
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
