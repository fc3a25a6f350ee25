"""Prophet, fitted per series per request, in worker processes with a time limit.

Why processes: Prophet draws its uncertainty samples from numpy's global random state, so seeding it
for reproducible quantiles is only safe where nothing else draws concurrently, and a fit that runs
past ``timeout_s`` can only be stopped by ending its process. The pool lives from ``load`` to
``unload``; a timeout ends it and the next call starts a fresh one.

Covariates: ``dynamic_numerical`` columns become Prophet regressors, ``dynamic_categorical`` columns
one 0/1 regressor per category but the first; both need values over the horizon, which a task
carries. Static covariates are constant over a series and say nothing to a per-series fit.
Quantiles: any level, as empirical quantiles of Prophet's posterior predictive samples (the same draws
``Prophet.predict`` turns into ``yhat_lower``/``yhat_upper``); the mean is ``yhat``.
"""

from __future__ import annotations

import logging
import math
import multiprocessing
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from multiprocessing.pool import Pool
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from sapheneia.errors import FitTimeout, MissingFutureCovariates
from sapheneia.models.base import Capabilities, ModelAdapter, NativeForecast
from sapheneia.tasks import ForecastTask


@dataclass
class ProphetJob:
    """One series to fit: ``history`` has ``ds``, ``y`` and the regressors; ``future`` the same
    without ``y`` for the horizon."""

    history: pd.DataFrame
    future: pd.DataFrame
    regressors: list[str]
    levels: tuple[float, ...]
    seed: int
    uncertainty_samples: int
    prophet_kwargs: dict[str, Any] = field(default_factory=dict)


def prophet_job(
    task: ForecastTask,
    levels: tuple[float, ...],
    seed: int,
    uncertainty_samples: int,
    prophet_kwargs: dict[str, Any],
) -> ProphetJob:
    """Build the history and future frames for one task, with its covariates as regressors."""
    history_length = len(task.context)
    end = history_length + task.horizon
    columns: dict[str, np.ndarray] = {}
    for name, values in task.dynamic_numerical.items():
        columns[name] = np.asarray(values[:end], dtype=float)
    for name, values in task.dynamic_categorical.items():
        labels = pd.Series(np.asarray(values[:end])).astype(str)
        for category in sorted(labels.unique())[1:]:
            columns[f"{name}={category}"] = (labels == category).to_numpy(dtype=float)
    for name, column in columns.items():
        if np.isnan(column).any():
            raise MissingFutureCovariates(
                f"covariate '{name.split('=')[0]}' of series '{task.series_id}' has missing values; "
                "Prophet needs every value over the history and the horizon"
            )
    # Neutral names: Prophet reserves some ('trend', 'yearly', ...); a column constant over the
    # history has no variance to standardise by and carries nothing, so it is left out.
    kept = [c for c in columns.values() if np.ptp(c[:history_length]) > 0]
    regressors = [f"regressor_{i}" for i in range(len(kept))]
    frame = pd.DataFrame(dict(zip(regressors, kept, strict=True)))
    # Prophet refuses time-zone-aware timestamps.
    stamps = pd.DatetimeIndex(task.timestamps.append(task.future_timestamps)[:end])
    frame.insert(0, "ds", stamps.tz_localize(None))
    history = frame.iloc[:history_length].assign(y=np.asarray(task.context, dtype=float))
    return ProphetJob(
        history=history,
        future=frame.iloc[history_length:].reset_index(drop=True),
        regressors=regressors,
        levels=levels,
        seed=seed,
        uncertainty_samples=uncertainty_samples,
        prophet_kwargs=prophet_kwargs,
    )


def fit_and_forecast(job: ProphetJob) -> tuple[np.ndarray, np.ndarray]:
    """Fit Prophet on ``job.history`` and forecast ``job.future`` (runs in a worker process).

    Returns ``yhat`` ``(horizon,)`` and the quantiles ``(n_levels, horizon)``.
    """
    from prophet import Prophet

    for name in ("cmdstanpy", "prophet"):
        logging.getLogger(name).setLevel(logging.WARNING)
    model = Prophet(uncertainty_samples=job.uncertainty_samples, **job.prophet_kwargs)
    for name in job.regressors:
        model.add_regressor(name)
    model.fit(job.history)
    np.random.seed(job.seed)
    samples = model.predictive_samples(job.future)["yhat"]  # (horizon, n_samples)
    quantiles = np.nanpercentile(samples, [100 * level for level in job.levels], axis=1)
    # yhat needs no sampling; turning it off skips a second round of draws.
    model.uncertainty_samples = 0
    mean = model.predict(job.future)["yhat"].to_numpy()
    return mean, quantiles


def warm_up() -> None:
    """Import Prophet in a fresh worker so the first request does not pay for it."""
    import prophet  # noqa: F401


class ProphetOptions(BaseModel):
    """``options:`` of a Prophet model config."""

    model_config = ConfigDict(extra="forbid")

    seed: int = Field(default=0, description="numpy seed of the uncertainty draws.")
    timeout_s: float = Field(default=60.0, gt=0, description="Fit time limit per series.")
    workers: int = Field(default=1, ge=1, description="Fitting processes.")
    uncertainty_samples: int = Field(default=1000, ge=1, description="Posterior draws.")
    prophet: dict[str, Any] = Field(
        default_factory=dict,
        description="Keyword arguments for Prophet(...), e.g. seasonality_mode: multiplicative.",
    )


class ProphetAdapter(ModelAdapter):
    """Prophet adapter; the fitting processes live from ``load`` to ``unload``."""

    Options = ProphetOptions
    options: ProphetOptions
    requires = ("prophet",)
    extra = "prophet"
    capabilities = Capabilities(covariates=True, native_quantiles=None, licence="MIT")
    pool: Pool | None = None

    def _load_weights(self, checkpoint: Path | None) -> None:
        self._pool().apply_async(warm_up)

    def _unload_weights(self) -> None:
        if self.pool is not None:
            self.pool.terminate()
            self.pool = None

    def _pool(self) -> Pool:
        if self.pool is None:
            # spawn, not fork: the serving process has threads, and a forked copy of their locks
            # can deadlock the child.
            self.pool = multiprocessing.get_context("spawn").Pool(self.options.workers)
        return self.pool

    def _predict(
        self, tasks: Sequence[ForecastTask], levels: tuple[float, ...]
    ) -> list[NativeForecast]:
        options = self.options
        jobs = [
            prophet_job(task, levels, options.seed, options.uncertainty_samples, options.prophet)
            for task in tasks
        ]
        pool = self._pool()
        pending = [pool.apply_async(fit_and_forecast, (job,)) for job in jobs]
        budget_s = options.timeout_s * math.ceil(len(jobs) / options.workers)
        deadline = time.monotonic() + budget_s
        outputs = []
        try:
            for result in pending:
                outputs.append(result.get(timeout=max(0.0, deadline - time.monotonic())))
        except multiprocessing.TimeoutError:
            # The only way to stop a running fit; the next call starts a fresh pool.
            pool.terminate()
            self.pool = None
            raise FitTimeout(
                f"Prophet did not finish fitting {len(jobs)} series within {budget_s:g} s "
                f"({options.timeout_s:g} s per series); send a shorter history or fewer series, or "
                f"raise `options.timeout_s` of '{self.name}'"
            ) from None
        return [
            NativeForecast(
                mean=mean,
                levels=levels,
                values=quantiles,
                covariates_used=bool(job.regressors),
            )
            for job, (mean, quantiles) in zip(jobs, outputs, strict=True)
        ]
