"""Builds the FastAPI app of one ingress replica: middleware, error handlers, routers."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.middleware.cors import CORSMiddleware
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel

from deployments.audit import AuditLog
from deployments.deps import check_key, read_body
from deployments.errors import (
    REQUEST_ID_HEADER,
    echoed_request_id,
    install_error_handlers,
    sapheneia_error_response,
    server_error_response,
)
from deployments.gateway import Gateway
from deployments.metrics import RequestMetrics
from deployments.routes_anomalies import anomalies_router
from deployments.routes_backtest import backtest_router
from deployments.routes_discovery import discovery_router
from deployments.routes_jobs import JobRequest, jobs_router
from deployments.routes_v1 import v1_router
from deployments.routes_v2 import v2_router
from deployments.schemas import AnomaliesRequest, BacktestRequest, ForecastRequest
from sapheneia import __version__
from sapheneia.errors import PayloadTooLarge, SapheneiaError

DESCRIPTION = """Forecasts from time-series foundation models and statistical forecasters.

Send `Authorization: Bearer <key>` on every route except `/`, `/health` and these docs.
`/api/v1/...` keeps the earlier Sapheneia contract; `/api/v2/...` takes many series per request.
"""

_SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
# Answer without a key; every other path checks the key before its body is read.
PUBLIC_PATHS = frozenset(
    {
        "/",
        "/health",
        "/info",
        "/models",
        "/docs",
        "/docs/oauth2-redirect",
        "/redoc",
        "/openapi.json",
    }
)


def is_public(request: Request) -> bool:
    path = request.url.path
    root = request.scope.get("root_path", "")
    if root and path.startswith(root):
        path = path[len(root) :] or "/"
    return path in PUBLIC_PATHS


def create_api(gateway: Gateway) -> FastAPI:
    app = FastAPI(title="Sapheneia", version=__version__, description=DESCRIPTION)
    app.state.gateway = gateway
    install_error_handlers(app)
    max_bytes = gateway.limits.max_bytes

    audit = AuditLog(gateway.options.audit_log)
    requests = RequestMetrics()

    @app.middleware("http")
    async def audited(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        started = time.perf_counter()
        response = await request_id_and_size_cap(request, call_next)
        audit.record(request, response.status_code, started)
        requests.record(request, response.status_code)
        return response

    async def request_id_and_size_cap(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        incoming = request.headers.get(REQUEST_ID_HEADER, "")
        # The caller's id is for logs and the response only; nothing is grouped by it.
        request.state.request_id = (
            incoming if _SAFE_REQUEST_ID.match(incoming) else uuid.uuid4().hex
        )
        length = request.headers.get("content-length")
        too_large = (
            f"request body is over the {max_bytes // (1024 * 1024)} MiB limit; send less data "
            "per request or point 'source' at a file in the data directory"
        )
        if not is_public(request):
            # Before anything is read or parsed: a large body without a valid key costs nothing.
            try:
                caller = check_key(request)
                window = await gateway.rate_limits.admit_request(caller.key_digest)
            except SapheneiaError as error:
                return sapheneia_error_response(request, error)
            rate_headers = window.headers() if window is not None else {}
        else:
            rate_headers = {}
        if length is not None and (not length.isdigit() or int(length) > max_bytes):
            return sapheneia_error_response(request, PayloadTooLarge(too_large))
        try:
            if length is None and request.method == "POST":
                # A chunked body declares no size: read it here under the cap (Starlette replays
                # it to the route), so that no route ever buffers more than the limit.
                await read_body(request, max_bytes)
            response = await call_next(request)
        except PayloadTooLarge:
            return sapheneia_error_response(request, PayloadTooLarge(too_large))
        except Exception:
            # Answered here, inside the CORS middleware, so a 500 carries CORS headers too.
            return server_error_response(request)
        response.headers.update(echoed_request_id(request))
        # Every answer tells the caller where it stands, so a client can slow down before a 429.
        for name, value in rate_headers.items():
            response.headers.setdefault(name, value)
        return response

    if gateway.options.cors_origins:
        # Added last, so it wraps every other middleware: error answers get CORS headers too.
        app.add_middleware(
            CORSMiddleware,
            allow_origins=gateway.options.cors_origins,
            allow_methods=["GET", "POST", "DELETE"],
            allow_headers=["Authorization", "Content-Type", REQUEST_ID_HEADER],
        )

    app.include_router(discovery_router())
    app.include_router(v1_router())
    app.include_router(v2_router())
    app.include_router(backtest_router())
    app.include_router(anomalies_router())
    app.include_router(jobs_router())
    document_bodies(app, [ForecastRequest, BacktestRequest, AnomaliesRequest, JobRequest])
    return app


def document_bodies(app: FastAPI, models: list[type[BaseModel]]) -> None:
    """Put the request models that routes parse themselves (JSON, multipart or a table body, so
    FastAPI never sees them as parameters) in the document's components, where the routes'
    request bodies refer to them."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
            )
            components = document.setdefault("components", {}).setdefault("schemas", {})
            for model in models:
                schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
                for name, nested in schema.pop("$defs", {}).items():
                    components.setdefault(name, nested)
                components[model.__name__] = schema
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
