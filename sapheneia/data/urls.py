"""HTTP(S) downloads: size-capped, time-limited, and refused for non-public addresses.

The address check runs inside the connection itself (a guarded httpcore network backend), so it
covers every redirect hop and cannot be dodged by a DNS answer that changes between a check and
the connection: the socket connects to the very address that was checked.
"""

from __future__ import annotations

import ipaddress
import socket
import time
from collections.abc import Iterable, Iterator
from pathlib import PurePosixPath
from typing import Any

import httpcore
import httpx

from sapheneia.data.decoding import decoded, encodings, too_large
from sapheneia.errors import InvalidInput, PayloadTooLarge, SourceForbidden, SourceUnreachable

MAX_REDIRECTS = 5
IDENTITY = {"Accept-Encoding": "identity"}


def is_public(address: str) -> bool:
    """True for globally routable unicast addresses (not private, loopback, link-local, ...)."""
    ip = ipaddress.ip_address(address.split("%")[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def checked_address(host: str, port: int, allow_private: bool) -> str:
    """Resolve ``host`` and return an address to connect to; every address must be public."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise SourceUnreachable(f"the host '{host}' could not be resolved; check the URL") from exc
    addresses = [str(info[4][0]) for info in infos]
    if not allow_private:
        refused = [address for address in addresses if not is_public(address)]
        if refused:
            raise SourceForbidden(
                f"the host '{host}' resolves to a private, loopback or link-local address, which "
                "the server does not fetch from; use a public URL or upload the file"
            )
    return addresses[0]


class GuardedBackend(httpcore.SyncBackend):
    """Connects only to addresses that pass ``checked_address``."""

    def __init__(self, allow_private: bool) -> None:
        self.allow_private = allow_private

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        address = checked_address(host, port, self.allow_private)
        # TLS still verifies the certificate against the URL's host name, not this address.
        return super().connect_tcp(address, port, timeout, local_address, socket_options)


def guarded_transport(allow_private: bool) -> httpx.HTTPTransport:
    transport = httpx.HTTPTransport(retries=0)
    # httpx exposes no resolver hook; its connection pool's network backend is the one place
    # every connection (redirects included) goes through.
    transport._pool._network_backend = GuardedBackend(allow_private)
    return transport


def fetch_url(
    url: str, max_bytes: int, timeout_s: float, allow_private: bool
) -> tuple[bytes, str, str]:
    """Download ``url``: ``(content, file name from the final URL, content type)``."""
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL as exc:
        raise InvalidInput(f"the URL is not valid ({exc}); send http(s)://host/path") from exc
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise InvalidInput("the URL must be http(s)://host/path")
    deadline = time.monotonic() + timeout_s
    client = httpx.Client(
        transport=guarded_transport(allow_private),
        timeout=timeout_s,
        follow_redirects=True,
        max_redirects=MAX_REDIRECTS,
        trust_env=False,  # an environment proxy would make the address check meaningless
    )
    try:
        # identity: a compressed answer is one the server did not ask for (and is decoded capped).
        with client, client.stream("GET", parsed, headers=IDENTITY) as response:
            if response.status_code >= 400:
                raise SourceUnreachable(
                    f"the URL answered HTTP {response.status_code}; check that it is right and public"
                )
            declared = response.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > max_bytes:
                raise PayloadTooLarge(too_large("the download", max_bytes))
            applied = encodings(response.headers.get("content-encoding", ""))
            # Raw bytes, decoded here under the cap: httpx would inflate each chunk whole.
            raw = _received(response.iter_raw(), deadline, max_bytes)
            content = decoded(raw, applied, max_bytes)
            name = PurePosixPath(response.url.path).name
            return content, name, response.headers.get("content-type", "")
    except httpx.TimeoutException as exc:
        raise SourceUnreachable(
            f"the URL did not answer within {timeout_s:g} s; retry, or upload the file"
        ) from exc
    except httpx.TooManyRedirects as exc:
        raise SourceUnreachable(f"the URL redirected more than {MAX_REDIRECTS} times") from exc
    except httpx.HTTPError as exc:
        raise SourceUnreachable(
            f"the URL could not be fetched ({type(exc).__name__}); check it, or upload the file"
        ) from exc


def _received(chunks: Iterator[bytes], deadline: float, max_bytes: int) -> Iterator[bytes]:
    """The body as it arrives, stopped past the deadline or ``max_bytes`` (before decoding)."""
    size = 0
    for chunk in chunks:
        size += len(chunk)
        if size > max_bytes:
            raise PayloadTooLarge(too_large("the download", max_bytes))
        if time.monotonic() > deadline:
            raise httpx.ReadTimeout("download took too long")
        yield chunk
