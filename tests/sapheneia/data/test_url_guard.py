"""The URL guard: every non-global address range refused (IPv6 tunnels and translations that
embed an IPv4 address included), only the configured ports, and one answer for every way a fetch
can fail on the network, so the fetcher cannot map hosts and ports."""

from __future__ import annotations

import dataclasses
import socket
from collections.abc import Iterator

import pytest

from sapheneia.data import DataLimits, load_table
from sapheneia.data.limits import ports
from sapheneia.data.urls import UNREACHABLE, is_public
from sapheneia.errors import SourceForbidden, SourceUnreachable
from sapheneia.settings import Settings
from tests.sapheneia.data.conftest import SAMPLE_CSV, ScriptedServer


@pytest.mark.parametrize(
    "address",
    [
        "64:ff9b::7f00:1",  # NAT64 of 127.0.0.1
        "64:ff9b::808:808",  # NAT64 of a public address: still refused, the range is
        "64:ff9b:1::a00:1",  # local-use NAT64
        "2002:7f00:1::1",  # 6to4 of 127.0.0.1
        "2002:808:808::1",  # 6to4 of 8.8.8.8
        "::7f00:1",  # IPv4-compatible 127.0.0.1
        "::808:808",  # IPv4-compatible 8.8.8.8
        "::",
        "::1",
        "fec0::1",  # site-local
        "2001:0:4136:e378:8000:63bf:3fff:fdd2",  # Teredo
        "2001:db8::1",  # documentation
        "3fff::1",  # documentation
        "100::1",  # discard
        "5f00::1",  # segment routing
        "fd00::1",  # unique local
        "fe80::1%eth0",  # link-local with a zone
        "ff02::1",  # multicast
        "::ffff:10.0.0.1",  # IPv4-mapped private
        "::ffff:169.254.169.254",  # IPv4-mapped cloud metadata
        "169.254.169.254",
        "100.64.0.1",  # carrier-grade NAT
        "192.0.0.1",
        "198.18.0.1",  # benchmarking
        "240.0.0.1",  # reserved
        "224.0.0.1",  # multicast
        "255.255.255.255",
        "0.0.0.0",
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.1",
        "127.0.0.2",
    ],
)
def test_non_global_addresses_are_refused(address: str) -> None:
    assert not is_public(address)


@pytest.mark.parametrize(
    "address",
    ["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111", "2a00:1450:4001:80b::200e", "::ffff:8.8.8.8"],
)
def test_global_addresses_pass(address: str) -> None:
    assert is_public(address)


@pytest.mark.parametrize("url", ["http://[64:ff9b::7f00:1]/x.csv", "http://[2002:7f00:1::1]/x.csv"])
def test_embedded_loopback_urls_are_forbidden(limits: DataLimits, url: str) -> None:
    with pytest.raises(SourceForbidden, match="private, loopback or link-local"):
        load_table(url, limits)


@pytest.mark.parametrize(
    "url", ["http://example.com:22/x.csv", "https://example.com:8443/x.csv", "http://1.2.3.4:6379/"]
)
def test_ports_other_than_80_and_443_are_forbidden(limits: DataLimits, url: str) -> None:
    with pytest.raises(
        SourceForbidden, match=r"port \d+ is not one the server fetches from \(80, 443\)"
    ):
        load_table(url, limits)


def test_a_redirect_to_another_port_is_forbidden(
    scripted: ScriptedServer, limits: DataLimits
) -> None:
    def redirect(handler: object) -> None:
        handler.send_response(302)  # type: ignore[attr-defined]
        handler.send_header("Location", "http://127.0.0.1:25/x.csv")  # type: ignore[attr-defined]
        handler.end_headers()  # type: ignore[attr-defined]

    scripted.answers["/x.csv"] = redirect
    port = int(scripted.url.rsplit(":", 1)[1])
    allowed = dataclasses.replace(limits, allow_private_urls=True, url_ports=(port,))
    with pytest.raises(SourceForbidden, match=rf"port 25 is not one .*\({port}\)"):
        load_table(f"{scripted.url}/x.csv", allowed)


def test_configured_ports_are_allowed(scripted: ScriptedServer, limits: DataLimits) -> None:
    body = SAMPLE_CSV.encode()
    head = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body)
    scripted.answers["/x.csv"] = lambda handler: handler.wfile.write(head + body)
    port = int(scripted.url.rsplit(":", 1)[1])
    allowed = dataclasses.replace(limits, allow_private_urls=True, url_ports=(port,))
    assert len(load_table(f"{scripted.url}/x.csv", allowed)) == 4


def test_port_setting(monkeypatch: pytest.MonkeyPatch, tmp_path: object) -> None:
    assert ports("80,443") == (80, 443) and ports(" 8080 ") == (8080,) and ports("*") is None
    monkeypatch.setenv("SAPHENEIA_URL_PORTS", "443")
    assert DataLimits.from_settings(Settings(data_dir=tmp_path)).url_ports == (443,)  # type: ignore[arg-type]
    monkeypatch.setenv("SAPHENEIA_URL_PORTS", "http")
    with pytest.raises(ValueError, match="url ports"):
        Settings()


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts connections (the kernel does) and never answers: a filtered host."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        yield int(listener.getsockname()[1])


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])  # closed again when the probe is


def test_unreachable_closed_silent_and_unresolvable_get_one_answer(
    limits: DataLimits, silent_port: int
) -> None:
    quick = dataclasses.replace(limits, allow_private_urls=True, url_ports=None, timeout_s=0.5)
    answers = set()
    for url in (
        f"http://127.0.0.1:{closed_port()}/x.csv",  # closed: refused at once
        f"http://127.0.0.1:{silent_port}/x.csv",  # silent: times out
        "http://no-such-host.invalid/x.csv",  # does not resolve
    ):
        with pytest.raises(SourceUnreachable) as error:
            load_table(url, quick)
        answers.add((error.value.status, error.value.code, error.value.message))
    assert answers == {(422, "source_unreachable", UNREACHABLE)}
