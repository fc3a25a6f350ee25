"""``/``, ``/health``, ``/info``, ``/models``: the earlier product's discovery routes, public.

Public means anyone who reaches the port reads them, so they say what is served and whether it is
up, nothing more: no error texts, no local paths. The reasons a model is not ready, with the fix,
are on the authenticated ``/api/v2/models`` and ``/api/v1/{model}/status``.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter

from deployments.deps import GatewayDep
from deployments.gateway import Gateway
from deployments.schemas import EVERY_ROUTE_ERRORS, error_responses
from sapheneia import __version__
from sapheneia.config import ModelConfig

# A local filesystem path inside a message (not the '//' of a URL).
_LOCAL_PATH = re.compile(r"(?<![\w:/.~-])/(?:[\w.~-]+/)*[\w.~-]+")


def without_paths(text: str | None) -> str | None:
    """``text`` with local paths replaced: a caller learns the fix, not the server's layout."""
    return None if text is None else _LOCAL_PATH.sub("<local path>", text)


def public_version(checkpoint: str | None) -> str:
    """The weights' name for public listings: a hub id as is, a local directory only as 'local'."""
    if checkpoint is None:
        return "statistical"
    return "local" if checkpoint.startswith(("/", "~", ".")) else checkpoint


def answered_by(config: ModelConfig) -> dict[str, str | None]:
    """Which model answered: id, adapter, weights (as ``public_version``) and hub revision."""
    return {
        "id": config.id,
        "adapter": config.adapter,
        "checkpoint": public_version(config.checkpoint),
        "revision": config.revision,
    }


def discovery_router() -> APIRouter:
    router = APIRouter(tags=["discovery"], responses=error_responses(*EVERY_ROUTE_ERRORS))

    @router.get("/")
    async def root() -> dict[str, Any]:
        """Service status and where the docs are (public)."""
        return {"status": "ok", "version": __version__, "docs": "/docs", "ui": "/ui"}

    @router.get("/health")
    async def health(gateway: GatewayDep) -> dict[str, Any]:
        """Per-model status (public): ready, initializing, unavailable, error, uninitialized."""
        states = await gateway.model_states()
        ready = any(s.status == "ready" for s in states.values())
        return {
            "status": "healthy" if ready else "degraded",
            "timestamp": datetime.now(UTC).isoformat(),
            "api_version": __version__,
            "models": {
                model: {"status": s.status, "replicas": s.replicas} for model, s in states.items()
            },
        }

    @router.get("/info")
    async def info(gateway: GatewayDep) -> dict[str, Any]:
        """Name, version, models and features (public)."""
        return {
            "name": "Sapheneia",
            "description": "Time-series foundation models and statistical forecasters on Ray Serve",
            "version": __version__,
            "available_models": sorted(gateway.configs),
            "aliases": dict(gateway.aliases),
            "documentation": {"openapi": "/openapi.json", "swagger": "/docs", "ui": "/ui"},
            "features": [
                "many series per request (/api/v2/forecast)",
                "CSV and Parquet upload",
                "quantile forecasts at any level",
                "covariates (model dependent)",
                "rolling-origin backtests (/api/v2/backtest)",
                "dynamic batching across requests",
            ],
        }

    @router.get("/models")
    async def models(gateway: GatewayDep) -> dict[str, Any]:
        """The earlier product's model list (public): ids, names, versions and statuses."""
        states = await gateway.model_states()
        listing = {
            model_id: {
                "id": model_id,
                "name": model_id,
                "version": public_version(gateway.configs[model_id].checkpoint),
                "description": gateway.configs[model_id].description,
                "status": states[model_id].status,
            }
            for model_id in sorted(gateway.configs)
        }
        return {"models": listing, "count": len(listing)}

    return router


async def model_listing(gateway: Gateway) -> list[dict[str, Any]]:
    """For callers with a key: each model's status with its reason, capabilities and licence,
    from one look at the lifecycle board (capabilities travel in the replicas' reports)."""
    states = await gateway.model_states()
    entries = []
    for model_id in sorted(gateway.configs):
        config, state = gateway.configs[model_id], states[model_id]
        entries.append(
            {
                "id": model_id,
                "name": model_id,
                "version": public_version(config.checkpoint),
                "revision": config.revision,
                "adapter": config.adapter,
                "description": config.description,
                "aliases": config.aliases,
                "status": state.status,
                "reason": without_paths(state.reason),
                "replicas": state.replicas,
                "capabilities": state.capabilities,
                "licence": state.capabilities.get("licence"),
            }
        )
    return entries
