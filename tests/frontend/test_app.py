"""The ui application's args, and its routes without a sign-in (in process, no Ray)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from pydantic import ValidationError
from starlette.routing import Mount

from frontend.app import UIArgs, UIOptions, create_ui_asgi, resolve_api_base_url, resolve_options


def test_address_from_args_then_environment_then_default() -> None:
    env = {"UI_API_BASE_URL": "http://api.internal:8000/"}
    assert (
        resolve_api_base_url(UIArgs(api_base_url="https://x.example/"), env) == "https://x.example"
    )
    assert resolve_api_base_url(UIArgs(), env) == "http://api.internal:8000"
    assert resolve_api_base_url(UIArgs(), {}) == "http://127.0.0.1:8000"


def test_unknown_args_are_refused() -> None:
    with pytest.raises(ValidationError, match="num_replicas"):
        UIArgs.model_validate({"num_replicas": 2})


def test_uploads_are_capped_like_the_api_unless_args_say_otherwise() -> None:
    assert resolve_options(UIArgs(), {}, api_max_bytes=20 * 2**20).max_upload_bytes == 20 * 2**20
    assert resolve_options(UIArgs(max_upload_bytes=1000), {}, 20 * 2**20).max_upload_bytes == 1000
    with pytest.raises(ValidationError, match="max_upload_bytes"):
        UIArgs(max_upload_bytes=0)


def api_routes(routes: list[Any], prefix: str = "") -> Iterator[tuple[str, str]]:
    """(method, path) of every API route, into included routers (FastAPI includes them lazily)."""
    for route in routes:
        if isinstance(route, APIRoute):
            for method in route.methods:
                yield method, prefix + route.path
        elif hasattr(route, "original_router"):  # FastAPI's _IncludedRouter
            yield from api_routes(
                route.original_router.routes, prefix + route.include_context.prefix
            )


def test_no_route_takes_data_without_sign_in() -> None:
    """Every POST/PUT/DELETE route of the mounted Gradio app, called without the login cookie."""
    app = create_ui_asgi(UIOptions("http://127.0.0.1:9", max_upload_bytes=1000))
    (gradio_app,) = [r.app for r in app.routes if isinstance(r, Mount)]
    answers = {}
    with TestClient(gradio_app) as client:
        for method, route in api_routes(gradio_app.routes):
            if method in {"POST", "PUT", "PATCH", "DELETE"} and route not in ("/login", "/login/"):
                path = re.sub(r"\{[^}]+\}", "x", route)
                answers[(method, path)] = client.request(method, path, json={}).status_code
    assert ("POST", "/gradio_api/upload") in answers
    assert ("POST", "/gradio_api/queue/join") in answers
    assert all(status >= 400 for status in answers.values()), answers
    # Refused for another reason than the missing login, and none of them stores anything:
    # /reset is a no-op in Gradio 6, /cancel needs a page's random session hash, /stream an event
    # of a streaming input (the UI has none), and vibe mode is off.
    assert {k for k, status in answers.items() if status != 401} <= {
        ("POST", "/gradio_api/reset"),
        ("POST", "/gradio_api/reset/"),
        ("POST", "/gradio_api/cancel"),
        ("POST", "/gradio_api/stream/x"),
        ("POST", "/gradio_api/stream/x/close"),
        *((m, p) for m, p in answers if "vibe" in p),
    }
