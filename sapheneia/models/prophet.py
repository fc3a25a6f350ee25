"""Prophet, fitted per series per request, in worker processes with a time limit.

Why processes: Prophet draws its uncertainty samples from numpy's global random state, so seeding it
for reproducible quantiles is only safe where nothing else draws concurrently, and a fit that runs
past ``timeout_s`` can only be stopped by ending its process. The pool lives from ``load`` to
``unload``. Each series gets ``timeout_s`` from the moment a worker starts it; one that runs past it
fails alone, with ``model_timeout``, and is never fitted again: the pool is ended (with the Stan
processes of its fits) and the series that were running beside it or still queued go to a fresh one.

Covariates: ``dynamic_numerical`` columns become Prophet regressors, ``dynamic_categorical`` columns
one 0/1 regressor per category but the first; both need values over the horizon, which a task
carries. Static covariates are constant over a series and say nothing to a per-series fit.
Quantiles: any level, as empirical quantiles of Prophet's posterior predictive samples (the same draws
``Prophet.predict`` turns into ``yhat_lower``/``yhat_upper``); the mean is ``yhat``.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import signal
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from multiprocessing.pool import Pool
from multiprocessing.queues import SimpleQueue
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from sapheneia.errors import FitTimeout, MissingFutureCovariates, SapheneiaError
from sapheneia.models.base import MEDIAN, Capabilities, ModelAdapter, NativeForecast
from sapheneia.tasks import ForecastResult, ForecastTask

logger = logging.getLogger(__name__)

# How often a batch checks its fits against their time limits.
POLL_S = 0.05
# A fit's outcome: (yhat, quantiles), or the error it raised.
Fitted = tuple[np.ndarray, np.ndarray] | BaseException


@dataclass
class ProphetJob:
    """One series to fit: ``history`` has ``ds``, ``y`` and the regressors; ``future`` the same
    without ``y`` for the horizon."""

    series_id: str
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
        series_id=task.series_id,
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


def native_forecast(
    job: ProphetJob, fitted: tuple[np.ndarray, np.ndarray], levels: tuple[float, ...]
) -> NativeForecast:
    mean, quantiles = fitted
    return NativeForecast(
        mean=mean, levels=levels, values=quantiles, covariates_used=bool(job.regressors)
    )


# In a worker process: where it reports that a job has started.
_job_starts: SimpleQueue[tuple[int, float]] | None = None


def init_worker(starts: SimpleQueue[tuple[int, float]]) -> None:
    """Set up a fitting process: its own process group, the start queue, Prophet imported."""
    global _job_starts
    # A process group of its own: ending the group also ends the Stan process a fit runs
    # (cmdstanpy's child), which would otherwise outlive the worker and keep a core busy.
    os.setsid()
    _job_starts = starts
    import prophet  # noqa: F401  (imported here so that no request pays for it)


def run_job(position: int, job: ProphetJob) -> tuple[np.ndarray, np.ndarray]:
    """A job in a worker: report its start (its time limit counts from now), then fit."""
    assert _job_starts is not None
    _job_starts.put((position, time.time()))
    return fit_and_forecast(job)


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
    # Workers report (position, time.time()) here as each job starts: a time limit counts from then.
    _started: SimpleQueue[tuple[int, float]] | None = None

    def _load_weights(self, checkpoint: Path | None) -> None:
        self._pool()  # its workers import Prophet now, not on the first request

    def _unload_weights(self) -> None:
        self._end_pool()

    def _pool(self) -> Pool:
        if self.pool is None:
            # spawn, not fork: the serving process has threads, and a forked copy of their locks
            # can deadlock the child.
            context = multiprocessing.get_context("spawn")
            self._started = context.SimpleQueue()
            self.pool = context.Pool(
                self.options.workers, initializer=init_worker, initargs=(self._started,)
            )
        return self.pool

    def _end_pool(self) -> None:
        pool, self.pool = self.pool, None
        if pool is None:
            return
        # Pool keeps its worker processes in _pool; there is no public list of them.
        groups = [worker.pid for worker in pool._pool]  # type: ignore[attr-defined]
        # The pool first, by its own means: killing an idle worker outright could leave the task
        # queue's lock held, and terminate() would wait for it forever.
        pool.terminate()
        pool.join()
        # Then whatever the workers left in their process groups: a Stan run outlives its worker.
        for group in groups:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(group, signal.SIGKILL)
        self._started = None

    def _forecast_group(self, group: list[ForecastTask]) -> list[ForecastResult | SapheneiaError]:
        # Every series gets its own outcome here, so the base class never re-runs a batch one by
        # one (which, after a timeout, would give each series the full time limit again).
        levels = tuple(sorted({*group[0].quantiles, MEDIAN}))
        options = self.options
        jobs: dict[int, ProphetJob] = {}
        outcomes: dict[int, ForecastResult | SapheneiaError] = {}
        for index, task in enumerate(group):
            try:
                jobs[index] = prophet_job(
                    task, levels, options.seed, options.uncertainty_samples, options.prophet
                )
            except SapheneiaError as error:
                outcomes[index] = error
        for index, fitted in self._fit(jobs).items():
            task, job = group[index], jobs[index]
            if isinstance(fitted, SapheneiaError):
                outcomes[index] = fitted
            elif isinstance(fitted, BaseException):
                logger.error("model %s failed on series %s: %r", self.name, task.series_id, fitted)
                outcomes[index] = SapheneiaError(f"model '{self.name}' failed on this series")
            else:
                outcomes[index] = self._to_result(task, native_forecast(job, fitted, levels))
        return [outcomes[index] for index in range(len(group))]

    def _predict(
        self, tasks: Sequence[ForecastTask], levels: tuple[float, ...]
    ) -> list[NativeForecast]:
        """The whole batch or its first error (the contract; serving goes through _forecast_group)."""
        options = self.options
        jobs = {
            index: prophet_job(
                task, levels, options.seed, options.uncertainty_samples, options.prophet
            )
            for index, task in enumerate(tasks)
        }
        natives = []
        for index, fitted in sorted(self._fit(jobs).items()):
            if isinstance(fitted, BaseException):
                raise fitted
            natives.append(native_forecast(jobs[index], fitted, levels))
        return natives

    def _fit(self, jobs: dict[int, ProphetJob]) -> dict[int, Fitted]:
        """Fit every job, each within ``timeout_s`` of its own start.

        A fit past its limit can only be stopped by ending the pool, which also ends the fits running
        beside it: those, and the jobs still queued, go to a fresh pool. A timed-out job is never
        run again, so a batch takes at most about one time limit per timed-out series more than
        its fits take.
        """
        limit = self.options.timeout_s
        results: dict[int, Fitted] = {}
        todo = list(jobs)
        while todo:
            outcomes = self._fit_round([jobs[i] for i in todo], limit)
            for index, outcome in zip(todo, outcomes, strict=True):
                if outcome is not None:
                    results[index] = outcome
            todo = [i for i in todo if i not in results]
        return results

    def _fit_round(self, jobs: list[ProphetJob], limit: float) -> list[Fitted | None]:
        """Outcomes of ``jobs`` in order; None for a job stopped because another one timed out."""
        pool, started = self._pool(), self._started
        assert started is not None
        while not started.empty():  # starts reported by an earlier batch's jobs
            started.get()
        pending = [pool.apply_async(run_job, (position, job)) for position, job in enumerate(jobs)]
        start_times: dict[int, float] = {}
        outcomes: list[Fitted | None] = [None] * len(jobs)
        while True:
            while not started.empty():
                position, at = started.get()
                start_times[position] = at
            late = False
            for position, result in enumerate(pending):
                if outcomes[position] is not None:
                    continue
                if result.ready():
                    try:
                        outcomes[position] = result.get()
                    except Exception as error:
                        outcomes[position] = error
                elif position in start_times and time.time() - start_times[position] > limit:
                    outcomes[position] = FitTimeout(
                        f"Prophet did not finish fitting series '{jobs[position].series_id}' "
                        f"within {limit:g} s; send a shorter history, or raise "
                        f"`options.timeout_s` of '{self.name}'"
                    )
                    late = True
            if late:
                self._end_pool()  # the next round, if any, starts a fresh pool
                return outcomes
            if all(outcome is not None for outcome in outcomes):
                return outcomes
            time.sleep(POLL_S)
