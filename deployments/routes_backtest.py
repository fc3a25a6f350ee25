"""``POST /api/v2/backtest``: rolling-origin evaluation of served models on the caller's data."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pandas as pd
from fastapi import APIRouter, Request, Response

from deployments.deps import Caller, Gateway, read_body
from deployments.schemas import BacktestRequest, parse_body
from sapheneia.data import load_table
from sapheneia.evaluation import line_up, rolling_windows, score, window_tasks


def backtest_router() -> APIRouter:
    router = APIRouter(prefix="/api/v2", tags=["v2 (unified)"])

    @router.post(
        "/backtest",
        openapi_extra={
            "requestBody": {
                "content": {
                    "application/json": {"schema": {"$ref": "#/components/schemas/BacktestRequest"}}
                },
                "required": True,
            }
        },
    )
    async def backtest(request: Request, gateway: Gateway, _: Caller) -> Response:
        """Rolling-origin backtest of one or more models: MASE, sMAPE, WQL and 80% coverage."""
        raw = await read_body(request, gateway.limits.max_bytes)
        body = parse_body(BacktestRequest, raw)
        model_ids = [gateway.resolve(m) for m in body.models]
        source: Any = body.data if body.data is not None else body.source
        frame = await asyncio.to_thread(load_table, source, gateway.limits)
        roles = body.roles(frame.columns)
        windows = await asyncio.to_thread(
            rolling_windows,
            frame,
            roles,
            horizon=body.horizon,
            n_windows=body.n_windows,
            step=body.step,
        )
        tasks = [
            await asyncio.to_thread(
                window_tasks,
                window,
                roles,
                horizon=body.horizon,
                quantiles=body.quantiles,
                context_length=body.context_length,
                freq=body.freq,
                group=request.state.request_id,
            )
            for window in windows
        ]
        # Every window of every model at once: the model deployments batch them.
        calls = [
            gateway.forecast(model_id, window_tasks_)
            for model_id in model_ids
            for window_tasks_ in tasks
        ]
        outcomes = await asyncio.gather(*calls)
        lined = [
            line_up(windows[index % len(windows)], model_ids[index // len(windows)], results)
            for index, results in enumerate(outcomes)
        ]
        forecasts = pd.concat(lined, ignore_index=True)
        metrics = await asyncio.to_thread(score, forecasts, windows, tasks[0][0].freq)
        for column in ("cutoff", "ds"):
            forecasts[column] = forecasts[column].map(lambda t: t.isoformat())
        payload = {
            "metrics": metrics.round(6).to_dict(orient="records"),
            "forecasts": forecasts.to_dict(orient="records"),
            "metadata": {
                "windows": len(windows),
                "horizon": body.horizon,
                "step": body.step or body.horizon,
                "series_count": len(tasks[0]),
                "request_id": request.state.request_id,
            },
        }
        return Response(json.dumps(payload), media_type="application/json")

    return router
