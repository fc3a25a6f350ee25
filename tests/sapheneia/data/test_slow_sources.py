"""URL fetches end by one wall-clock deadline, however slowly a server dribbles its answer."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler

import pytest

from sapheneia.data import DataLimits, load_table
from sapheneia.errors import SourceUnreachable
from tests.sapheneia.data.conftest import SAMPLE_CSV, ScriptedServer

TIMEOUT_S = 1.0


def trickle(head: bytes, body: bytes, pause_s: float) -> Callable[[BaseHTTPRequestHandler], None]:
    """Sends ``head`` then ``body`` a byte at a time, ``pause_s`` apart (well inside httpx's
    per-read timeout, so only a deadline over the whole fetch can stop it)."""

    def send(handler: BaseHTTPRequestHandler) -> None:
        try:
            for byte in head + body:
                handler.wfile.write(bytes([byte]))
                handler.wfile.flush()
                time.sleep(pause_s)
        except OSError:  # the client hung up, as it should
            pass

    return send


def timed_fetch(url: str, limits: DataLimits) -> float:
    started = time.monotonic()
    with pytest.raises(SourceUnreachable, match="could not be fetched") as error:
        load_table(
            url,
            dataclasses.replace(
                limits, allow_private_urls=True, timeout_s=TIMEOUT_S, url_ports=None
            ),
        )
    assert error.value.code == "source_unreachable"
    return time.monotonic() - started


def test_header_bytes_trickled_one_at_a_time_are_cut_at_the_deadline(
    scripted: ScriptedServer, limits: DataLimits
) -> None:
    head = b"HTTP/1.1 200 OK\r\nContent-Type: text/csv\r\nX-Padding: " + b"a" * 200 + b"\r\n\r\n"
    scripted.answers["/x.csv"] = trickle(head, b"", pause_s=0.2)
    elapsed = timed_fetch(f"{scripted.url}/x.csv", limits)
    assert TIMEOUT_S - 0.05 < elapsed < TIMEOUT_S + 0.75


def test_body_trickled_after_prompt_headers_is_cut_at_the_deadline(
    scripted: ScriptedServer, limits: DataLimits
) -> None:
    head = b"HTTP/1.1 200 OK\r\nContent-Type: text/csv\r\nContent-Length: 1000\r\n\r\n"

    def send(handler: BaseHTTPRequestHandler) -> None:
        handler.wfile.write(head)
        trickle(b"", (SAMPLE_CSV * 20).encode()[:1000], pause_s=0.2)(handler)

    scripted.answers["/x.csv"] = send
    elapsed = timed_fetch(f"{scripted.url}/x.csv", limits)
    assert elapsed < TIMEOUT_S + 0.75


def test_a_prompt_answer_is_read(scripted: ScriptedServer, limits: DataLimits) -> None:
    body = SAMPLE_CSV.encode()
    head = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body)
    scripted.answers["/x.csv"] = lambda handler: handler.wfile.write(head + body)
    frame = load_table(
        f"{scripted.url}/x.csv",
        dataclasses.replace(limits, allow_private_urls=True, url_ports=None),
    )
    assert len(frame) == 4
