"""``POST /api/v2/backtest``: rolling-origin evaluation of served models on the caller's data."""

from __future__ import annotations

import asyncio
import json
import uuid

from fastapi import APIRouter, Request, Response

from deployments.audit import note
from deployments.deps import CallerDep, GatewayDep, count_series
from deployments.parsing import parse_table_request, upload_doc
from deployments.routes_discovery import answered_by
from deployments.schemas import (
    FORECAST_ERRORS,
    BacktestRequest,
    BacktestResponse,
    error_responses,
)
from sapheneia import tracking
from sapheneia.evaluation import metric_records, plan_backtest, report

BACKTEST_EXAMPLE = {
    "models": ["seasonal-naive", "auto-ets"],
    "horizon": 3,
    "n_windows": 2,
    "data": [{"unique_id": "a", "ds": f"2024-{m:02d}-01", "y": 10 + m} for m in range(1, 13)],
}


def backtest_router() -> APIRouter:
    router = APIRouter(
        prefix="/api/v2", tags=["v2 (unified)"], responses=error_responses(*FORECAST_ERRORS)
    )

    @router.post(
        "/backtest",
        responses={200: {"model": BacktestResponse, "description": "Scores and forecasts."}},
        openapi_extra=upload_doc(
            "BacktestRequest", BACKTEST_EXAMPLE, '{"models": ["auto-ets"], "horizon": 12}'
        ),
    )
    async def backtest(request: Request, gateway: GatewayDep, _: CallerDep) -> Response:
        """Rolling-origin backtest of one or more models: MASE, sMAPE, WQL and 80% coverage.
        JSON rows, or a CSV/Parquet upload as multipart 'file'."""
        body, frame = await parse_table_request(request, BacktestRequest, gateway.sources)
        # Refused before any work: a run asked for and not recorded is not an answer.
        target = tracking.require_target(gateway.options.mlflow) if body.track else None
        model_ids = [gateway.resolve(m) for m in body.models]
        plan = await asyncio.to_thread(
            plan_backtest,
            frame,
            body.roles(frame.columns),
            horizon=body.horizon,
            n_windows=body.n_windows,
            step=body.step,
            quantiles=body.quantiles,
            context_length=body.context_length,
            freq=body.freq,
            group=uuid.uuid4().hex,  # drawn by the server: batch groups never cross callers
            limits=gateway.limits,
            models=len(model_ids),
        )
        note(request, model=",".join(model_ids), series=len(plan.tasks[0]))
        await count_series(request, gateway, len(plan.tasks[0]))
        # Every window of every model at once: the model deployments batch them.
        outcomes = await asyncio.gather(
            *(gateway.forecast(model_id, tasks) for model_id in model_ids for tasks in plan.tasks)
        )
        windows = len(plan.windows)
        results = {
            model_id: outcomes[index * windows : (index + 1) * windows]
            for index, model_id in enumerate(model_ids)
        }
        scored = await asyncio.to_thread(report, plan, results)
        step = body.step or body.horizon
        run_id = None
        if target is not None:
            # In a thread: writing to the store (a file, a database, HTTP) never blocks the loop.
            run_id = await asyncio.to_thread(
                tracking.log_backtest,
                target,
                plan,
                scored,
                step=step,
                tags={"sapheneia.request_id": request.state.request_id},
            )
        forecasts = scored.forecasts
        for column in ("cutoff", "ds"):
            forecasts[column] = forecasts[column].map(lambda t: t.isoformat())
        payload = {
            "metrics": metric_records(scored.metrics),
            "forecasts": forecasts.to_dict(orient="records"),
            "metadata": {
                "models": {m: answered_by(gateway.configs[m]) for m in model_ids},
                "windows": windows,
                "horizon": body.horizon,
                "step": step,
                "series_count": len(plan.tasks[0]),
                "request_id": request.state.request_id,
                "mlflow_run_id": run_id,
            },
        }
        # allow_nan=False: the answer is RFC 8259 JSON or an error, never NaN or Infinity.
        return Response(json.dumps(payload, allow_nan=False), media_type="application/json")

    return router
