"""``model: "auto" | "ensemble"`` and ``calibrate: true`` on ``/api/v2/forecast``: the backtests
that feed them, sent to the model deployments as one batch each, and what they add to the answer.

The choosing and the conformalising are ``sapheneia.selection`` and ``sapheneia.calibration``;
this module only finds the candidates, runs their backtests through the Gateway and applies the
time budget.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from deployments.gateway import Gateway
from deployments.schemas import ForecastRequest
from sapheneia import calibration, selection
from sapheneia.data import ColumnRoles
from sapheneia.data.table import SERIES, TARGET, prepare
from sapheneia.errors import InvalidInput, RequestTimeout, SapheneiaError
from sapheneia.evaluation import BacktestPlan, plan_backtest
from sapheneia.selection import Selection
from sapheneia.tasks import ForecastResult, ForecastTask


@dataclass
class Chosen:
    """The forecasts to answer with, and the blocks they add to the response."""

    results: list[ForecastResult]
    models: list[str] | None = None  # per result: the model that forecast it
    extra: dict[str, Any] = field(default_factory=dict)
    candidates: list[str] = field(default_factory=list)
    plan: BacktestPlan | None = None
    selection: Selection | None = None  # what 'auto' / 'ensemble' chose, and why


def _shortest_history(frame: pd.DataFrame, roles: ColumnRoles) -> int:
    table = prepare(frame, roles)
    return int(table[table[TARGET].notna()].groupby(SERIES, sort=False).size().min())


async def default_candidates(gateway: Gateway, tasks: list[ForecastTask]) -> list[str]:
    """Every ready model that takes these tasks: covariates, horizon and context it supports."""
    states = await gateway.model_states(max_age_s=1.0)
    horizon = tasks[0].horizon
    covariates = any(t.has_covariates for t in tasks)
    past_only = any(t.past_only_covariates for t in tasks)
    fits = []
    for model_id in sorted(gateway.configs):
        state = states.get(model_id)
        if state is None or state.status != "ready":
            continue
        caps = state.capabilities
        if covariates and not caps.get("covariates"):
            continue
        if past_only and not caps.get("past_covariates"):
            continue
        if caps.get("max_horizon") is not None and horizon > caps["max_horizon"]:
            continue
        fits.append(model_id)
    if not fits:
        raise InvalidInput(
            "no ready model supports this request for 'auto'/'ensemble'; name 'candidates' or "
            "see GET /api/v2/models"
        )
    return fits


def _plan(
    body: ForecastRequest, frame: pd.DataFrame, roles: ColumnRoles, gateway: Gateway, models: int
) -> BacktestPlan:
    shortest = _shortest_history(frame, roles)
    if body.calibrate:
        step = calibration.window_step(body.horizon, shortest, body.windows)
        default = calibration.DEFAULT_WINDOWS
    else:
        step, default = body.horizon, selection.DEFAULT_WINDOWS
    windows = selection.check_windows(shortest, body.horizon, step, body.windows, default)
    return plan_backtest(
        frame,
        roles,
        horizon=body.horizon,
        n_windows=windows,
        step=step,
        quantiles=body.quantiles,
        context_length=body.context_length,
        freq=body.freq,
        group=uuid.uuid4().hex,  # drawn by the server: batch groups never cross callers
        limits=gateway.limits,
        models=models,
    )


async def _run_candidate(
    gateway: Gateway, model_id: str, plan: BacktestPlan, tasks: list[ForecastTask]
) -> tuple[list[list[ForecastResult]], list[ForecastResult]]:
    # Every window and the forecast itself at once: the deployment batches them together.
    outcomes = await asyncio.gather(
        *(gateway.forecast(model_id, window) for window in plan.tasks),
        gateway.forecast(model_id, tasks),
    )
    return list(outcomes[:-1]), outcomes[-1]


async def choose(
    gateway: Gateway,
    body: ForecastRequest,
    frame: pd.DataFrame,
    roles: ColumnRoles,
    tasks: list[ForecastTask],
) -> Chosen:
    """The forecasts for a request that selects (``auto``, ``ensemble``) or calibrates."""
    selecting = body.model in selection.SELECTORS
    if selecting:
        if body.candidates is not None:
            selection.require_known(body.candidates, sorted({*gateway.configs, *gateway.aliases}))
            candidates = [gateway.resolve(c) for c in body.candidates]
            explicit = True
        else:
            candidates = await default_candidates(gateway, tasks)
            explicit = False
    else:
        candidates, explicit = [gateway.resolve(body.model)], True
    plan = await asyncio.to_thread(_plan, body, frame, roles, gateway, len(candidates))
    runs = {m: asyncio.ensure_future(_run_candidate(gateway, m, plan, tasks)) for m in candidates}
    budget = gateway.options.selection_budget_s if selecting else None
    await asyncio.wait(runs.values(), timeout=budget)
    done: dict[str, tuple[list[list[ForecastResult]], list[ForecastResult]]] = {}
    left_out: dict[str, str] = {}
    for model_id, run in runs.items():
        if not run.done():
            run.cancel()
            left_out[model_id] = f"over the {budget:g} s selection budget"
            continue
        error = run.exception()
        if error is None:
            done[model_id] = run.result()
        elif explicit or not isinstance(error, SapheneiaError):
            for other in runs.values():
                other.cancel()
            raise error
        else:
            left_out[model_id] = str(error)
    if not done:
        if any("budget" in why for why in left_out.values()):
            raise RequestTimeout(
                f"no candidate finished its backtest within the {budget:g} s selection budget "
                "(SAPHENEIA_SELECTION_BUDGET_S); name fewer 'candidates' or ask for fewer 'windows'"
            )
        raise InvalidInput(f"no candidate could forecast this request: {left_out}")
    extra: dict[str, Any] = {}
    chosen: Selection | None = None
    if selecting:
        chosen = await asyncio.to_thread(
            selection.select,
            plan,
            {m: windows for m, (windows, _) in done.items()},
            {m: final for m, (_, final) in done.items()},
            metric=selection.default_metric(body.quantiles, body.metric),
            mode=body.model,
            k=body.k,
        )
        results, windows, models = chosen.final, chosen.windows, chosen.models
        extra["selection"] = chosen.entries
        if left_out:
            extra["candidates_left_out"] = left_out
    else:
        windows, results = done[candidates[0]]
        models = None
    if body.calibrate:
        calibrated = await asyncio.to_thread(calibration.calibrate, plan, windows, results)
        results = calibrated.final
        extra["calibration"] = calibrated.report
    return Chosen(results, models, extra, list(done), plan, chosen)
