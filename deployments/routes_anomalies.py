"""``POST /api/v2/anomalies``, and the rolling one-step fits it shares with ``history: true``."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from fastapi import APIRouter, Request, Response

from deployments.audit import note
from deployments.deps import CallerDep, GatewayDep, count_series
from deployments.gateway import Gateway
from deployments.parsing import parse_table_request, upload_doc
from deployments.routes_discovery import answered_by
from deployments.schemas import (
    ANOMALIES_EXAMPLE,
    FORECAST_ERRORS,
    AnomaliesRequest,
    AnomaliesResponse,
    TableRequest,
    error_responses,
)
from sapheneia.anomalies import (
    MIN_ONE_STEP_CONTEXT,
    OneStepPlan,
    interval_quantiles,
    one_step_frame,
    plan_one_step,
    score_anomalies,
    second_round,
)
from sapheneia.tasks import ForecastResult


async def _plan(
    gateway: Gateway,
    model_id: str,
    body: TableRequest,
    frame: pd.DataFrame,
    quantiles: Sequence[float],
    last_n: int | None,
) -> OneStepPlan:
    capabilities = (await gateway.model_states(max_age_s=1.0))[model_id].capabilities
    return await asyncio.to_thread(
        plan_one_step,
        frame,
        body.roles(frame.columns),
        quantiles,
        last_n=last_n,
        min_context=int(capabilities.get("min_context", MIN_ONE_STEP_CONTEXT)),
        context_length=body.context_length,
        freq=body.freq,
        group=uuid.uuid4().hex,  # drawn by the server: batch groups never cross callers
        limits=gateway.limits,
    )


def _largest_batch(*rounds: Sequence[ForecastResult]) -> int | None:
    sizes = [r.metadata.get("batch_size") for results in rounds for r in results]
    return max((int(s) for s in sizes if isinstance(s, int)), default=None)


async def one_step_fits(
    gateway: Gateway,
    model_id: str,
    body: TableRequest,
    frame: pd.DataFrame,
    quantiles: Sequence[float],
    last_n: int | None = None,
) -> tuple[pd.DataFrame, int | None]:
    """Each tested point's one-step forecast on the history before it (``one_step_frame``'s
    rows), and the largest batch they ran in. Every cut goes to the model at once, each cut its
    own batch group."""
    plan = await _plan(gateway, model_id, body, frame, quantiles, last_n)
    results = await gateway.forecast(model_id, plan.tasks)
    return await asyncio.to_thread(one_step_frame, plan, results), _largest_batch(results)


@dataclass
class AnomalyFits:
    table: pd.DataFrame  # one_step_frame's rows, the points after a replaced one forecast again
    largest_batch: int | None
    replaced: int
    forecast_again: int


async def anomaly_fits(
    gateway: Gateway,
    model_id: str,
    body: AnomaliesRequest,
    frame: pd.DataFrame,
    lo: float,
    hi: float,
) -> AnomalyFits:
    """``one_step_fits`` in two rounds (``sapheneia.anomalies.second_round``): the points after
    an anomaly forecast again with it replaced by its forecast, all of them at once."""
    plan = await _plan(gateway, model_id, body, frame, (lo, hi), body.last_n)
    first = await gateway.forecast(model_id, plan.tasks)
    again = await asyncio.to_thread(second_round, plan, first, lo, hi)
    second = await gateway.forecast(model_id, again.tasks) if again.tasks else []
    results = again.merge(first, second)
    table = await asyncio.to_thread(one_step_frame, plan, results)
    return AnomalyFits(table, _largest_batch(first, second), again.replaced, len(again.tasks))


def json_rows(table: pd.DataFrame, id_column: str) -> list[dict[Hashable, Any]]:
    """Records with ISO timestamps and the caller's id column name; JSON-safe numbers."""
    table = table.rename(columns={"unique_id": id_column})
    table["ds"] = [t.isoformat() for t in table["ds"]]
    clean = table.replace([np.inf, -np.inf], np.nan)
    return clean.astype(object).where(clean.notna(), None).to_dict(orient="records")


def anomalies_router() -> APIRouter:
    router = APIRouter(
        prefix="/api/v2", tags=["v2 (unified)"], responses=error_responses(*FORECAST_ERRORS)
    )

    @router.post(
        "/anomalies",
        responses={200: {"model": AnomaliesResponse, "description": "Every tested point."}},
        openapi_extra=upload_doc(
            "AnomaliesRequest", ANOMALIES_EXAMPLE, '{"model": "auto-ets", "level": 99}'
        ),
    )
    async def anomalies(request: Request, gateway: GatewayDep, _: CallerDep) -> Response:
        """Flag points outside a model's one-step prediction interval at `level` percent. The
        points after an anomaly are forecast again with it replaced by its forecast, so that it
        neither echoes nor hides the next one. JSON rows, or a CSV/Parquet upload as 'file'."""
        started = time.perf_counter()
        body, frame = await parse_table_request(request, AnomaliesRequest, gateway.sources)
        model_id = gateway.resolve(body.model)
        lo, hi = interval_quantiles(body.level)
        ids = frame[body.id_column] if body.id_column in frame.columns else None
        await count_series(request, gateway, 1 if ids is None else int(ids.nunique()))
        fits = await anomaly_fits(gateway, model_id, body, frame, lo, hi)
        scored = await asyncio.to_thread(score_anomalies, fits.table, lo, hi)
        series = scored["unique_id"].nunique()
        note(request, model=model_id, series=series)
        payload = {
            "model": model_id,
            "anomalies": json_rows(scored, body.id_column),
            "metadata": {
                "model_version": answered_by(gateway.configs[model_id]),
                "level": body.level,
                "quantiles": [lo, hi],
                "points_per_series": len(scored) // series,
                "series_count": series,
                "anomalies": int(scored["anomaly"].sum()),
                "replaced": fits.replaced,
                "forecast_again": fits.forecast_again,
                "largest_batch": fits.largest_batch,
                "total_time_seconds": round(time.perf_counter() - started, 4),
                "request_id": request.state.request_id,
            },
        }
        # allow_nan=False: the answer is RFC 8259 JSON or an error, never NaN or Infinity.
        return Response(json.dumps(payload, allow_nan=False), media_type="application/json")

    return router
