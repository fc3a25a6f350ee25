"""FastAPI dependencies shared by the routers: the gateway and the caller's key."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from sapheneia.errors import PayloadTooLarge

if TYPE_CHECKING:
    from deployments.ingress import Ingress

# auto_error=False: a missing key gets our own 401 body, not FastAPI's 403 {"detail": ...}.
bearer = HTTPBearer(auto_error=False, description="API key as 'Authorization: Bearer <key>'.")


def get_gateway(request: Request) -> Ingress:
    gateway: Ingress = request.app.state.gateway
    return gateway


Gateway = Annotated["Ingress", Depends(get_gateway)]


def require_key(
    request: Request,
    _credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> str:
    """The caller's key digest; every protected route depends on this.

    ``bearer`` only declares the scheme in the OpenAPI document; the check is ours so that every
    failure has the one error shape.
    """
    caller = get_gateway(request).keys.check(request.headers.get("authorization"))
    request.state.caller = caller
    return caller


Caller = Annotated[str, Depends(require_key)]


async def read_body(request: Request, max_bytes: int) -> bytes:
    """The request body, refusing it as soon as it passes ``max_bytes`` (chunked uploads too)."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:
            raise PayloadTooLarge(
                f"request body is over the {max_bytes // (1024 * 1024)} MiB limit; send less data"
            )
        chunks.append(chunk)
    body = b"".join(chunks)
    # Starlette replays a cached ``_body`` to later readers (``request.form()``); the stream itself
    # can be read only once.
    request._body = body
    return body
