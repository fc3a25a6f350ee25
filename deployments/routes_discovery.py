"""``/``, ``/health``, ``/info``, ``/models``: the earlier product's discovery routes."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter

from deployments.deps import Caller, Gateway


def discovery_router() -> APIRouter:
    router = APIRouter(tags=["discovery"])

    @router.get("/")
    async def root() -> dict[str, Any]:
        """Service status and where the docs are (public)."""
        from deployments.ingress import API_VERSION

        return {"status": "ok", "version": API_VERSION, "docs": "/docs", "ui": "/ui"}

    @router.get("/health")
    async def health(gateway: Gateway) -> dict[str, Any]:
        """Per-model status (public): ready, initializing, unavailable (with the fix), ..."""
        from deployments.ingress import API_VERSION

        statuses = await gateway.all_status()
        ready = any(s["status"] == "ready" for s in statuses.values())
        return {
            "status": "healthy" if ready else "degraded",
            "timestamp": datetime.now(UTC).isoformat(),
            "api_version": API_VERSION,
            "models": {
                model: {"status": s["status"], "error": s["reason"], "replicas": s["replicas"]}
                for model, s in statuses.items()
            },
        }

    @router.get("/info")
    async def info(gateway: Gateway, _: Caller) -> dict[str, Any]:
        """Name, version, models and features."""
        from deployments.ingress import API_VERSION

        return {
            "name": "Sapheneia",
            "description": "Time-series foundation models and statistical forecasters on Ray Serve",
            "version": API_VERSION,
            "available_models": sorted(gateway.handles),
            "aliases": gateway.aliases,
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
    async def models(gateway: Gateway, _: Caller) -> dict[str, Any]:
        """The earlier product's model list, with capabilities."""
        listing = await model_listing(gateway)
        return {"models": {m["id"]: m for m in listing}, "count": len(listing)}

    return router


async def model_listing(gateway: Any) -> list[dict[str, Any]]:
    """One entry per model: id, description, status with reason, capabilities, licence."""
    statuses = await gateway.all_status()
    entries = []
    for model_id in sorted(gateway.handles):
        config = gateway.configs[model_id]
        capabilities = await gateway.capabilities(model_id)
        status = statuses[model_id]
        entries.append(
            {
                "id": model_id,
                "name": model_id,
                "version": config.checkpoint or "statistical",
                "description": config.description,
                "aliases": config.aliases,
                "status": status["status"],
                "reason": status["reason"],
                "replicas": status["replicas"],
                "capabilities": capabilities,
                "licence": capabilities.get("licence"),
            }
        )
    return entries
