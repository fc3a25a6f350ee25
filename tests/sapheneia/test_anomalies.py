"""The one-step planner cuts each point's task as if the table ended before it; scores by hand."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sapheneia.anomalies import interval_quantiles, plan_one_step, score_anomalies
from sapheneia.data import ColumnRoles, DataLimits, build_tasks
from sapheneia.errors import InvalidInput, LimitExceeded, SeriesTooShort
from tests.sapheneia.anomaly_cases import MONTHS, monthly, two_rounds_reference, walk

ROLES = ColumnRoles(
    timestamp="ds", series_id="unique_id", target="y", covariates={"promo": "dynamic_numerical"}
)


def table(lengths: dict[str, int], future: int = 0) -> pd.DataFrame:
    """Daily series with a promo covariate; ``future`` rows past each history, target empty."""
    frames = []
    for index, (uid, length) in enumerate(lengths.items()):
        total = length + future
        y = np.arange(total, dtype=float) * (index + 1)
        y[length:] = np.nan
        frames.append(
            pd.DataFrame(
                {
                    "unique_id": uid,
                    "ds": pd.date_range("2024-01-01", periods=total, freq="D"),
                    "y": y,
                    "promo": np.arange(total) % 3 * 10.0,
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def test_each_cut_is_the_task_of_the_table_cut_before_that_point() -> None:
    frame = table({"a": 12, "b": 9}, future=2)
    plan = plan_one_step(frame, ROLES, (0.1, 0.9), last_n=4, group="g")
    assert plan.points == 4 and len(plan.tasks) == 8
    for task, actual in zip(plan.tasks, plan.actual, strict=True):
        rows = frame[frame["unique_id"] == task.series_id].reset_index(drop=True)
        cut = len(task.context)
        # Independent reference: the rows before the point, then the point with its target hidden.
        cut_rows = rows.iloc[: cut + 1].copy()
        cut_rows.loc[cut, "y"] = np.nan
        (expected,) = build_tasks(cut_rows, ROLES, 1, (0.1, 0.9))
        np.testing.assert_array_equal(task.context, expected.context)
        assert task.timestamps.equals(expected.timestamps)
        assert task.future_timestamps.equals(expected.future_timestamps)
        np.testing.assert_array_equal(
            task.dynamic_numerical["promo"], expected.dynamic_numerical["promo"]
        )
        assert actual == rows.loc[cut, "y"]
    # One group per cut, the same cut of both series together, none shared with another cut.
    groups = [t.group for t in plan.tasks]
    assert groups == [f"g/cut-{back}" for back in (4, 4, 3, 3, 2, 2, 1, 1)]
    assert [len(t.context) for t in plan.tasks] == [8, 5, 9, 6, 10, 7, 11, 8]


def test_context_length_keeps_the_latest_points_of_each_cut() -> None:
    plan = plan_one_step(table({"a": 20}), ROLES, (0.1, 0.9), last_n=3, context_length=5)
    assert [t.context.tolist() for t in plan.tasks] == [
        [12.0, 13, 14, 15, 16],
        [13.0, 14, 15, 16, 17],
        [14.0, 15, 16, 17, 18],
    ]
    assert plan.actual.tolist() == [17.0, 18.0, 19.0]


def test_the_default_tests_as_many_points_as_the_bound_and_the_min_context_allow() -> None:
    frame = table({"a": 30, "b": 25})
    assert plan_one_step(frame, ROLES, (0.1, 0.9)).points == 22  # 25 - 3
    assert plan_one_step(frame, ROLES, (0.1, 0.9), min_context=10).points == 15
    small = DataLimits(data_dir=Path("."), max_one_step_points=20)
    assert plan_one_step(frame, ROLES, (0.1, 0.9), limits=small).points == 10  # 20 // 2 series


def test_refusals_name_the_field_the_limit_and_the_fix() -> None:
    frame = table({"a": 30, "b": 25})
    small = DataLimits(data_dir=Path("."), max_one_step_points=20)
    with pytest.raises(LimitExceeded, match="SAPHENEIA_MAX_ONE_STEP_POINTS") as error:
        plan_one_step(frame, ROLES, (0.1, 0.9), last_n=11, limits=small)
    assert "22 points (11 per series × 2 series), over the limit of 20" in str(error.value)
    with pytest.raises(InvalidInput, match=r"last_n is 23, .*'b' has 25 .*at most 22"):
        plan_one_step(frame, ROLES, (0.1, 0.9), last_n=23)
    with pytest.raises(SeriesTooShort, match=r"series 'a' has 7 observations; .*at least 8"):
        plan_one_step(table({"a": 7}), ROLES, (0.1, 0.9), min_context=7)
    for level in (0, 100, -1, 150):
        with pytest.raises(InvalidInput, match="level must be inside"):
            interval_quantiles(level)


def test_interval_quantiles_and_scores_in_interval_widths() -> None:
    assert interval_quantiles(99) == (0.005, 0.995)
    assert interval_quantiles(80) == (0.1, 0.9)
    lined = pd.DataFrame(
        {
            "unique_id": ["a"] * 4,
            "ds": pd.date_range("2024-01-01", periods=4, freq="D"),
            "y": [5.0, 13.0, -1.0, 10.0],
            "mean": [5.0] * 4,
            "q-0.1": [4.0, 4.0, 4.0, 10.0],
            "q-0.9": [6.0, 6.0, 6.0, 10.0],
        }
    )
    scored = score_anomalies(lined, 0.1, 0.9)
    assert scored["anomaly"].tolist() == [False, True, True, False]
    np.testing.assert_allclose(scored["score"], [0.0, 3.5, 2.5, 0.0])
    assert scored[["lo", "hi"]].to_numpy().tolist()[1] == [4.0, 6.0]


# The second round, against statsforecast's AutoETS called directly (tests/sapheneia/anomaly_cases).


def served_two_rounds(y: np.ndarray, last_n: int, level: float) -> pd.DataFrame:
    from sapheneia.anomalies import forecast_without_anomalies, one_step_frame
    from sapheneia.config import ModelConfig
    from sapheneia.models import create_adapter

    adapter = create_adapter(ModelConfig(id="auto-ets", adapter="statsforecast"))
    adapter.load()
    lo, hi = interval_quantiles(level)
    plan = plan_one_step(
        monthly(y),
        ColumnRoles(timestamp="ds", series_id="unique_id", target="y"),
        (lo, hi),
        last_n=last_n,
        min_context=7,
    )
    results, _ = forecast_without_anomalies(plan, adapter.forecast, lo, hi)  # type: ignore[arg-type]
    return score_anomalies(one_step_frame(plan, results), lo, hi)


def test_a_spike_is_flagged_and_the_month_after_it_is_not() -> None:
    y = walk(0)
    spike = MONTHS - 6
    y[spike] += 5 * np.std(np.diff(y[:spike]), ddof=1)
    first_round, mean, lo, hi, flags = two_rounds_reference(y, 10, 99)
    # Without the second round the month after the spike is flagged too: the spike's echo.
    assert np.flatnonzero(first_round).tolist() == [4, 5]
    assert np.flatnonzero(flags).tolist() == [4]
    got = served_two_rounds(y, 10, 99)
    assert got.loc[got["anomaly"], "ds"].tolist() == [monthly(y)["ds"].iloc[spike]]
    np.testing.assert_allclose(got["mean"], mean, rtol=1e-6)
    np.testing.assert_allclose(got["lo"], lo, rtol=1e-6)
    np.testing.assert_allclose(got["hi"], hi, rtol=1e-6)
    np.testing.assert_array_equal(got["y"], y[-10:])  # the answer shows what was observed


def test_a_level_shift_is_flagged_at_its_start_and_then_followed() -> None:
    y = walk(1)
    shift = MONTHS - 8
    y[shift:] += 10 * np.std(np.diff(y[:shift]), ddof=1)
    _, mean, lo, hi, flags = two_rounds_reference(y, 12, 99)
    # The shift's first month is replaced, so its second is judged against the old level; from
    # the third on the model forecasts from the new level.
    assert np.flatnonzero(flags).tolist() == [4, 5]
    got = served_two_rounds(y, 12, 99)
    assert np.flatnonzero(got["anomaly"]).tolist() == [4, 5]
    np.testing.assert_allclose(got[["mean", "lo", "hi"]].to_numpy().T, [mean, lo, hi], rtol=1e-6)


def test_the_second_round_replaces_the_first_point_of_a_run_and_cuts_as_the_first_does() -> None:
    from sapheneia.anomalies import second_round
    from sapheneia.config import ModelConfig
    from sapheneia.models import create_adapter

    adapter = create_adapter(ModelConfig(id="seasonal-naive", adapter="statsforecast"))
    adapter.load()
    y = walk(2)
    y[60:62] += 100.0  # two anomalous months in a row: one run of flags
    roles = ColumnRoles(timestamp="ds", series_id="unique_id", target="y")
    lo, hi = interval_quantiles(99)
    for context_length, forecast_again in ((None, 11), (5, 5)):
        plan = plan_one_step(
            monthly(y), roles, (lo, hi), last_n=12, context_length=context_length, group="g"
        )
        first = adapter.forecast(plan.tasks)
        means = np.array([r.mean[0] for r in first])  # type: ignore[union-attr]
        again = second_round(plan, first, lo, hi)  # type: ignore[arg-type]
        assert again.replaced == 1
        if context_length is None:
            # Seasonal naive forecasts last year's value (under two seasons of context, the
            # last value): the replacement is the first month's, a season back.
            assert means[0] == y[48]
        cleaned = y.copy()
        cleaned[60] = means[0]
        assert again.index == list(range(1, 1 + forecast_again))
        for task, position in zip(again.tasks, again.index, strict=True):
            cut = 60 + position
            start = 0 if context_length is None else cut - context_length
            np.testing.assert_array_equal(task.context, cleaned[start:cut])
            assert task.future_timestamps.equals(plan.tasks[position].future_timestamps)
            assert task.group == f"g/again-{12 - position}"
        merged = again.merge(first, adapter.forecast(again.tasks))  # type: ignore[arg-type]
        assert merged[0] is first[0] and len(merged) == len(first)
