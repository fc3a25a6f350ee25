"""The web UI as its own Ray Serve application at ``/ui``: Gradio Blocks mounted on FastAPI.

``serve run serve_config.yaml`` calls ``build_ui_app(args)`` with the ``args`` of the ``ui``
application. Ray's ``GradioServer`` does not work with Gradio 6, so the replica builds the FastAPI
app itself (``__serve_build_asgi_app__``) and mounts the Blocks on it, behind Gradio's own login
(``frontend/auth.py``): the API key is the password.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel, ConfigDict, Field
from ray import serve
from ray.serve import Application
from starlette.routing import Mount

from frontend.api_client import DEFAULT_API_BASE_URL
from frontend.auth import KeyCheck, Sessions

# Once a sign-in has ended (idle, signed out elsewhere) Gradio answers the page's calls with 401
# and would show bare "Error" badges; reloading shows the login form instead.
RELOAD_WHEN_SIGNED_OUT = """<script>
(() => {
  const fetch_ = window.fetch;
  window.fetch = async (...args) => {
    const answer = await fetch_(...args);
    if (answer.status === 401 && String(args[0].url ?? args[0]).includes("/gradio_api/")) {
      location.reload();
    }
    return answer;
  };
})();
</script>"""
SIGN_IN_MESSAGE = (
    "Sign in with your Sapheneia API key as the password; the user name is not checked."
)


class UIArgs(BaseModel):
    """The ``args`` of the ui application in serve_config.yaml."""

    model_config = ConfigDict(extra="forbid")

    api_base_url: str | None = Field(
        default=None,
        description="Where the UI sends API calls; else $UI_API_BASE_URL, else "
        f"{DEFAULT_API_BASE_URL}. Any reachable Sapheneia API works, local or remote.",
    )
    ray_actor_options: dict[str, Any] = Field(
        default_factory=lambda: {"num_cpus": 0.25}, description="Resources of the one replica."
    )
    max_upload_bytes: int | None = Field(
        default=None,
        ge=1,
        description="Largest upload the UI accepts (Data and Jobs tabs alike), in bytes; default: "
        "the API's own cap ($SAPHENEIA_MAX_REQUEST_BYTES, 20 MiB), so the UI never takes a file "
        "the API refuses. A bigger job's file goes in the data directory, named as its source.",
    )
    session_idle_s: int = Field(
        default=1800,
        ge=1,
        description="A sign-in unused this long ends: its key and its pages' data are dropped, "
        "and uploaded files are deleted this long after upload.",
    )
    sign_in_failures_per_minute: int = Field(
        default=20,
        ge=1,
        description="Wrong keys the UI passes on to the API per minute, all users together. Keep "
        "it under the API's SAPHENEIA_AUTH_FAILURES_PER_MINUTE (30): the API counts the UI's "
        "address as one client and would otherwise refuse every UI user for a minute.",
    )


@dataclass(frozen=True)
class UIOptions:
    """The resolved args the replica is built with."""

    api_base_url: str
    max_upload_bytes: int
    session_idle_s: int = 1800
    sign_in_failures_per_minute: int = 20


def forget_pages(blocks: Any, session_hashes: set[str]) -> None:
    """Delete the server-side data (State values, component values) of these page sessions."""
    holder = blocks.state_holder
    for session_hash in session_hashes:
        holder.delete_state(session_hash)  # runs each State's delete_callback
        with holder.lock:
            holder.session_data.pop(session_hash, None)
            holder.time_last_used.pop(session_hash, None)


def create_ui_asgi(options: UIOptions) -> FastAPI:
    """A FastAPI app serving the Blocks at its root (Serve adds the ``/ui`` prefix)."""
    import gradio as gr
    from gradio.routes import App

    from frontend.layout import build_blocks

    sessions = Sessions(options.session_idle_s)
    sweep_every_s = max(1, min(60, options.session_idle_s // 10))
    blocks = build_blocks(
        options.api_base_url,
        sessions,
        max_upload_bytes=options.max_upload_bytes,
        keep_files_s=options.session_idle_s,
        sweep_every_s=sweep_every_s,
    )

    @asynccontextmanager
    async def sweeping(_app: FastAPI) -> AsyncIterator[None]:
        async def sweep() -> None:
            while True:
                await asyncio.sleep(sweep_every_s)
                forget_pages(blocks, sessions.sweep())

        task = asyncio.create_task(sweep())
        try:
            yield
        finally:
            task.cancel()

    app = FastAPI(
        title="Sapheneia UI", docs_url=None, redoc_url=None, openapi_url=None, lifespan=sweeping
    )
    check = KeyCheck(options.api_base_url, failures_per_minute=options.sign_in_failures_per_minute)
    gr.mount_gradio_app(
        app,
        blocks,
        path="",
        auth=check.check,
        auth_message=SIGN_IN_MESSAGE,
        ssr_mode=False,
        max_file_size=options.max_upload_bytes,
        footer_links=[],
        mcp_server=False,
        run_history=False,  # its routes take data outside the login and are of no use here
        head=RELOAD_WHEN_SIGNED_OUT,
    )
    # Gradio keeps sign-ins in ``App.tokens`` (token -> user name); ours also holds each key,
    # forgets idle sign-ins and never hands Gradio the key as the user name.
    mounted = [r.app for r in app.routes if isinstance(r, Mount) and isinstance(r.app, App)]
    if len(mounted) != 1:
        raise RuntimeError("the Gradio app was not mounted where expected")
    mounted[0].tokens = sessions
    return app


class WebUI:
    """One replica only: Gradio keeps each browser session's state in the replica's memory."""

    def __init__(self, options: UIOptions) -> None:
        self.options = options

    def __serve_build_asgi_app__(self) -> FastAPI:
        return create_ui_asgi(self.options)


def resolve_api_base_url(args: UIArgs, environ: Mapping[str, str]) -> str:
    """``api_base_url`` from args, else ``UI_API_BASE_URL``, else the local default."""
    chosen = args.api_base_url or environ.get("UI_API_BASE_URL") or DEFAULT_API_BASE_URL
    return chosen.rstrip("/")


def resolve_options(args: UIArgs, environ: Mapping[str, str], api_max_bytes: int) -> UIOptions:
    """The replica's options; uploads capped like the API's bodies unless args say otherwise."""
    return UIOptions(
        api_base_url=resolve_api_base_url(args, environ),
        max_upload_bytes=args.max_upload_bytes or api_max_bytes,
        session_idle_s=args.session_idle_s,
        sign_in_failures_per_minute=args.sign_in_failures_per_minute,
    )


def build_ui_app(args: dict[str, Any] | None = None) -> Application:
    """The Serve application for the UI; args validated, bad ones fail with a clear message."""
    from sapheneia.settings import get_settings

    parsed = UIArgs.model_validate(args or {})
    options = resolve_options(parsed, os.environ, get_settings().max_request_bytes)
    ingress: Any = serve.ingress()(WebUI)  # a class; typed as a Callable by Ray
    deployment: Any = serve.deployment(
        ingress,
        name="ui",
        num_replicas=1,
        ray_actor_options=parsed.ray_actor_options,
        max_ongoing_requests=100,
    )
    return deployment.bind(options)
