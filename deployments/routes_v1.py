"""The earlier product's model routes, ``/api/v1/{model}/...``, kept for its clients."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from typing import Any

import pandas as pd
from fastapi import APIRouter, Request

from deployments.deps import Caller, Gateway
from deployments.schemas import InferenceRequest, InitializationRequest
from deployments.seed_format import seed_response
from sapheneia.data import ColumnRoles, build_tasks, load_table
from sapheneia.errors import InvalidInput, UnknownColumn
from sapheneia.tasks import DECILES

TIMESTAMP_CANDIDATES = ("date", "ds", "timestamp", "time", "datetime")


def pick_timestamp_column(frame: pd.DataFrame, definition: Mapping[str, str]) -> str:
    """The earlier product required a ``date`` column; accept the usual other names too."""
    for name in TIMESTAMP_CANDIDATES:
        if name in frame.columns and name not in definition:
            return name
    raise UnknownColumn(
        "no timestamp column: name it 'date' (or one of "
        f"{', '.join(TIMESTAMP_CANDIDATES[1:])}); columns present: {', '.join(map(str, frame.columns))}"
    )


def v1_router() -> APIRouter:
    router = APIRouter(prefix="/api/v1/{model}", tags=["v1 (earlier contract)"])

    @router.post("/initialization")
    async def initialization(
        model: str, gateway: Gateway, _: Caller, body: InitializationRequest | None = None
    ) -> dict[str, Any]:
        """Load the model on every replica (409 while it is already initializing)."""
        model_id = gateway.resolve(model)
        body = body or InitializationRequest()
        config = gateway.configs[model_id]
        source = config.checkpoint or "statsforecast"
        for requested in (body.checkpoint, body.local_model_path):
            if requested and requested != config.checkpoint:
                raise InvalidInput(
                    f"model '{model_id}' serves '{source}'; weights are chosen in serve_config.yaml "
                    "by the operator, not per request — omit 'checkpoint'/'local_model_path'"
                )
        settings = {"context_len": body.context_len, "horizon_len": body.horizon_len}
        status = await gateway.set_state(model_id, "ready", settings)
        if status["status"] != "ready":
            from sapheneia.errors import ModelUnavailable

            raise ModelUnavailable(f"model '{model_id}' is {status['status']}: {status['reason']}")
        return {
            "message": f"Model initialized successfully from {_source_label(source)}",
            "model_status": "ready",
            "model_info": {"backend": body.backend, **settings, "source": _source_label(source)},
            "replicas": status["replicas"],
        }

    @router.get("/status")
    async def status(model: str, gateway: Gateway, _: Caller) -> dict[str, Any]:
        """The model's state across its replicas."""
        model_id = gateway.resolve(model)
        summary = await gateway.status(model_id)
        source = _source_label(gateway.configs[model_id].checkpoint or "statsforecast")
        return {
            "model_status": summary["status"],
            "details": f"Source: {source}"
            + (f"; {summary['reason']}" if summary["reason"] else ""),
            "replicas": summary["replicas"],
        }

    @router.post("/shutdown")
    async def shutdown(model: str, gateway: Gateway, _: Caller) -> dict[str, Any]:
        """Unload the model on every replica; its routes answer 503 until /initialization."""
        model_id = gateway.resolve(model)
        status = await gateway.set_state(model_id, "shutdown", {})
        return {"message": "Model shut down successfully", "replicas": status["replicas"]}

    @router.post("/inference")
    async def inference(
        model: str, body: InferenceRequest, request: Request, gateway: Gateway, _: Caller
    ) -> dict[str, Any]:
        """Forecast one series from a file or URL, answered in the earlier product's shape."""
        started = time.perf_counter()
        model_id = gateway.resolve(model)
        params = body.parameters
        # Precedence: the request, then /initialization's settings, then the operator's defaults.
        defaults = {
            **gateway.options.request_defaults.get(model_id, {}),
            **(await gateway.status(model_id))["settings"],
        }
        frame = await asyncio.to_thread(load_table, body.data_source_url_or_path, gateway.limits)
        timestamp = pick_timestamp_column(frame, body.data_definition)
        definition = {
            column: role
            for column, role in body.data_definition.items()
            if role == "target" or params.use_covariates
        }
        roles = ColumnRoles.from_data_definition(definition, timestamp=timestamp)
        tasks = await asyncio.to_thread(
            build_tasks,
            frame,
            roles,
            params.horizon_len or defaults.get("horizon_len") or 24,
            DECILES,
            context_length=params.context_len or defaults.get("context_len"),
            freq=params.freq if isinstance(params.freq, str) else None,
            group=request.state.request_id,
            context_start=params.context_start_date,
            context_end=params.context_end_date,
            limits=gateway.limits,
        )
        (result,) = await gateway.forecast(model_id, tasks[:1])
        from deployments.ingress import API_VERSION

        return seed_response(
            tasks[0],
            result,
            target_name=roles.target,
            indices=params.quantile_indices,
            use_quantiles=params.use_quantiles,
            model_id=model_id,
            total_seconds=time.perf_counter() - started,
            request_id=request.state.request_id,
            api_version=API_VERSION,
        )

    return router


def _source_label(source: str) -> str:
    return source if source == "statsforecast" or source.startswith("/") else f"hf:{source}"
