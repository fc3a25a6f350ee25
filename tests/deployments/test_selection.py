"""Model 'auto' / 'ensemble' and calibrate on /api/v2/forecast, in process (fixture ``local``:
real statsforecast adapters, no Ray), against references computed here with numpy."""

from __future__ import annotations

import httpx
import numpy as np
import pandas as pd
import pytest

from tests.deployments.conftest import assert_error
from tests.deployments.selection_cases import (
    HORIZON,
    coverage,
    growing_noise,
    numpy_mase,
    post,
    quantiles_in_order,
    records,
    seasonal_and_trend,
)

CANDIDATES = ["seasonal-naive", "auto-ets"]


def check_auto_picks_per_series(client: httpx.Client) -> None:
    data = seasonal_and_trend()
    rows = records(data)
    body = {"horizon": HORIZON, "data": rows, "metric": "MASE", "candidates": CANDIDATES}
    answer = post(client, "/api/v2/forecast", {**body, "model": "auto"})
    chosen = {e["unique_id"]: e for e in answer["selection"]}
    # A pure pattern: seasonal naive is exact (ties go to the candidate named first).
    assert chosen["season"]["selected_model"] == "seasonal-naive"
    assert chosen["season"]["score"] == pytest.approx(0.0, abs=1e-9)
    assert chosen["trend"]["selected_model"] == "auto-ets"
    assert chosen["trend"]["runner_up"] == "seasonal-naive"
    # The scores are MASE of the candidates' own backtest forecasts, on the same windows.
    backtest = post(
        client,
        "/api/v2/backtest",
        {"models": CANDIDATES, "horizon": HORIZON, "n_windows": 2, "data": rows},
    )
    forecasts = pd.DataFrame(backtest["forecasts"])
    expected = {m: numpy_mase(data, forecasts, m) for m in CANDIDATES}
    trend = chosen["trend"]
    assert trend["score"] == pytest.approx(expected["auto-ets"]["trend"], rel=1e-4)
    assert trend["runner_up_score"] == pytest.approx(expected["seasonal-naive"]["trend"], rel=1e-4)
    assert trend["runner_up_score"] == pytest.approx(1.0, abs=0.05)  # a year of growth behind
    # Each row names the model that forecast it, and that model's own forecast is what it says.
    frame = pd.DataFrame(answer["forecast"])
    assert set(frame.groupby("unique_id")["model"].unique().map(tuple)) == {
        ("seasonal-naive",),
        ("auto-ets",),
    }
    alone = post(
        client, "/api/v2/forecast", {"model": "auto-ets", "horizon": HORIZON, "data": rows}
    )
    own = pd.DataFrame(alone["forecast"])
    np.testing.assert_allclose(
        frame[frame["unique_id"] == "trend"]["mean"], own[own["unique_id"] == "trend"]["mean"]
    )


def check_ensemble_is_the_median_of_the_top_k(client: httpx.Client) -> None:
    data = seasonal_and_trend()
    rows = records(data)
    body = {"horizon": HORIZON, "data": rows, "quantiles": [0.1, 0.5, 0.9]}
    answer = post(
        client, "/api/v2/forecast", {**body, "model": "ensemble", "k": 2, "candidates": CANDIDATES}
    )
    assert all(set(e["members"]) == set(CANDIDATES) for e in answer["selection"])
    assert answer["selection"][0]["metric"] == "WQL"  # quantiles asked
    singles = [
        pd.DataFrame(post(client, "/api/v2/forecast", {**body, "model": m})["forecast"])
        for m in CANDIDATES
    ]
    frame = pd.DataFrame(answer["forecast"])
    assert set(frame["model"]) == {"ensemble"}
    np.testing.assert_allclose(
        frame["mean"], np.median(np.stack([s["mean"] for s in singles]), axis=0)
    )
    for column in ("q-0.1", "q-0.9", "median"):
        np.testing.assert_allclose(
            frame[column], np.mean(np.stack([s[column] for s in singles]), axis=0)
        )
    # k = 1 is 'auto' by another name.
    one = post(
        client, "/api/v2/forecast", {**body, "model": "ensemble", "k": 1, "candidates": CANDIDATES}
    )
    auto = post(client, "/api/v2/forecast", {**body, "model": "auto", "candidates": CANDIDATES})
    np.testing.assert_allclose(
        pd.DataFrame(one["forecast"])["mean"], pd.DataFrame(auto["forecast"])["mean"]
    )


def check_calibration_reaches_nominal_coverage(client: httpx.Client) -> None:
    series, futures = growing_noise()
    body = {"model": "auto-ets", "horizon": HORIZON, "data": records(series, "D")}
    body["quantiles"] = [0.1, 0.25, 0.5, 0.75, 0.9]
    raw = post(client, "/api/v2/forecast", body)
    calibrated = post(client, "/api/v2/forecast", {**body, "calibrate": True})
    before = coverage(raw, futures, "q-0.1", "q-0.9")
    after = coverage(calibrated, futures, "q-0.1", "q-0.9")
    assert before < 0.65, before  # fitted on the calm start: far too narrow
    assert abs(after - 0.8) < 0.1, after
    report = calibrated["calibration"]
    # Ten windows a quarter of the horizon (6) apart, rounded down: 1; pooled (20 windows that
    # do not overlap would need 120 observations).
    assert report["windows"] == 10 and report["step"] == 1 and report["pooled"] is True
    interval = {i["level"]: i for i in report["intervals"]}
    assert interval[80.0]["before"] < 0.65 and abs(interval[80.0]["after"] - 0.8) < 0.05
    assert interval[50.0]["after"] == pytest.approx(0.5, abs=0.05)
    levels = {q["level"]: q for q in report["quantiles"]}
    assert levels[0.9]["after"] >= 0.9 and levels[0.1]["after"] <= 0.1 + 1e-9
    assert quantiles_in_order(calibrated)
    # The point forecast is the model's own; only the quantiles (and median) move.
    np.testing.assert_allclose(
        pd.DataFrame(calibrated["forecast"])["mean"], pd.DataFrame(raw["forecast"])["mean"]
    )


def check_calibrated_auto_never_crosses(
    client: httpx.Client, candidates: list[str] | None = None
) -> None:
    rows = records(seasonal_and_trend())
    body: dict[str, object] = {"horizon": HORIZON, "data": rows}
    body["quantiles"] = [0.05, 0.1, 0.3, 0.5, 0.7, 0.9, 0.95]
    if candidates is not None:
        body["candidates"] = candidates
    for model in ("auto", "ensemble"):
        answer = post(client, "/api/v2/forecast", {**body, "model": model, "calibrate": True})
        assert quantiles_in_order(answer)
        frame = pd.DataFrame(answer["forecast"])
        assert (frame["q-0.05"] <= frame["median"]).all()
        assert (frame["median"] <= frame["q-0.95"]).all()
        assert {e["unique_id"] for e in answer["selection"]} == {"season", "trend"}
        assert answer["calibration"]["quantiles"]


def test_auto_picks_per_series(local: httpx.Client) -> None:
    check_auto_picks_per_series(local)


def test_ensemble_is_the_median_of_the_top_k(local: httpx.Client) -> None:
    check_ensemble_is_the_median_of_the_top_k(local)


def test_calibration_reaches_nominal_coverage(local: httpx.Client) -> None:
    check_calibration_reaches_nominal_coverage(local)


def test_calibrated_auto_never_crosses(local: httpx.Client) -> None:
    check_calibrated_auto_never_crosses(local)


def test_default_candidates_are_the_ready_models(local: httpx.Client) -> None:
    rows = records(seasonal_and_trend())
    answer = post(
        client=local,
        path="/api/v2/forecast",
        body={"model": "auto", "horizon": HORIZON, "data": rows},
    )
    assert set(answer["metadata"]["candidates"]) == {"seasonal-naive", "auto-ets"}
    assert answer["metadata"]["model_version"]["id"] == "auto"


@pytest.mark.parametrize(
    ("change", "status", "words"),
    [
        (
            {"candidates": ["seasonal-naive", "nope"]},
            400,
            "'candidates' names unknown models 'nope'",
        ),
        ({"candidates": ["auto"]}, 400, "'candidates' names unknown models 'auto'"),
        ({"k": 0}, 400, "k"),
        ({"windows": 40}, 400, "'windows' is 40, but the shortest series has 72 observations"),
        ({"metric": "RMSE"}, 400, "metric"),
    ],
)
def test_bad_selection_fields(
    local: httpx.Client, change: dict[str, object], status: int, words: str
) -> None:
    body = {"model": "auto", "horizon": HORIZON, "data": records(seasonal_and_trend()), **change}
    error = assert_error(local.post("/api/v2/forecast", json=body), status, "invalid_input")
    assert words in error["message"]
