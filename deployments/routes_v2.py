"""The unified API: many series per request, JSON rows or an uploaded file, JSON or CSV back."""

from __future__ import annotations

import asyncio
import functools
import json
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
import orjson
import pandas as pd
import pyarrow as pa
from fastapi import APIRouter, Request, Response

from deployments.audit import note
from deployments.deps import CallerDep, GatewayDep, count_series
from deployments.gateway import Gateway
from deployments.parsing import parse_table_request, upload_doc
from deployments.routes_anomalies import json_rows, one_step_fits
from deployments.routes_discovery import answered_by, model_listing
from deployments.schemas import (
    AUTHENTICATED_ERRORS,
    FORECAST_ERRORS,
    FORECAST_EXAMPLE,
    ForecastRequest,
    ForecastResponse,
    error_responses,
)
from deployments.selecting import Chosen, choose
from deployments.sources import INLINE_ROWS
from sapheneia import tracking
from sapheneia.data import build_tasks
from sapheneia.errors import InvalidInput
from sapheneia.selection import SELECTORS, default_metric
from sapheneia.tasks import ForecastResult, future_index, iso_timestamps, results_columns

# Responses for up to this many series (and tasks from up to INLINE_ROWS rows) are built inline:
# a thread hop costs more than the work.
INLINE_SERIES = 4
RUN_HEADER = "X-MLflow-Run-Id"

T = TypeVar("T")


async def with_history(
    answer: Awaitable[T],
    gateway: Gateway,
    model_id: str,
    body: ForecastRequest,
    frame: pd.DataFrame,
) -> tuple[T, pd.DataFrame | None]:
    """``answer``, and the in-sample one-step fits when the request asks for ``history``: sent
    together, so that the fits and the forecast (or the backtests) reach the model as one batch."""
    if not body.history:
        return await answer, None
    result, (fits, _batch) = await asyncio.gather(
        answer, one_step_fits(gateway, model_id, body, frame, body.quantiles)
    )
    return result, fits


def output_columns(
    results: list[ForecastResult], models: list[str] | None
) -> dict[str, np.ndarray]:
    """The answer's columns; with ``models`` (one per result: a traffic split's arm, or the model
    that ``auto`` chose), a 'model' column after the id saying which model forecast each row."""
    columns = results_columns(results)
    if models is None:
        return columns
    model = np.concatenate(
        [np.full(len(r.mean), m, dtype=object) for r, m in zip(results, models, strict=True)]
    )
    return {"unique_id": columns.pop("unique_id"), "model": model, **columns}


@dataclass
class ForecastAnswer:
    """What a forecast answers with, before it is written as JSON, CSV or Arrow."""

    results: list[ForecastResult]
    body: ForecastRequest
    model_id: str
    metadata: dict[str, Any]
    models: list[str] | None = None  # per result, where it is not model_id for all
    history: pd.DataFrame | None = None  # in-sample one-step fits, for history: true
    extra: dict[str, Any] | None = None  # auto / ensemble: 'selection'; calibrate: 'calibration'

    def as_json(self) -> str | bytes:
        columns = output_columns(self.results, self.models)
        finite = all(np.isfinite(c).all() for c in columns.values() if c.dtype.kind == "f")
        columns["ds"] = np.asarray(iso_timestamps(self.results), dtype=object)
        names = [self.body.id_column if n == "unique_id" else n for n in columns]
        values = [c.tolist() for c in columns.values()]
        rows = [dict(zip(names, row, strict=True)) for row in zip(*values, strict=True)]
        payload: dict[str, Any] = {
            "model": self.model_id,
            "forecast": rows,
            "metadata": self.metadata,
        }
        if self.history is not None:
            payload["history"] = json_rows(self.history, self.body.id_column)
        payload |= self.extra or {}
        if finite and self.history is None and not self.extra:
            # orjson writes NaN as null rather than refusing it: only for columns checked finite
            # above (the metadata holds no floats that can be NaN).
            return orjson.dumps(payload)
        # allow_nan=False: the answer is RFC 8259 JSON or an error, never NaN or Infinity.
        return json.dumps(payload, allow_nan=False)

    def as_csv(self) -> str:
        table = pd.DataFrame(output_columns(self.results, self.models))
        if self.history is not None:
            # One table for both: a 'kind' column tells the fitted history rows from the forecast.
            table = pd.concat(
                [self.history.assign(kind="history"), table.assign(kind="forecast")],
                ignore_index=True,
            )
        return table.rename(columns={"unique_id": self.body.id_column}).to_csv(index=False)

    def as_arrow(self) -> bytes:
        """The CSV answer's table as an Arrow IPC stream, typed ('ds' a timestamp), with what the
        JSON answer holds beside the rows ('model', 'metadata', 'selection', ...) as JSON in the
        schema's metadata under 'sapheneia'. Column-wise end to end: nothing per row."""
        id_column = self.body.id_column
        columns: dict[str, Any] = output_columns(self.results, self.models)
        stamps = future_index(self.results)
        columns["ds"] = stamps if stamps is not None else iso_timestamps(self.results)
        if self.history is None:
            data = pa.table({id_column if n == "unique_id" else n: v for n, v in columns.items()})
        else:
            frame = pd.concat(
                [
                    self.history.assign(kind="history"),
                    pd.DataFrame(columns).assign(kind="forecast"),
                ],
                ignore_index=True,
            )
            renamed = frame.rename(columns={"unique_id": id_column})
            data = pa.Table.from_pandas(renamed, preserve_index=False)
        described = {"model": self.model_id, "metadata": self.metadata, **(self.extra or {})}
        # allow_nan=False: the metadata is RFC 8259 JSON, as in the JSON answer.
        data = data.replace_schema_metadata({"sapheneia": json.dumps(described, allow_nan=False)})
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, data.schema) as writer:
            writer.write_table(data)
        return bytes(sink.getvalue().to_pybytes())

    def written(self, kind: str) -> Callable[[], str | bytes]:
        """The writer for an answer format."""
        return {"json": self.as_json, "csv": self.as_csv, "arrow": self.as_arrow}[kind]


def model_headers(version: dict[str, str | None]) -> dict[str, str]:
    return {
        f"X-Model-{name.capitalize()}": value
        for name, value in version.items()
        if value is not None
    }


ARROW_STREAM = "application/vnd.apache.arrow.stream"
MEDIA_TYPES = {"json": "application/json", "csv": "text/csv", "arrow": ARROW_STREAM}


def answer_format(body: ForecastRequest, accept: str) -> str:
    """The body's ``format``, or else what the Accept header asks for (Arrow, CSV), else JSON."""
    if body.format != "json":
        return body.format
    return "arrow" if ARROW_STREAM in accept else "csv" if "text/csv" in accept else "json"


def v2_router() -> APIRouter:
    router = APIRouter(
        prefix="/api/v2",
        tags=["v2 (unified)"],
        responses=error_responses(*AUTHENTICATED_ERRORS),
    )

    @router.get("/models")
    async def models(gateway: GatewayDep, _: CallerDep) -> dict[str, Any]:
        """Models with capabilities (context, horizon, covariates, quantiles, licence) and status."""
        return {"models": await model_listing(gateway)}

    @router.post(
        "/forecast",
        responses={
            200: {
                "model": ForecastResponse,
                "description": "The forecast as JSON, or as CSV or an Arrow IPC stream with the "
                "same columns.",
                "content": {
                    "text/csv": {"schema": {"type": "string"}},
                    ARROW_STREAM: {"schema": {"type": "string", "format": "binary"}},
                },
            },
            **error_responses(*FORECAST_ERRORS),
        },
        openapi_extra=upload_doc(
            "ForecastRequest", FORECAST_EXAMPLE, '{"model": "auto-ets", "horizon": 12}'
        ),
    )
    async def forecast(request: Request, gateway: GatewayDep, _: CallerDep) -> Response:
        """Forecast many series: JSON rows, or a CSV/Parquet upload as multipart 'file'."""
        started = time.perf_counter()
        body, frame = await parse_table_request(request, ForecastRequest, gateway.sources)
        routed = gateway.traffic.routes.get(body.model)
        selecting = body.model in SELECTORS
        model_id = body.model if routed or selecting else gateway.resolve(body.model)
        if routed and (body.history or body.calibrate):
            field = "history" if body.history else "calibrate"
            raise InvalidInput(
                f"{field}: '{body.model}' is a traffic split, whose series meet different models; "
                f"ask for {field} from one of its models ({', '.join(sorted(routed.split))})"
            )
        if selecting and body.history:
            raise InvalidInput(
                f"history: '{body.model}' chooses a model per series; ask for history from one "
                "model by its id"
            )
        if body.track and not selecting:
            raise InvalidInput(
                "track: only a model selection ('auto' or 'ensemble') is logged to MLflow from "
                "/api/v2/forecast; send model 'auto', or run /api/v2/backtest with 'track'"
            )
        target = tracking.require_target(gateway.options.mlflow) if body.track else None
        roles = body.roles(frame.columns)
        build = functools.partial(
            build_tasks,
            frame,
            roles,
            body.horizon,
            tuple(body.quantiles),
            context_length=body.context_length,
            freq=body.freq,
            group=uuid.uuid4().hex,  # drawn by the server: batch groups never cross callers
            limits=gateway.limits,
        )
        tasks = build() if len(frame) <= INLINE_ROWS else await asyncio.to_thread(build)
        note(request, model=model_id, series=len(tasks))
        await count_series(request, gateway, len(tasks))
        models: list[str] | None = None  # per series, where it is not model_id for all
        history: pd.DataFrame | None = None
        chosen: Chosen | None = None
        if routed:
            results, models = await gateway.traffic.forecast(
                model_id, tasks, gateway.forecast, request.state.request_id
            )
        elif selecting or body.calibrate:
            picked, history = await with_history(
                choose(gateway, body, frame, roles, tasks), gateway, model_id, body, frame
            )
            chosen, results, models = picked, picked.results, picked.models
        else:
            results, history = await with_history(
                gateway.forecast(model_id, tasks), gateway, model_id, body, frame
            )
        answer_kind = answer_format(body, request.headers.get("accept", ""))
        media_type = MEDIA_TYPES[answer_kind]
        metadata = {
            "model_version": (
                None
                if routed
                else {"id": model_id, "adapter": "selection", "checkpoint": None, "revision": None}
                if selecting
                else answered_by(gateway.configs[model_id])
            ),
            "series_count": len(results),
            "horizon": body.horizon,
            "quantiles": sorted(set(body.quantiles)),
            "interpolated_quantiles": sorted({q for r in results for q in r.interpolated}),
            "covariates_used": any(r.covariates_used for r in results),
            "batch_sizes": [r.metadata.get("batch_size") for r in results],
            "total_time_seconds": round(time.perf_counter() - started, 4),
            "request_id": request.state.request_id,
        }
        if chosen is not None:
            metadata["candidates"] = {m: answered_by(gateway.configs[m]) for m in chosen.candidates}
        if target is not None and chosen is not None and chosen.plan and chosen.selection:
            # In a thread: writing to the store (a file, a database, HTTP) never blocks the loop.
            metadata["mlflow_run_id"] = await asyncio.to_thread(
                tracking.log_selection,
                target,
                chosen.plan,
                chosen.selection,
                mode=body.model,
                metric=default_metric(body.quantiles, body.metric),
                k=body.k,
                quantiles=body.quantiles,
                answered=results,
                tags={"sapheneia.request_id": request.state.request_id},
            )
        extra = chosen.extra if chosen is not None else None
        if routed and models is not None:
            arms = models
            metadata["traffic"] = {
                "route": model_id,
                "arms": {
                    arm: {
                        "series": arms.count(arm),
                        "model_version": answered_by(gateway.configs[arm]),
                    }
                    for arm in sorted(set(arms))
                },
            }
        # Shaping many series takes tens of milliseconds: off the event loop, so that other
        # requests keep flowing to the models meanwhile.
        answer = ForecastAnswer(results, body, model_id, metadata, models, history, extra)
        shape = answer.written(answer_kind)
        content = await asyncio.to_thread(shape) if len(results) > INLINE_SERIES else shape()
        # The CSV body has no metadata: the headers say which model answered (and which MLflow
        # run recorded it), for every format.
        headers = (
            {"X-Traffic-Route": model_id} if routed else model_headers(metadata["model_version"])
        )
        if "mlflow_run_id" in metadata:
            headers[RUN_HEADER] = metadata["mlflow_run_id"]
        return Response(content, media_type=media_type, headers=headers)

    @router.get("/traffic")
    async def traffic(gateway: GatewayDep, _: CallerDep) -> dict[str, Any]:
        """Traffic splits: each routed name's arms (share, series answered) and its shadow model's
        comparison (series compared, mean absolute difference of the mean forecasts), counted by
        the ingress replica that answers; Prometheus sums every replica."""
        return {"routes": gateway.traffic.view()}

    return router
