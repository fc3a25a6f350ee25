"""Prophet adapter against a direct Prophet fit on AirPassengers (statsforecast's packaged copy).

Tolerances: ``yhat`` must match to 1e-9 relative (same data, same deterministic optimiser). The
quantiles come from the same seeded posterior draws Prophet uses for ``yhat_lower``/``yhat_upper``, so
they match those to 1e-6 relative (only the percentile arithmetic differs), not just within sampling
error.
"""

from __future__ import annotations

import contextlib
import dataclasses
import re
import threading
import time
from collections.abc import Iterator, Sequence

import numpy as np
import pandas as pd
import psutil
import pytest

from sapheneia.config import ModelConfig
from sapheneia.models import create_adapter
from sapheneia.models.base import ModelAdapter
from sapheneia.tasks import ForecastResult, ForecastTask

prophet = pytest.importorskip("prophet", reason="prophet not installed")

HORIZON = 12
HISTORY = 132
SEED = 7
SAMPLES = 300


def air_passengers() -> pd.DataFrame:
    from statsforecast.utils import AirPassengersDF

    return AirPassengersDF[["ds", "y"]].reset_index(drop=True)


def make_task(
    series_id: str = "air",
    *,
    group: str = "caller-a",
    quantiles: tuple[float, ...] = (0.1, 0.5, 0.9),
    dynamic_numerical: dict[str, np.ndarray] | None = None,
    dynamic_categorical: dict[str, np.ndarray] | None = None,
    scale: float = 1.0,
) -> ForecastTask:
    frame = air_passengers()
    index = pd.DatetimeIndex(frame["ds"])
    return ForecastTask(
        series_id=series_id,
        context=frame["y"].to_numpy()[:HISTORY] * scale,
        horizon=HORIZON,
        quantiles=quantiles,
        freq="ME",
        timestamps=index[:HISTORY],
        future_timestamps=index[HISTORY : HISTORY + HORIZON],
        dynamic_numerical=dynamic_numerical or {},
        dynamic_categorical=dynamic_categorical or {},
        group=group,
    )


def only(results: Sequence[ForecastResult | Exception]) -> list[ForecastResult]:
    """The results, failing the test on any error in them."""
    assert all(isinstance(result, ForecastResult) for result in results), results
    return [result for result in results if isinstance(result, ForecastResult)]


def direct_prophet(regressor: np.ndarray | None = None) -> pd.DataFrame:
    """Prophet used the documented way: fit, seed, predict (which draws the interval samples)."""
    frame = air_passengers().iloc[: HISTORY + HORIZON].copy()
    model = prophet.Prophet(uncertainty_samples=SAMPLES, interval_width=0.8)
    if regressor is not None:
        frame["promo"] = regressor
        model.add_regressor("promo")
    model.fit(frame.iloc[:HISTORY])
    np.random.seed(SEED)
    return model.predict(frame.iloc[HISTORY:].drop(columns="y"))


@pytest.fixture(scope="module")
def adapter() -> Iterator[ModelAdapter]:
    model = create_adapter(
        ModelConfig(
            id="prophet",
            adapter="prophet",
            options={"seed": SEED, "uncertainty_samples": SAMPLES, "timeout_s": 60},
        )
    )
    model.load()
    yield model
    model.unload()


def test_matches_a_direct_prophet_fit_with_the_same_seed(adapter: ModelAdapter) -> None:
    expected = direct_prophet()
    result = only(adapter.forecast([make_task()]))[0]
    np.testing.assert_allclose(result.mean, expected["yhat"], rtol=1e-9)
    np.testing.assert_allclose(result.quantiles[0.1], expected["yhat_lower"], rtol=1e-6)
    np.testing.assert_allclose(result.quantiles[0.9], expected["yhat_upper"], rtol=1e-6)
    assert result.interpolated == ()
    assert not result.covariates_used


def test_is_reproducible_and_independent_of_other_callers(adapter: ModelAdapter) -> None:
    first = only(adapter.forecast([make_task(quantiles=(0.025, 0.5, 0.975))]))[0]
    batched = only(
        adapter.forecast(
            [
                make_task("other", group="caller-b", scale=3.0, quantiles=(0.025, 0.5, 0.975)),
                make_task(quantiles=(0.025, 0.5, 0.975)),
            ]
        )
    )[1]
    assert first.interpolated == ()  # any level is native
    for level in (0.025, 0.5, 0.975):
        np.testing.assert_array_equal(batched.quantiles[level], first.quantiles[level])
    np.testing.assert_array_equal(batched.mean, first.mean)


def test_dynamic_covariates_are_regressors(adapter: ModelAdapter) -> None:
    steps = np.arange(HISTORY + HORIZON)
    promo = np.where(steps % 5 == 0, 40.0, 0.0) + steps * 0.1
    expected = direct_prophet(regressor=promo)
    result = only(adapter.forecast([make_task(dynamic_numerical={"promo": promo})]))[0]
    assert result.covariates_used
    np.testing.assert_allclose(result.mean, expected["yhat"], rtol=1e-9)

    season = np.where(steps % 12 < 6, "summer", "winter").astype(object)
    with_category = only(adapter.forecast([make_task(dynamic_categorical={"half": season})]))[0]
    assert with_category.covariates_used


def test_missing_future_covariate_fails_only_that_series(adapter: ModelAdapter) -> None:
    promo = np.ones(HISTORY + HORIZON)
    promo[-1] = np.nan
    broken, fine = adapter.forecast(
        [make_task("broken", dynamic_numerical={"promo": promo}), make_task("fine")]
    )
    assert getattr(broken, "code", None) == "missing_future_covariates"
    assert "covariate 'promo' of series 'broken'" in str(broken)
    assert isinstance(fine, ForecastResult)


def test_fit_over_the_time_limit_fails_with_the_fix_and_the_pool_recovers() -> None:
    model = create_adapter(
        ModelConfig(
            id="prophet-slow",
            adapter="prophet",
            options={"timeout_s": 0.001, "uncertainty_samples": 50},
        )
    )
    model.load()
    try:
        (outcome,) = model.forecast([make_task()])
        assert getattr(outcome, "code", None) == "model_timeout"
        assert "raise `options.timeout_s` of 'prophet-slow'" in str(outcome)
        model.options.timeout_s = 60
        assert isinstance(model.forecast([make_task()])[0], ForecastResult)
    finally:
        model.unload()


def stan_processes() -> dict[int, str]:
    """Stan programs started under this test process (cmdstanpy runs `prophet_model.bin`), by pid."""
    found = {}
    for proc in psutil.Process().children(recursive=True):
        with contextlib.suppress(psutil.NoSuchProcess):
            command = " ".join(proc.cmdline())
            if "prophet_model" in command:
                found[proc.pid] = command
    return found


def children() -> set[int]:
    """Pids of this process's descendants, but for multiprocessing's resource tracker: one per
    process, started with the first pool and kept until the process exits. Pids, not command
    lines: a Ray worker of the session cluster retitles itself with each call it runs."""
    found = set()
    for proc in psutil.Process().children(recursive=True):
        with contextlib.suppress(psutil.NoSuchProcess):
            command = " ".join(proc.cmdline())
            if "resource_tracker" not in command:
                found.add(proc.pid)
    return found


def running(pid: int) -> str:
    """What runs as ``pid`` (empty once it has ended; a zombie has ended)."""
    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return ""
        return f"{proc.status()} ppid={proc.ppid()} {' '.join(proc.cmdline())[:200]}"
    except psutil.NoSuchProcess:
        return ""


def test_a_timed_out_batch_is_not_rerun_and_leaves_no_process_behind() -> None:
    limit = 5.0
    # MCMC sampling (Stan processes, one per chain) takes far longer than the limit on AirPassengers.
    model = create_adapter(
        ModelConfig(
            id="prophet-mcmc",
            adapter="prophet",
            options={
                "timeout_s": limit,
                "uncertainty_samples": 50,
                "prophet": {"mcmc_samples": 4000},
            },
        )
    )
    before = children()
    model.load()
    seen_stan: dict[int, str] = {}
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            seen_stan.update(stan_processes())
            time.sleep(0.1)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        outcomes = model.forecast([make_task("one"), make_task("two")])
    finally:
        stop.set()
        watcher.join()
    assert [getattr(o, "code", None) for o in outcomes] == ["model_timeout", "model_timeout"]
    assert "series 'one' within 5 s" in str(outcomes[0])
    assert seen_stan, "the fits never reached Stan: the test checks nothing"
    # Each Stan run (all its chains) reads its own data file: one run per series, none re-run
    # after the timeout.
    fits = {re.search(r"data file=(\S+)", command).group(1) for command in seen_stan.values()}  # type: ignore[union-attr]
    assert len(fits) == 2, fits
    # Nothing outlives the timeout: no Stan program (even one orphaned elsewhere), no worker.
    time.sleep(0.5)
    assert [running(pid) for pid in seen_stan if running(pid)] == []
    assert stan_processes() == {}
    left = children() - before
    assert not left, {pid: running(pid) for pid in left}
    model.unload()


def test_a_series_prophet_cannot_fit_fails_alone_and_the_rest_are_served() -> None:
    model = create_adapter(
        ModelConfig(
            id="prophet-queue",
            adapter="prophet",
            options={"timeout_s": 60, "uncertainty_samples": 50},
        )
    )
    model.load()
    try:
        # A series that cannot be fitted (all-NaN history) fails alone; the rest are served.
        broken = make_task("broken")
        broken = dataclasses.replace(broken, context=np.full(HISTORY, np.nan))
        outcomes = model.forecast([make_task("first"), broken, make_task("last")])
        assert isinstance(outcomes[0], ForecastResult) and isinstance(outcomes[2], ForecastResult)
        assert "failed on this series" in str(outcomes[1])
    finally:
        model.unload()
