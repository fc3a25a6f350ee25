"""FastAPI dependencies shared by the routers: the gateway, the caller, the capped body."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from deployments.auth import Caller
from deployments.gateway import Gateway
from sapheneia.errors import PayloadTooLarge

# auto_error=False: a missing key gets our own 401 body, not FastAPI's 403 {"detail": ...}.
bearer = HTTPBearer(auto_error=False, description="API key as 'Authorization: Bearer <key>'.")


def get_gateway(request: Request) -> Gateway:
    gateway: Gateway = request.app.state.gateway
    return gateway


async def gateway_of(request: Request) -> Gateway:
    # async, like every dependency here: FastAPI runs a plain function in a worker thread, two
    # thread hops per request for no I/O at all.
    return get_gateway(request)


GatewayDep = Annotated[Gateway, Depends(gateway_of)]


async def authenticate(
    request: Request,
    _credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Caller:
    """The caller; every protected route depends on this.

    ``bearer`` only declares the scheme in the OpenAPI document; the check is ours so that every
    failure has the one error shape, and it runs in the middleware, before any body is read.
    """
    caller: Caller | None = getattr(request.state, "caller", None)
    if caller is None:  # the middleware checks every non-public path before its body is read
        caller = check_key(request)
    return caller


def check_key(request: Request) -> Caller:
    """The caller of ``request``, checked against the gateway's keys (failures counted per
    client address)."""
    client = request.client.host if request.client else ""
    caller = get_gateway(request).keys.check(request.headers.get("authorization"), client)
    request.state.caller = caller
    return caller


async def count_series(request: Request, gateway: Gateway, series: int) -> None:
    """Charge a parsed request's series to its key: per minute and per day, shared by every ingress
    replica. After parsing, because only then is it known how many series a request holds."""
    caller: Caller = request.state.caller
    await gateway.rate_limits.admit_series(caller.key_digest, series)


async def authenticate_admin(caller: Annotated[Caller, Depends(authenticate)]) -> Caller:
    """The caller, who must hold an admin key (lifecycle routes)."""
    caller.require_admin("changing a model's state")
    return caller


CallerDep = Annotated[Caller, Depends(authenticate)]
AdminDep = Annotated[Caller, Depends(authenticate_admin)]


async def read_body(request: Request, max_bytes: int) -> bytes:
    """The request body, refusing it as soon as it passes ``max_bytes`` (chunked uploads too)."""
    cached: bytes | None = getattr(request, "_body", None)
    if cached is not None:
        return cached
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
