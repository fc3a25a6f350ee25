"""The unified API: many series per request, JSON rows or an uploaded file, JSON or CSV back."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import numpy as np
import pandas as pd
from fastapi import APIRouter, Request, Response

from deployments.deps import Caller, Gateway, read_body
from deployments.routes_discovery import model_listing
from deployments.schemas import FORECAST_EXAMPLE, ForecastRequest, parse_body
from sapheneia.data import build_tasks, load_table
from sapheneia.errors import InvalidInput, UnsupportedFormat
from sapheneia.tasks import ForecastResult, iso_timestamps, results_columns

UPLOAD_DOC = {
    "requestBody": {
        "content": {
            "application/json": {
                "schema": {"$ref": "#/components/schemas/ForecastRequest"},
                "example": FORECAST_EXAMPLE,
            },
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file", "request"],
                    "properties": {
                        "file": {"type": "string", "format": "binary"},
                        "request": {
                            "type": "string",
                            "description": "ForecastRequest as JSON, without 'data'/'source'.",
                            "example": '{"model": "auto-ets", "horizon": 12}',
                        },
                    },
                }
            },
        },
        "required": True,
    }
}


# Responses for up to this many series are shaped inline; a thread hop costs more than the work.
INLINE_SERIES = 4


def forecast_json(
    results: list[ForecastResult], body: ForecastRequest, model_id: str, metadata: dict[str, Any]
) -> str:
    columns = results_columns(results)
    columns["ds"] = np.asarray(iso_timestamps(results), dtype=object)
    names = [body.id_column if n == "unique_id" else n for n in columns]
    values = [c.tolist() for c in columns.values()]
    rows = [dict(zip(names, row, strict=True)) for row in zip(*values, strict=True)]
    return json.dumps({"model": model_id, "forecast": rows, "metadata": metadata})


def forecast_csv(
    results: list[ForecastResult], body: ForecastRequest, model_id: str, metadata: dict[str, Any]
) -> str:
    table = pd.DataFrame(results_columns(results))
    return table.rename(columns={"unique_id": body.id_column}).to_csv(index=False)


def v2_router() -> APIRouter:
    router = APIRouter(prefix="/api/v2", tags=["v2 (unified)"])

    @router.get("/models")
    async def models(gateway: Gateway, _: Caller) -> dict[str, Any]:
        """Models with capabilities (context, horizon, covariates, quantiles, licence) and status."""
        return {"models": await model_listing(gateway)}

    @router.post("/forecast", openapi_extra=UPLOAD_DOC)
    async def forecast(request: Request, gateway: Gateway, _: Caller) -> Response:
        """Forecast many series: JSON rows, or a CSV/Parquet upload as multipart 'file'."""
        started = time.perf_counter()
        body, frame = await parse_forecast_request(request, gateway)
        model_id = gateway.resolve(body.model)
        roles = body.roles(frame.columns)
        tasks = await asyncio.to_thread(
            build_tasks,
            frame,
            roles,
            body.horizon,
            tuple(body.quantiles),
            context_length=body.context_length,
            freq=body.freq,
            group=request.state.request_id,
            limits=gateway.limits,
        )
        results = await gateway.forecast(model_id, tasks)
        as_csv = body.format == "csv" or "text/csv" in request.headers.get("accept", "")
        shape = forecast_csv if as_csv else forecast_json
        metadata = {
            "series_count": len(results),
            "horizon": body.horizon,
            "quantiles": sorted(set(body.quantiles)),
            "interpolated_quantiles": sorted({q for r in results for q in r.interpolated}),
            "covariates_used": any(r.covariates_used for r in results),
            "batch_sizes": [r.metadata.get("batch_size") for r in results],
            "total_time_seconds": round(time.perf_counter() - started, 4),
            "request_id": request.state.request_id,
        }
        # Shaping many series takes tens of milliseconds: off the event loop, so that other
        # requests keep flowing to the models meanwhile.
        if len(results) > INLINE_SERIES:
            content = await asyncio.to_thread(shape, results, body, model_id, metadata)
        else:
            content = shape(results, body, model_id, metadata)
        return Response(content, media_type="text/csv" if as_csv else "application/json")

    return router


async def parse_forecast_request(
    request: Request, gateway: Any
) -> tuple[ForecastRequest, pd.DataFrame]:
    """The validated request and its table, from JSON or from a multipart upload."""
    content_type = request.headers.get("content-type", "")
    limits = gateway.limits
    if content_type.startswith("application/json"):
        raw = await read_body(request, limits.max_bytes)
        body = parse_body(ForecastRequest, raw)
        source: Any = body.data if body.data is not None else body.source
        frame = await asyncio.to_thread(load_table, source, limits)
        return body, frame
    if content_type.startswith("multipart/form-data"):
        await read_body(request, limits.max_bytes)  # enforce the cap before parsing the form
        form = await request.form()
        upload, spec = form.get("file"), form.get("request")
        if upload is None or isinstance(upload, str):
            raise InvalidInput("multipart upload needs a 'file' part (CSV or Parquet)")
        if not isinstance(spec, str):
            raise InvalidInput("multipart upload needs a 'request' part: the request JSON")
        try:
            fields = json.loads(spec)
        except json.JSONDecodeError as error:
            raise InvalidInput(f"'request' part is not valid JSON ({error.msg})") from error
        if not isinstance(fields, dict):
            raise InvalidInput("'request' part must be a JSON object")
        body = parse_body(ForecastRequest, json.dumps({**fields, "source": "upload"}).encode())
        content = await upload.read()
        frame = await asyncio.to_thread(
            load_table, content, limits, filename=upload.filename or "upload.csv"
        )
        return body, frame
    raise UnsupportedFormat(
        f"unsupported content type '{content_type or 'none'}': send application/json or "
        "multipart/form-data with a 'file' and a 'request' part"
    )
