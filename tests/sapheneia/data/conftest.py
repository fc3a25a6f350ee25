"""Fixtures for the data contract: a data directory per test and a loopback HTTP server."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from functools import partial
from http.server import BaseHTTPRequestHandler, SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from sapheneia.data import DataLimits

# The same table as test_load_table.SAMPLE_CSV, which compares against it.
SAMPLE_CSV = (
    "date,price,volume\n2024-01-01,10,1\n2024-02-01,11,2\n2024-03-01,12,3\n2024-04-01,13,4\n"
)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    root = tmp_path / "data"
    (root / "uploads").mkdir(parents=True)
    (root / "uploads" / "sample.csv").write_text(SAMPLE_CSV)
    (root / "nested").mkdir()
    (root / "nested" / "sample.csv").write_text(SAMPLE_CSV)
    return root


@pytest.fixture
def limits(data_dir: Path) -> DataLimits:
    return DataLimits(data_dir=data_dir)


class _Handler(SimpleHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path.startswith("/redirect/"):
            self.send_response(302)
            self.send_header("Location", self.path.removeprefix("/redirect"))
            self.end_headers()
            return
        if self.path.startswith("/slow"):
            time.sleep(1.5)
        if self.path.startswith("/away"):  # redirect to another loopback address
            self.send_response(302)
            port = self.server.server_address[1]  # type: ignore[index]
            self.send_header("Location", f"http://127.0.0.2:{port}/x.csv")
            self.end_headers()
            return
        super().do_GET()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def http_root(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """``(base URL, served folder)`` of an http.server thread on 127.0.0.1."""
    root = tmp_path_factory.mktemp("served")
    (root / "x.csv").write_text(SAMPLE_CSV)
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(_Handler, directory=str(root)))
    server.daemon_threads = True  # don't wait for a deliberately slow answer at teardown
    server.block_on_close = False
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", root
    server.shutdown()
    server.server_close()


Answer = Callable[[BaseHTTPRequestHandler], None]


class _Scripted(BaseHTTPRequestHandler):
    """Answers each path with the function registered for it, and records request headers."""

    def do_GET(self) -> None:
        server: ScriptedServer = self.server  # type: ignore[assignment]
        server.seen.append(dict(self.headers))
        server.answers[self.path](self)

    def log_message(self, *args: object) -> None:
        pass


class ScriptedServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Scripted)
        self.answers: dict[str, Answer] = {}
        self.seen: list[dict[str, str]] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


@pytest.fixture
def scripted() -> Iterator[ScriptedServer]:
    """A loopback HTTP server whose answers a test writes: ``server.answers[path] = fn``."""
    server = ScriptedServer()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
