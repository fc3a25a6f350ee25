"""The web UI as its own Ray Serve application at ``/ui``: Gradio Blocks mounted on FastAPI.

``serve run serve_config.yaml`` calls ``build_ui_app(args)`` with the ``args`` of the ``ui``
application. Ray's ``GradioServer`` does not work with Gradio 6, so the replica builds the FastAPI
app itself (``__serve_build_asgi_app__``) and mounts the Blocks on it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel, ConfigDict, Field
from ray import serve
from ray.serve import Application

from frontend.api_client import DEFAULT_API_BASE_URL


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
    max_file_size_mb: int = Field(default=50, ge=1, description="Largest upload the UI accepts.")


def create_ui_asgi(api_base_url: str, max_file_size_mb: int = 50) -> FastAPI:
    """A FastAPI app serving the Blocks at its root (Serve adds the ``/ui`` prefix)."""
    import gradio as gr

    from frontend.layout import build_blocks

    app = FastAPI(title="Sapheneia UI", docs_url=None, redoc_url=None, openapi_url=None)
    return gr.mount_gradio_app(
        app,
        build_blocks(api_base_url),
        path="",
        ssr_mode=False,
        max_file_size=max_file_size_mb * 1024 * 1024,
        footer_links=[],
        mcp_server=False,
    )


class WebUI:
    """One replica only: Gradio keeps each browser session's state in the replica's memory."""

    def __init__(self, api_base_url: str, max_file_size_mb: int) -> None:
        self.api_base_url = api_base_url
        self.max_file_size_mb = max_file_size_mb

    def __serve_build_asgi_app__(self) -> FastAPI:
        return create_ui_asgi(self.api_base_url, self.max_file_size_mb)


def resolve_api_base_url(args: UIArgs, environ: Mapping[str, str]) -> str:
    """``api_base_url`` from args, else ``UI_API_BASE_URL``, else the local default."""
    chosen = args.api_base_url or environ.get("UI_API_BASE_URL") or DEFAULT_API_BASE_URL
    return chosen.rstrip("/")


def build_ui_app(args: dict[str, Any] | None = None) -> Application:
    """The Serve application for the UI; args validated, bad ones fail with a clear message."""
    parsed = UIArgs.model_validate(args or {})
    base_url = resolve_api_base_url(parsed, os.environ)
    ingress: Any = serve.ingress()(WebUI)  # a class; typed as a Callable by Ray
    deployment: Any = serve.deployment(
        ingress,
        name="ui",
        num_replicas=1,
        ray_actor_options=parsed.ray_actor_options,
        max_ongoing_requests=100,
    )
    return deployment.bind(base_url, parsed.max_file_size_mb)
