"""bench/evaluate.py on a slice of its panel, and its scores against hand-computed numbers and
utilsforecast, so the evaluation report cannot rot between runs."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from utilsforecast import losses

from bench import evaluate, scores


def test_mase_by_hand_and_as_utilsforecast_computes_it() -> None:
    # In-sample naive errors |2-1|, |4-2|, |7-4| average 2; forecast errors 1 and 2 average 1.5.
    history, actual, forecast = np.array([1.0, 2, 4, 7]), np.array([3.0, 5]), np.array([2.0, 7])
    assert scores.mase(actual, forecast, history, season=1) == pytest.approx(0.75)
    frame = pd.DataFrame({"unique_id": "a", "ds": [4, 5], "y": actual, "m": forecast})
    train = pd.DataFrame({"unique_id": "a", "ds": [0, 1, 2, 3], "y": history})
    reference = losses.mase(frame, ["m"], 1, train)["m"].iloc[0]
    assert scores.mase(actual, forecast, history, season=1) == pytest.approx(reference)
    assert math.isnan(scores.mase(actual, forecast, np.array([5.0, 5, 5]), season=1))


def test_wql_by_hand_and_as_utilsforecast_computes_it() -> None:
    actual = np.array([10.0, 20.0])
    levels = {0.1: np.array([8.0, 25.0]), 0.9: np.array([12.0, 18.0])}
    # Pinball at 0.1: 0.1*2 + 0.9*5 = 4.7; at 0.9: 0.1*2 + 0.9*2 = 2.0; 2 * mean 3.35 / 30.
    assert scores.wql(actual, levels) == pytest.approx(2 * 3.35 / 30)
    frame = pd.DataFrame(
        {"unique_id": "a", "ds": [0, 1], "y": actual, "q1": levels[0.1], "q9": levels[0.9]}
    )
    reference = losses.scaled_crps(frame, {"m": ["q1", "q9"]}, np.array([0.1, 0.9]))["m"]
    assert scores.wql(actual, levels) == pytest.approx(reference.iloc[0])


def test_relative_geomean_and_precision_recall_by_hand() -> None:
    # Ratios 0.5 and 2 (geometric mean 1); a zero baseline and a NaN score are left out.
    assert scores.relative_geomean([1.0, 4.0, 3.0, np.nan], [2.0, 2.0, 0.0, 1.0]) == 1.0
    flagged = np.array([True, True, False, True, False])
    injected = np.array([True, False, False, True, True])
    assert scores.precision_recall(flagged, injected) == (2 / 3, 2 / 3)
    assert math.isnan(scores.precision_recall(np.zeros(5, bool), injected)[0])
    assert scores.covered(np.array([1.0, 5]), np.array([0.0, 0]), np.array([1.0, 4])).tolist() == [
        True,
        False,
    ]


@pytest.fixture(scope="module")
def panel() -> pd.DataFrame:
    return evaluate.load_panel(series=3, history=36)


def test_panel_is_the_named_slice_held_out_at_the_end(panel: pd.DataFrame) -> None:
    assert panel["unique_id"].nunique() == 3
    assert panel.groupby("unique_id").size().eq(36 + evaluate.HORIZON).all()
    history, held_out = evaluate.split_held_out(panel)
    for _, rows in held_out.groupby("unique_id"):
        uid = rows["unique_id"].iloc[0]
        assert len(rows) == evaluate.HORIZON
        assert rows["ds"].min() > history.loc[history["unique_id"] == uid, "ds"].max()


def test_spikes_are_the_stated_size_at_one_tested_point(panel: pd.DataFrame) -> None:
    spiked, spikes = evaluate.inject_spikes(panel, points=6, seed=1)
    for uid, rows in panel.groupby("unique_id"):
        y = rows["y"].to_numpy()
        changed = spiked.loc[spiked["unique_id"] == uid, "y"].to_numpy() - y
        (at,) = np.flatnonzero(changed)
        assert at >= len(y) - 6
        sd = np.std(np.diff(y[:-6]), ddof=1)
        assert abs(changed[at]) == pytest.approx(5 * sd)
        assert spikes.set_index("unique_id").loc[uid, "ds"] == rows["ds"].iloc[at]


def test_the_bench_end_to_end_on_three_series(panel: pd.DataFrame) -> None:
    candidates = ["seasonal-naive", "auto-theta"]
    history, held_out = evaluate.split_held_out(panel)
    runs = evaluate.run_candidates(history, candidates, log=False)
    entries, chosen = evaluate.compare(runs, history, held_out)
    # The seasonal-naive forecast is the history's last 12 months; its MASE by numpy here.
    uid = sorted(panel["unique_id"].unique())[0]
    past = history.loc[history["unique_id"] == uid, "y"].to_numpy()
    future = held_out.loc[held_out["unique_id"] == uid, "y"].to_numpy()
    expected = np.mean(np.abs(future - past[-12:])) / np.mean(np.abs(past[12:] - past[:-12]))
    assert entries["seasonal-naive"].loc[uid, "MASE"] == pytest.approx(expected)
    assert set(entries) == {
        *candidates,
        *(f"{m} ({s})" for m in ("auto", "ensemble") for s in ("MASE", "WQL")),
    }
    # auto picks one candidate per series, and its held-out scores are that candidate's.
    for series, model in zip(entries["auto (MASE)"].index, chosen["MASE"], strict=True):
        assert entries["auto (MASE)"].loc[series, "MASE"] == entries[model].loc[series, "MASE"]
    coverage = evaluate.calibrated(runs, history, held_out)
    assert set(coverage) == {*candidates, "auto (WQL)"}
    before, after = coverage["auto (WQL)"]
    assert after["covered_80"].between(0, 1).all() and not after.equals(before)
    spiked, spikes = evaluate.inject_spikes(panel, points=4)
    detections = evaluate.detect(spiked, spikes, 4, "seasonal-naive")
    assert [d[0] for d in detections] == list(evaluate.ANOMALY_LEVELS)
    assert all(d[2] == 3 for d in detections)
    # Wider intervals flag no more points.
    assert detections[0][1] >= detections[1][1] >= detections[2][1]
    body, targets = evaluate.report(entries, chosen, coverage, detections, candidates)
    assert "| auto (MASE) |" in body and len(targets) == 3
    assert all(t.endswith(("**met**", "**not met**")) for t in targets)
