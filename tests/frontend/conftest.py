"""The real service for the browser tests: the API app and the UI app on one Ray Serve instance.

The UI reaches the API through a recording pass-through in this process, so that tests can assert
on what the UI sent (and that it sent nothing without a key). If the deployments tests already
started Ray in this session, their instance is reused: one Ray per test session. The UI replica
keeps its uploads in a folder of this session (GRADIO_TEMP_DIR), so tests can see what it stored.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

API_KEY = "ui-test-key-0123456789"
OUTPUT_DIR = Path(__file__).resolve().parents[2] / "test-output" / "frontend"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
UPLOAD_CAP = 64 * 1024  # the UI's upload cap here: small, so that a test can pass it cheaply
MODELS = ("auto-ets", "seasonal-naive")  # statistical: no weights, quick on two cores
API_ARGS = {
    "models_dir": "configs/models",
    "ingress": {"ray_actor_options": {"num_cpus": 0.05}},
    "models": [
        *({"id": m, "ray_actor_options": {"num_cpus": 0.05}} for m in MODELS),
        # No weights here: the UI must list it as unavailable, with the reason.
        {
            "id": "timesfm-2.5",
            "checkpoint": "/nonexistent/timesfm-2.5",
            "ray_actor_options": {"num_cpus": 0.05},
        },
    ],
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Recorder:
    """A pass-through to the API that remembers (method, path, Authorization) of every call."""

    target: str
    calls: list[tuple[str, str, str | None]] = field(default_factory=list)

    def serve(self) -> ThreadingHTTPServer:
        recorder = self

        class Forward(BaseHTTPRequestHandler):
            def _forward(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                recorder.calls.append((self.command, self.path, self.headers.get("authorization")))
                headers = {k: v for k, v in self.headers.items() if k.lower() != "host"}
                answer = httpx.request(
                    self.command, recorder.target + self.path, headers=headers, content=body,
                    timeout=300,
                )  # fmt: skip
                self.send_response(answer.status_code)
                for key, value in answer.headers.items():
                    if key.lower() not in {"content-length", "transfer-encoding", "connection"}:
                        self.send_header(key, value)
                self.send_header("content-length", str(len(answer.content)))
                self.end_headers()
                self.wfile.write(answer.content)

            do_GET = do_POST = do_DELETE = _forward

            def log_message(self, *_: object) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Forward)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return server


@dataclass(frozen=True)
class Service:
    ui_url: str
    api_url: str
    key: str
    recorder: Recorder
    upload_dir: Path  # the UI replica's GRADIO_TEMP_DIR
    data_dir: Path  # the API's data directory: where a job's source path is read

    def stored_files(self) -> set[Path]:
        return {p for p in self.upload_dir.rglob("*") if p.is_file()}


def wait_for(check: object, what: str, timeout_s: float = 240) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if check():  # type: ignore[operator]
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise TimeoutError(f"{what} did not come up")


@pytest.fixture(scope="session")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    import ray
    from ray import serve
    from ray.serve.context import _get_global_client

    from deployments.builder import build_app_with_settings
    from frontend.app import build_ui_app
    from sapheneia.settings import Settings

    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"  # keep Ray on loopback
    started = not ray.is_initialized()
    if started:
        port = free_port()
        ray.init(
            address="local",  # a new instance, even if another was started on this machine
            _node_ip_address="127.0.0.1",
            num_cpus=4,
            include_dashboard=False,
            configure_logging=False,
            runtime_env={"env_vars": {"HF_HUB_OFFLINE": "1"}},
        )
        serve.start(http_options={"host": "127.0.0.1", "port": port})
    else:  # the deployments tests' instance
        client = _get_global_client()
        if client is None:
            raise RuntimeError("Ray is up but Serve is not: start Serve before the UI tests")
        port = client.http_config.port
    prefix = "/" if started else "/ui-tests-api"
    data_dir = tmp_path_factory.mktemp("ui-data")
    settings = Settings(
        api_keys=API_KEY,
        data_dir=data_dir,
        state_dir=tmp_path_factory.mktemp("ui-state"),
        rate_limit_per_minute=100_000,
        # Jobs: their own location (one job board per location, apart from any other tests'),
        # one job at a time on one actor, within the CPUs this Ray instance has.
        jobs_uri=str(tmp_path_factory.mktemp("ui-jobs")),
        jobs_concurrent=1,
        jobs_actors=1,
        jobs_actor_cpus=0.25,
        jobs_cpus=1.0,
    )
    serve.run(build_app_with_settings(API_ARGS, settings), name="ui-tests-api", route_prefix=prefix)
    api_url = f"http://127.0.0.1:{port}{prefix.rstrip('/')}"
    recorder = Recorder(api_url)
    proxy = recorder.serve()
    upload_dir = tmp_path_factory.mktemp("ui-uploads")
    ui_args = {
        "api_base_url": f"http://127.0.0.1:{proxy.server_address[1]}",
        "max_upload_bytes": UPLOAD_CAP,
        "ray_actor_options": {
            "num_cpus": 0.05,
            "runtime_env": {"env_vars": {"GRADIO_TEMP_DIR": str(upload_dir)}},
        },
    }
    serve.run(build_ui_app(ui_args), name="ui", route_prefix="/ui")
    ui_url = f"http://127.0.0.1:{port}/ui/"

    def ready() -> bool:
        models = httpx.get(f"{api_url}/health", timeout=5).json()["models"]
        return set(models) == {*MODELS, "timesfm-2.5"} and all(
            (m["status"] == "ready") == (name in MODELS) for name, m in models.items()
        )

    wait_for(ready, "the API's models")
    wait_for(lambda: httpx.get(ui_url, timeout=5).status_code == 200, "the UI")
    yield Service(
        ui_url=ui_url,
        api_url=api_url,
        key=API_KEY,
        recorder=recorder,
        upload_dir=upload_dir,
        data_dir=data_dir,
    )
    proxy.shutdown()
    if started:
        serve.shutdown()
        ray.shutdown()
    else:
        serve.delete("ui")
        serve.delete("ui-tests-api")


# Package scope: Playwright's sync API keeps an event loop running on the main thread while it
# is open, which would refuse every later test's asyncio.run; it closes with these tests.
@pytest.fixture(scope="package")
def browser() -> Iterator[object]:
    playwright_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright")
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is missing: make browser (apt-get install chromium)")
    with playwright_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


def new_page(browser: object) -> Any:
    """A page in a fresh browser context; ``page.dialogs`` lists any alert() that fired."""
    context = browser.new_context(  # type: ignore[attr-defined]
        viewport={"width": 1300, "height": 1000}, accept_downloads=True
    )
    page = context.new_page()
    page.dialogs = []
    page.on("dialog", lambda dialog: (page.dialogs.append(dialog.message), dialog.dismiss()))
    return page


def sign_in(page: Any, key: str, user: str = "anyone") -> None:
    """Gradio's login form: any user name, the API key as the password."""
    page.wait_for_selector("input[type=password]")
    page.locator("input[type=text]").fill(user)
    page.locator("input[type=password]").fill(key)
    page.get_by_role("button", name="Login").click()


@pytest.fixture
def signed_out_page(browser: object, service: Service) -> Iterator[Any]:
    """The UI as a visitor without a key sees it: the login form."""
    page = new_page(browser)
    page.goto(service.ui_url)
    page.wait_for_selector("input[type=password]")
    service.recorder.calls.clear()
    yield page
    page.context.close()


@pytest.fixture
def page(browser: object, service: Service) -> Iterator[Any]:
    """The UI signed in with the service's key, models listed; the recorder cleared after."""
    page = new_page(browser)
    page.goto(service.ui_url)
    sign_in(page, service.key)
    page.wait_for_selector("#upload", timeout=30_000)
    from playwright.sync_api import expect

    # The first page of a run waits for a cold UI replica and its first API call.
    expect(page.locator("#status")).to_contain_text("Connected", timeout=90_000)
    service.recorder.calls.clear()
    yield page
    page.context.close()
