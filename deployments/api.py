"""Builds the FastAPI app of one ingress replica: middleware, error handlers, routers."""

from __future__ import annotations

import re
import uuid
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from fastapi import FastAPI, Request, Response
from fastapi.middleware.cors import CORSMiddleware

from deployments.deps import read_body
from deployments.errors import REQUEST_ID_HEADER, error_response, install_error_handlers
from deployments.routes_backtest import backtest_router
from deployments.routes_discovery import discovery_router
from deployments.routes_v1 import v1_router
from deployments.routes_v2 import v2_router
from sapheneia.errors import PayloadTooLarge

if TYPE_CHECKING:
    from deployments.ingress import Ingress

DESCRIPTION = """Forecasts from time-series foundation models and statistical forecasters.

Send `Authorization: Bearer <key>` on every route except `/`, `/health` and these docs.
`/api/v1/...` keeps the earlier Sapheneia contract; `/api/v2/...` takes many series per request.
"""

_SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


def create_api(gateway: Ingress) -> FastAPI:
    from deployments.ingress import API_VERSION

    app = FastAPI(title="Sapheneia", version=API_VERSION, description=DESCRIPTION)
    app.state.gateway = gateway
    install_error_handlers(app)
    if gateway.options.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=gateway.options.cors_origins,
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type", REQUEST_ID_HEADER],
        )
    max_bytes = gateway.limits.max_bytes

    @app.middleware("http")
    async def request_id_and_size_cap(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        incoming = request.headers.get(REQUEST_ID_HEADER, "")
        request.state.request_id = (
            incoming if _SAFE_REQUEST_ID.match(incoming) else uuid.uuid4().hex
        )
        length = request.headers.get("content-length")
        too_large = (
            f"request body is over the {max_bytes // (1024 * 1024)} MiB limit; send less data "
            "per request or point 'source' at a file in the data directory"
        )
        if length is not None and (not length.isdigit() or int(length) > max_bytes):
            return error_response(request, 413, "payload_too_large", too_large)
        if length is None and request.method == "POST":
            # A chunked body declares no size: read it here under the cap (Starlette replays it
            # to the route), so that no route ever buffers more than the limit.
            try:
                await read_body(request, max_bytes)
            except PayloadTooLarge:
                return error_response(request, 413, "payload_too_large", too_large)
        return await call_next(request)

    app.include_router(discovery_router())
    app.include_router(v1_router())
    app.include_router(v2_router())
    app.include_router(backtest_router())
    return app
