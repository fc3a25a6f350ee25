"""The earlier product's model routes, ``/api/v1/{model}/...``, kept for its clients."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Mapping
from typing import Any

import pandas as pd
from fastapi import APIRouter, Request

from deployments.audit import note
from deployments.deps import AdminDep, CallerDep, GatewayDep, count_series
from deployments.gateway import model_state
from deployments.parsing import JsonOnly
from deployments.routes_discovery import answered_by, public_version, without_paths
from deployments.schemas import (
    AUTHENTICATED_ERRORS,
    FORECAST_ERRORS,
    InferenceRequest,
    InitializationRequest,
    error_responses,
)
from deployments.v1_contract import inference_response
from deployments.v1_defaults import v1_defaults
from sapheneia import __version__
from sapheneia.data import ColumnRoles, build_tasks
from sapheneia.errors import InvalidInput, ModelUnavailable, UnknownColumn
from sapheneia.tasks import DECILES

# How old the ingress's view of /initialization's settings may be when /inference reads them.
SETTINGS_MAX_AGE_S = 1.0

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
    # Every route here names a model (404 when unknown). FastAPI documents a 422 of its own shape on
    # any route with parameters unless one is declared; validation answers 400 here, so the 422 is
    # declared in the one error shape (data errors on /inference).
    router = APIRouter(
        prefix="/api/v1/{model}",
        tags=["v1 (earlier contract)"],
        responses=error_responses(*AUTHENTICATED_ERRORS, 404, 422),
    )

    @router.post("/initialization", responses=error_responses(400, 403, 409, 503))
    async def initialization(
        model: str,
        gateway: GatewayDep,
        _: AdminDep,
        _json: JsonOnly,
        body: InitializationRequest | None = None,
    ) -> dict[str, Any]:
        """Load the model on every replica (admin key; 409 while it is already initializing).

        Fields not sent change nothing; a model that is already ready keeps serving throughout."""
        model_id = gateway.resolve(model)
        body = body or InitializationRequest()
        config = gateway.configs[model_id]
        source = config.checkpoint or "statsforecast"
        for requested in (body.checkpoint, body.local_model_path):
            if requested and requested != config.checkpoint:
                raise InvalidInput(
                    f"model '{model_id}' serves its configured weights; they are chosen in "
                    "serve_config.yaml by the operator, not per request — omit "
                    "'checkpoint'/'local_model_path'"
                )
        sent = body.model_dump(include={"context_len", "horizon_len"}, exclude_none=True)
        state = await gateway.set_state(model_id, "ready", sent)
        if state.status != "ready":
            raise ModelUnavailable(
                f"model '{model_id}' is {state.status}: {without_paths(state.reason)}"
            )
        defaults = v1_defaults(gateway.options.request_defaults.get(model_id, {}), state.settings)
        return {
            "message": f"Model initialized successfully from {_source_label(source)}",
            "model_status": "ready",
            "model_info": {
                "backend": body.backend,
                "context_len": defaults.context_len,
                "horizon_len": defaults.horizon_len,
                "source": _source_label(source),
            },
            "replicas": state.replicas,
        }

    @router.get("/status")
    async def status(model: str, gateway: GatewayDep, _: CallerDep) -> dict[str, Any]:
        """The model's state across its replicas."""
        model_id = gateway.resolve(model)
        state = await model_state(gateway, model_id)
        source = _source_label(gateway.configs[model_id].checkpoint or "statsforecast")
        reason = without_paths(state.reason)
        return {
            "model_status": state.status,
            "details": f"Source: {source}" + (f"; {reason}" if reason else ""),
            "replicas": state.replicas,
        }

    @router.post("/shutdown", responses=error_responses(403, 503))
    async def shutdown(model: str, gateway: GatewayDep, _: AdminDep) -> dict[str, Any]:
        """Unload the model on every replica (admin key); its routes answer 503 until
        /initialization."""
        model_id = gateway.resolve(model)
        state = await gateway.set_state(model_id, "shutdown", {})
        return {"message": "Model shut down successfully", "replicas": state.replicas}

    @router.post("/inference", responses=error_responses(*FORECAST_ERRORS))
    async def inference(
        model: str,
        body: InferenceRequest,
        request: Request,
        gateway: GatewayDep,
        caller: CallerDep,
        _json: JsonOnly,
    ) -> dict[str, Any]:
        """Forecast one series from a file or URL, answered in the earlier product's shape."""
        started = time.perf_counter()
        model_id = gateway.resolve(model)
        params = body.parameters
        # The /initialization settings from the ingress's recent look at the board: no call of
        # its own per request.
        state = await model_state(gateway, model_id, max_age_s=SETTINGS_MAX_AGE_S)
        defaults = v1_defaults(
            gateway.options.request_defaults.get(model_id, {}),
            state.settings,
            context_len=params.context_len,
            horizon_len=params.horizon_len,
        )
        frame = await gateway.sources.load(body.data_source_url_or_path, caller.key_digest)
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
            defaults.horizon_len,
            DECILES,
            context_length=defaults.context_len,
            freq=params.freq if isinstance(params.freq, str) else None,
            group=uuid.uuid4().hex,  # drawn by the server: batch groups never cross callers
            context_start=params.context_start_date,
            context_end=params.context_end_date,
            limits=gateway.limits,
        )
        note(request, model=model_id, series=1)
        await count_series(request, gateway, 1)
        (result,) = await gateway.forecast(model_id, tasks[:1])
        answer = inference_response(
            tasks[0],
            result,
            target_name=roles.target,
            indices=params.quantile_indices,
            use_quantiles=params.use_quantiles,
            model_id=model_id,
            total_seconds=time.perf_counter() - started,
            request_id=request.state.request_id,
            api_version=__version__,
        )
        # Beside the earlier product's fields: which adapter and weights revision answered.
        version = answered_by(gateway.configs[model_id])
        answer["execution_metadata"].update(
            adapter=version["adapter"],
            checkpoint=version["checkpoint"],
            revision=version["revision"],
        )
        return answer

    return router


def _source_label(source: str) -> str:
    """'statsforecast', 'hf:<repo id>', or 'local weights' (never the server's path)."""
    if source == "statsforecast":
        return source
    return "local weights" if public_version(source) == "local" else f"hf:{source}"
