"""Model 'auto' / 'ensemble' and calibrate over HTTP on the real Serve instance: the candidates'
backtests go through the model deployments, foundation models (random-weight test checkpoints)
among them."""

from __future__ import annotations

import httpx
import pandas as pd
import pytest

from tests.deployments import test_selection
from tests.deployments.selection_cases import (
    HORIZON,
    numpy_mase,
    post,
    quantiles_in_order,
    records,
    seasonal_and_trend,
)


def test_auto_picks_per_series(client: httpx.Client) -> None:
    test_selection.check_auto_picks_per_series(client)


def test_ensemble_is_the_median_of_the_top_k(client: httpx.Client) -> None:
    test_selection.check_ensemble_is_the_median_of_the_top_k(client)


def test_calibration_reaches_nominal_coverage(client: httpx.Client) -> None:
    test_selection.check_calibration_reaches_nominal_coverage(client)


def test_calibrated_auto_never_crosses(client: httpx.Client) -> None:
    # Named candidates: every served model, ten windows each, is more than a test needs.
    candidates = ["seasonal-naive", "auto-ets", "chronos-bolt"]
    test_selection.check_calibrated_auto_never_crosses(client, candidates)


def test_auto_with_a_foundation_model(client: httpx.Client) -> None:
    data = seasonal_and_trend()
    rows = records(data)
    candidates = ["seasonal-naive", "chronos-bolt", "auto-ets"]
    body = {"horizon": HORIZON, "data": rows, "metric": "MASE", "candidates": candidates}
    answer = post(client, "/api/v2/forecast", {**body, "model": "auto", "calibrate": True})
    chosen = {e["unique_id"]: e for e in answer["selection"]}
    assert chosen["season"]["selected_model"] == "seasonal-naive"
    assert quantiles_in_order(answer)
    backtest = post(
        client,
        "/api/v2/backtest",
        {"models": candidates, "horizon": HORIZON, "n_windows": 10, "step": 1, "data": rows},
    )
    expected = numpy_mase(data, pd.DataFrame(backtest["forecasts"]), "chronos-bolt")
    for entry in chosen.values():
        scores = {
            entry["selected_model"]: entry["score"],
            entry["runner_up"]: entry["runner_up_score"],
        }
        if "chronos-bolt" in scores:
            assert scores["chronos-bolt"] == pytest.approx(expected[entry["unique_id"]], rel=1e-4)


def test_default_candidates_leave_out_unavailable_models(client: httpx.Client) -> None:
    body = {"model": "auto", "horizon": HORIZON, "data": records(seasonal_and_trend())}
    answer = post(client, "/api/v2/forecast", body)
    used = set(answer["metadata"]["candidates"])
    assert {"seasonal-naive", "auto-ets", "chronos-bolt"} <= used
    assert "chronos-bolt-tiny" not in used  # offline without weights: unavailable
    assert {e["unique_id"] for e in answer["selection"]} == {"season", "trend"}
