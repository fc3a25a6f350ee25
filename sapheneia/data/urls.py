"""HTTP(S) downloads: size-capped, time-limited, and refused for non-public addresses.

The address check runs inside the connection itself (a guarded httpcore network backend), so it
covers every redirect hop and cannot be dodged by a DNS answer that changes between a check and
the connection: the socket connects to the very address that was checked.
"""

from __future__ import annotations

import ipaddress
import socket
import ssl
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from pathlib import PurePosixPath
from typing import Any

import httpcore
import httpx

from sapheneia.data.decoding import decoded, encodings, too_large
from sapheneia.data.limits import DataLimits
from sapheneia.errors import InvalidInput, PayloadTooLarge, SourceForbidden, SourceUnreachable

MAX_REDIRECTS = 5
IDENTITY = {"Accept-Encoding": "identity"}


# IPv6 ranges refused outright, beyond what ``is_global`` knows in every Python version: those
# that tunnel or translate to an embedded IPv4 address (which may be private), and the rest of
# the special-purpose registry.
REFUSED_V6 = tuple(
    ipaddress.IPv6Network(network)
    for network in (
        "::/96",  # IPv4-compatible (deprecated); :: and ::1 included
        "64:ff9b::/96",  # NAT64: reaches the IPv4 address in its last 32 bits
        "64:ff9b:1::/48",  # local-use NAT64
        "100::/64",  # discard-only
        "2001::/23",  # IETF protocol assignments, Teredo (2001::/32) included
        "2001:db8::/32",  # documentation
        "2002::/16",  # 6to4: reaches the IPv4 address in bits 16-48
        "3fff::/20",  # documentation
        "5f00::/16",  # segment routing
        "fc00::/7",  # unique local
        "fe80::/10",  # link-local
        "fec0::/10",  # site-local (deprecated, still routed inside some sites)
        "ff00::/8",  # multicast
    )
)
UNREACHABLE = (
    "the URL could not be fetched (no answer in time, or no connection); check that it is "
    "right and public, or upload the file"
)


def is_public(address: str) -> bool:
    """True for globally routable unicast addresses (not private, loopback, link-local, ...)."""
    ip = ipaddress.ip_address(address.split("%")[0])
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        elif any(ip in network for network in REFUSED_V6):
            return False
    return ip.is_global and not ip.is_multicast


def check_port(port: int, allowed: tuple[int, ...] | None) -> None:
    """Only the configured ports: a URL must not reach a mail, database or admin port."""
    if allowed is not None and port not in allowed:
        listed = ", ".join(map(str, allowed))
        raise SourceForbidden(
            f"the URL's port {port} is not one the server fetches from ({listed}); use a URL on "
            "one of those ports or upload the file, or ask the operator to set SAPHENEIA_URL_PORTS"
        )


def resolved(host: str, port: int, timeout: float) -> list[Any]:
    """getaddrinfo within ``timeout``: the system resolver has no timeout of its own to pass."""
    pool = ThreadPoolExecutor(max_workers=1)
    answer = pool.submit(socket.getaddrinfo, host, port, type=socket.SOCK_STREAM)
    pool.shutdown(wait=False)  # a stuck lookup ends on its own; the fetch does not wait for it
    try:
        return answer.result(timeout)
    except FutureTimeout as exc:
        raise httpcore.ConnectTimeout("the host name did not resolve in time") from exc


def checked_address(host: str, port: int, allow_private: bool, timeout: float = 10.0) -> str:
    """Resolve ``host`` and return an address to connect to; every address must be public."""
    try:
        infos = resolved(host, port, timeout)
    except (socket.gaierror, UnicodeError) as exc:
        # The same answer as for a closed or silent port: no map of which names exist.
        raise SourceUnreachable(UNREACHABLE) from exc
    addresses = [str(info[4][0]) for info in infos]
    if not allow_private:
        refused = [address for address in addresses if not is_public(address)]
        if refused:
            raise SourceForbidden(
                f"the host '{host}' resolves to a private, loopback or link-local address, which "
                "the server does not fetch from; use a public URL or upload the file"
            )
    return addresses[0]


class DeadlineStream(httpcore.NetworkStream):
    """A connection whose every read and write ends by one wall-clock deadline.

    httpx's timeouts restart on each socket operation, so a server that sends a header byte a
    second would never time out; here each operation gets only the time left of the whole fetch.
    """

    def __init__(self, stream: httpcore.NetworkStream, deadline: float) -> None:
        self.stream = stream
        self.deadline = deadline

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self.stream.read(max_bytes, time_left(self.deadline, timeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self.stream.write(buffer, time_left(self.deadline, timeout))

    def close(self) -> None:
        self.stream.close()

    def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        secured = self.stream.start_tls(
            ssl_context, server_hostname, time_left(self.deadline, timeout)
        )
        return DeadlineStream(secured, self.deadline)

    def get_extra_info(self, info: str) -> Any:
        return self.stream.get_extra_info(info)


def time_left(deadline: float, timeout: float | None) -> float:
    """Seconds an operation may take: its own timeout, cut to what is left of the deadline."""
    left = deadline - time.monotonic()
    if left <= 0:
        raise httpcore.ReadTimeout("the fetch ran past its deadline")
    return left if timeout is None else min(timeout, left)


class GuardedBackend(httpcore.SyncBackend):
    """Connects only to addresses that pass ``checked_address``, and only until ``deadline``."""

    def __init__(self, limits: DataLimits, deadline: float) -> None:
        self.limits = limits
        self.deadline = deadline

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        check_port(port, self.limits.url_ports)  # every redirect hop, not only the first URL
        address = checked_address(
            host, port, self.limits.allow_private_urls, time_left(self.deadline, timeout)
        )
        # TLS still verifies the certificate against the URL's host name, not this address.
        stream = super().connect_tcp(
            address, port, time_left(self.deadline, timeout), local_address, socket_options
        )
        return DeadlineStream(stream, self.deadline)


def guarded_transport(limits: DataLimits, deadline: float) -> httpx.HTTPTransport:
    transport = httpx.HTTPTransport(retries=0)
    # httpx exposes no resolver hook; its connection pool's network backend is the one place
    # every connection (redirects included) goes through.
    transport._pool._network_backend = GuardedBackend(limits, deadline)
    return transport


def fetch_url(url: str, limits: DataLimits) -> tuple[bytes, str, str]:
    """Download ``url``: ``(content, file name from the final URL, content type)``.

    Unresolvable hosts, refused, silent and slow connections all get the one ``UNREACHABLE``
    answer, so the fetcher cannot be used to map which hosts and ports exist.
    """
    max_bytes, timeout_s = limits.max_bytes, limits.timeout_s
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL as exc:
        raise InvalidInput(f"the URL is not valid ({exc}); send http(s)://host/path") from exc
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise InvalidInput("the URL must be http(s)://host/path")
    check_port(parsed.port or (443 if parsed.scheme == "https" else 80), limits.url_ports)
    deadline = time.monotonic() + timeout_s
    client = httpx.Client(
        transport=guarded_transport(limits, deadline),
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
    except httpx.TooManyRedirects as exc:
        raise SourceUnreachable(f"the URL redirected more than {MAX_REDIRECTS} times") from exc
    except httpx.HTTPError as exc:  # timeouts, refused and reset connections alike
        raise SourceUnreachable(UNREACHABLE) from exc


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
