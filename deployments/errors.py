"""The one error body, ``{"error": {"code", "message", "request_id"}}``, mapped in one place."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from sapheneia.errors import (
    InvalidInput,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    SapheneiaError,
)

logger = logging.getLogger("ray.serve")

# Ray Serve's proxy gives every request an id (the caller's X-Request-ID if sent), passes it to the
# app in this header and returns it in the response header; the error body repeats it.
REQUEST_ID_HEADER = "X-Request-ID"

# The classes of errors the HTTP framework itself answers (routing, form parsing), by status; like
# every other code a caller can see, theirs are in sapheneia/errors.py, and in the README's table.
HTTP_ERRORS: dict[int, type[SapheneiaError]] = {
    400: InvalidInput,
    404: NotFound,
    405: MethodNotAllowed,
    413: PayloadTooLarge,
}


def request_id(request: Request) -> str:
    rid = getattr(request.state, "request_id", None)
    if rid is None:
        rid = uuid.uuid4().hex
        request.state.request_id = rid
    return str(rid)


def error_response(
    request: Request, status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    rid = request_id(request)
    request.state.error_code = code  # for the ingress' request counter
    return JSONResponse(
        status_code=status,
        content={"error": {"code": code, "message": message, "request_id": rid}},
        headers={**(headers or {}), **echoed_request_id(request)},
    )


def echoed_request_id(request: Request) -> dict[str, str]:
    """The request id header for the response, unless Ray Serve's proxy adds it itself.

    The proxy always forwards an ``X-Request-ID`` to the app and puts the same id on the response;
    a second copy would make the header a list. Without the proxy (in-process) nobody else does.
    """
    if REQUEST_ID_HEADER in request.headers:
        return {}
    return {REQUEST_ID_HEADER: request_id(request)}


def validation_message(problems: Sequence[Mapping[str, Any]]) -> str:
    """Pydantic's errors as one line: where, and what is wrong (the first five)."""
    parts = []
    for item in problems[:5]:
        location = ".".join(str(p) for p in item.get("loc", ()) if p != "body")
        parts.append(f"{location or 'body'}: {item.get('msg', 'invalid')}")
    return "invalid request: " + "; ".join(parts)


def invalid_input(problems: Sequence[Mapping[str, Any]]) -> InvalidInput:
    """The one mapping of a body that fails validation, for every route: 400 ``invalid_input``.

    400 because the request itself is malformed; 422 is kept for well-formed data that cannot be
    forecast as sent (``data_error`` and its kin).
    """
    return InvalidInput(validation_message(problems))


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(SapheneiaError)
    async def sapheneia_error(request: Request, error: SapheneiaError) -> JSONResponse:
        return sapheneia_error_response(request, error)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, error: RequestValidationError) -> JSONResponse:
        return sapheneia_error_response(request, invalid_input(error.errors()))

    @app.exception_handler(Exception)
    async def server_error(request: Request, error: Exception) -> JSONResponse:
        return server_error_response(request)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException) -> JSONResponse:
        status = error.status_code
        fallback = InvalidInput if status < 500 else SapheneiaError
        code = HTTP_ERRORS.get(status, fallback).code
        return error_response(request, status, code, str(error.detail))


def sapheneia_error_response(request: Request, error: SapheneiaError) -> JSONResponse:
    headers: dict[str, str] = dict(error.headers or {})
    if error.status == 401:
        headers["WWW-Authenticate"] = "Bearer"
    if error.retry_after_s is not None:
        headers["Retry-After"] = str(error.retry_after_s)
    return error_response(request, error.status, error.code, error.message, headers or None)


def server_error_response(request: Request) -> JSONResponse:
    """A 500 in the error shape. The body never carries the exception text: it may hold paths or
    data. Logged with the traceback under the request id the caller can quote."""
    logger.exception("unhandled error in request %s", request_id(request))
    return error_response(
        request,
        SapheneiaError.status,
        SapheneiaError.code,
        "internal error; quote the request id to the operator",
    )
