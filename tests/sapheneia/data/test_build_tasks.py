"""build_tasks: tables to ForecastTasks, and every refusal naming series, rows and the fix."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from statsforecast.utils import AirPassengersDF

from sapheneia.data import DECILES, ColumnRoles, DataLimits, build_tasks, load_table
from sapheneia.errors import (
    DataError,
    DuplicateTimestamps,
    InvalidInput,
    IrregularTimestamps,
    MissingFutureCovariates,
    MissingTargetValues,
    SeriesTooShort,
    UnknownColumn,
    UnparseableTimestamps,
)

SEED = ColumnRoles(timestamp="date", series_id=None, target="price")


def monthly(n: int = 6, **extra: list[Any]) -> pd.DataFrame:
    frame = pd.DataFrame(
        {"date": pd.date_range("2024-01-01", periods=n, freq="MS"), "price": np.arange(n) + 10.0}
    )
    for column, values in extra.items():
        frame[column] = values
    return frame


def long_table() -> pd.DataFrame:
    """Two series, rows shuffled: 'b' daily, 'a' business-daily."""
    a = pd.DataFrame(
        {"unique_id": "a", "ds": pd.bdate_range("2024-01-01", periods=10), "y": np.arange(10.0)}
    )
    b = pd.DataFrame(
        {"unique_id": "b", "ds": pd.date_range("2024-01-01", periods=7), "y": np.arange(7.0) * 2}
    )
    return pd.concat([b, a]).sample(frac=1.0, random_state=0).reset_index(drop=True)


# --- happy paths ------------------------------------------------------------------------------


def test_air_passengers_round_trip() -> None:
    (task,) = build_tasks(AirPassengersDF, ColumnRoles(), horizon=12)
    assert task.series_id == "1"
    np.testing.assert_array_equal(task.context, AirPassengersDF["y"].to_numpy())
    assert task.context.dtype == np.float64
    assert task.freq == "ME" and task.quantiles == DECILES and task.horizon == 12
    assert task.future_timestamps[0] == pd.Timestamp("1961-01-31")
    assert task.future_timestamps[1] == pd.Timestamp("1961-02-28")
    assert len(task.future_timestamps) == 12 and not task.has_covariates


def test_multi_series_round_trip_sorted_and_per_series_calendars() -> None:
    tasks = build_tasks(long_table(), ColumnRoles(), horizon=3, quantiles=[0.9, 0.1, 0.5, 0.1])
    assert [t.series_id for t in tasks] == ["a", "b"]
    a, b = tasks
    np.testing.assert_array_equal(a.context, np.arange(10.0))
    np.testing.assert_array_equal(b.context, np.arange(7.0) * 2)
    assert (a.freq, b.freq) == ("B", "D")
    assert a.quantiles == (0.1, 0.5, 0.9)
    # business days skip the weekend: the last history day is Friday 2024-01-12
    assert list(a.future_timestamps.strftime("%a %d")) == ["Mon 15", "Tue 16", "Wed 17"]
    assert b.future_timestamps[0] == pd.Timestamp("2024-01-08")
    assert a.timestamps.is_monotonic_increasing


@pytest.mark.parametrize(
    ("freq", "start", "first_future", "inferred"),
    [
        ("MS", "2024-01-01", "2024-07-01", "MS"),
        ("ME", "2024-01-31", "2024-07-31", "ME"),
        ("QS-JAN", "2023-01-01", "2024-07-01", "QS-OCT"),
        ("W-SUN", "2024-01-07", "2024-02-18", "W-SUN"),
        ("h", "2024-03-10 18:00", "2024-03-11 00:00", "h"),
    ],
)
def test_future_follows_the_inferred_calendar(
    freq: str, start: str, first_future: str, inferred: str
) -> None:
    frame = pd.DataFrame(
        {"ds": pd.date_range(start, periods=6, freq=freq), "y": np.linspace(1, 2, 6)}
    )
    (task,) = build_tasks(frame, ColumnRoles(series_id=None), horizon=2)
    assert task.future_timestamps[0] == pd.Timestamp(first_future)
    assert task.freq == inferred


def test_month_end_february_in_a_leap_year() -> None:
    frame = pd.DataFrame(
        {"ds": ["2023-10-31", "2023-11-30", "2023-12-31", "2024-01-31"], "y": [1, 2, 3, 4]}
    )
    (task,) = build_tasks(frame, ColumnRoles(series_id=None), horizon=2)
    assert list(task.future_timestamps.strftime("%Y-%m-%d")) == ["2024-02-29", "2024-03-31"]


def test_given_freq_is_used() -> None:
    frame = monthly(4)
    (task,) = build_tasks(frame, SEED, horizon=1, freq="MS")
    assert task.freq == "MS"


def test_future_covariates_from_rows_past_the_history() -> None:
    frame = monthly(
        8,
        promo=[0, 1, 0, 1, 0, 1, 1, 0],
        region=["n"] * 8,
        weekday=["x", "y", "x", "y", "x", "y", "x", "y"],
        size=[3.0] * 8,
    )
    frame.loc[6:, "price"] = np.nan  # two future rows with an empty target
    roles = ColumnRoles.from_data_definition(
        {
            "price": "target",
            "promo": "dynamic_numerical",
            "weekday": "dynamic_categorical",
            "region": "static_categorical",
            "size": "static_numerical",
        }
    )
    (task,) = build_tasks(frame, roles, horizon=2)
    assert len(task.context) == 6 and task.series_id == "price"
    np.testing.assert_array_equal(task.dynamic_numerical["promo"], [0, 1, 0, 1, 0, 1, 1, 0])
    assert task.dynamic_numerical["promo"].dtype == np.float64
    assert list(task.dynamic_categorical["weekday"]) == ["x", "y", "x", "y", "x", "y", "x", "y"]
    assert task.static_categorical == {"region": "n"} and task.static_numerical == {"size": 3.0}
    assert task.future_timestamps[0] == pd.Timestamp("2024-07-01")


def test_context_length_and_window() -> None:
    frame = monthly(12)
    (task,) = build_tasks(frame, SEED, horizon=2, context_length=4)
    np.testing.assert_array_equal(task.context, [18, 19, 20, 21])
    (task,) = build_tasks(
        frame, SEED, horizon=2, context_start="2024-03-01", context_end="2024-08-01"
    )
    np.testing.assert_array_equal(task.context, [12, 13, 14, 15, 16, 17])
    assert task.future_timestamps[0] == pd.Timestamp("2024-09-01")


def test_window_uses_later_rows_for_future_covariates() -> None:
    frame = monthly(10, temp=list(range(10)))
    roles = ColumnRoles(
        timestamp="date", series_id=None, target="price", covariates={"temp": "dynamic_numerical"}
    )
    (task,) = build_tasks(frame, roles, horizon=2, context_end="2024-06-01")
    np.testing.assert_array_equal(task.dynamic_numerical["temp"], range(8))


def test_group_passes_through_and_timestamps_parse_from_text() -> None:
    records = [{"ds": f"2024-01-0{d}", "y": d} for d in range(1, 6)]
    (task,) = build_tasks(pd.DataFrame(records), ColumnRoles(series_id=None), 1, group="req-1")
    assert task.group == "req-1" and task.freq == "D"


# --- refusals ---------------------------------------------------------------------------------


def test_unknown_column_lists_the_existing_ones() -> None:
    with pytest.raises(UnknownColumn, match=r"no column 'ds'.*columns are 'date', 'price'"):
        build_tasks(monthly(), ColumnRoles(series_id=None), horizon=1)


def test_unparseable_timestamps_name_rows_and_values() -> None:
    frame = monthly(5).astype({"date": str})
    frame.loc[2, "date"] = "not a date"
    frame.loc[4, "date"] = None
    with pytest.raises(UnparseableTimestamps, match=r"row 3 \('not a date'\), row 5 \(empty\)"):
        build_tasks(frame, SEED, horizon=1)


def test_non_numeric_target_names_the_row() -> None:
    frame = monthly(5).astype({"price": object})
    frame.loc[1, "price"] = "ten"
    with pytest.raises(DataError, match=r"target column 'price'.*row 2 \('ten'\)"):
        build_tasks(frame, SEED, horizon=1)


def test_duplicate_timestamps_name_series_and_rows() -> None:
    frame = long_table().sort_values(["unique_id", "ds"]).reset_index(drop=True)
    frame = pd.concat([frame, frame.iloc[[12]]], ignore_index=True)
    with pytest.raises(
        DuplicateTimestamps,
        match=r"series 'b' has repeated timestamps: 2024-01-03T00:00:00 \(rows 13, 18\)",
    ):
        build_tasks(frame, ColumnRoles(), horizon=1)


def test_missing_target_inside_history_names_rows() -> None:
    frame = monthly(6)
    frame.loc[[1, 3], "price"] = np.nan
    with pytest.raises(
        MissingTargetValues, match=r"series 'price' is missing target values in rows 2, 4"
    ):
        build_tasks(frame, SEED, horizon=1)


def test_series_without_any_target() -> None:
    frame = monthly(3)
    frame["price"] = np.nan
    with pytest.raises(MissingTargetValues, match="series 'price' has no target values"):
        build_tasks(frame, SEED, horizon=1)


def test_short_series_is_named() -> None:
    frame = long_table()
    frame = frame[(frame.unique_id == "a") | (frame.ds <= "2024-01-02")]
    with pytest.raises(SeriesTooShort, match="series 'b' has 2 observations; at least 3"):
        build_tasks(frame, ColumnRoles(), horizon=1)


def test_gaps_name_the_series_and_first_missing_timestamps() -> None:
    frame = long_table()
    frame = frame[~frame.ds.isin(pd.to_datetime(["2024-01-04", "2024-01-05"]))]
    with pytest.raises(
        IrregularTimestamps,
        match=r"series 'a' is missing 2 timestamps at frequency 'B' \(first: 2024-01-04T00:00:00, 2024-01-05T00:00:00\).*fill the gaps.*freq",
    ):
        build_tasks(frame, ColumnRoles(), horizon=1)


def test_monthly_gap_is_found_on_the_month_calendar() -> None:
    frame = monthly(8).drop(index=[3])
    with pytest.raises(
        IrregularTimestamps, match=r"missing 1 timestamps at frequency 'MS' \(first: 2024-04-01"
    ):
        build_tasks(frame, SEED, horizon=1)


def test_given_freq_that_the_data_does_not_follow() -> None:
    with pytest.raises(
        IrregularTimestamps,
        match=r"series 'price' is missing 2 timestamps at frequency 'SMS-15' \(first: 2024-01-15",
    ):
        build_tasks(monthly(3), SEED, horizon=1, freq="SMS")


def test_invalid_freq_alias() -> None:
    with pytest.raises(InvalidInput, match="unknown frequency 'fortnightly'"):
        build_tasks(monthly(), SEED, horizon=1, freq="fortnightly")


def test_missing_future_covariates_count_per_series() -> None:
    frame = monthly(8, promo=[1.0] * 8)
    frame.loc[6:, "price"] = np.nan
    roles = ColumnRoles(
        timestamp="date", series_id=None, target="price", covariates={"promo": "dynamic_numerical"}
    )
    with pytest.raises(
        MissingFutureCovariates,
        match=r"series 'price' needs values of covariate 'promo' for all 4 future timestamps; 2 are missing \(first: 2024-09-01",
    ):
        build_tasks(frame, roles, horizon=4)


def test_a_covariate_with_no_future_values_is_past_only() -> None:
    frame = monthly(8, promo=[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, np.nan, np.nan], kind=list("abababab"))
    frame.loc[6:, "price"] = np.nan  # the future rows carry 'kind' but no 'promo'
    roles = ColumnRoles(
        timestamp="date",
        series_id=None,
        target="price",
        covariates={"promo": "dynamic_numerical", "kind": "dynamic_categorical"},
    )
    (task,) = build_tasks(frame, roles, horizon=2)
    np.testing.assert_array_equal(task.dynamic_numerical["promo"], [1, 2, 3, 4, 5, 6])
    assert list(task.dynamic_categorical["kind"]) == list("abababab")
    assert task.past_only_covariates == ["promo"]
    # Without any rows after the history, every dynamic covariate is past-only.
    (task,) = build_tasks(frame.iloc[:6], roles, horizon=2)
    assert task.past_only_covariates == ["promo", "kind"]
    assert len(task.dynamic_categorical["kind"]) == 6


def test_empty_numeric_covariate_in_history() -> None:
    frame = monthly(5, promo=[1.0, np.nan, 1.0, 1.0, 1.0])
    roles = ColumnRoles(
        timestamp="date", series_id=None, target="price", covariates={"promo": "dynamic_numerical"}
    )
    with pytest.raises(DataError, match="covariate 'promo' is empty in series 'price' at rows 2"):
        build_tasks(frame, roles, horizon=1)


def test_static_covariate_must_be_constant() -> None:
    frame = monthly(4, region=["n", "n", "s", "n"])
    roles = ColumnRoles(
        timestamp="date",
        series_id=None,
        target="price",
        covariates={"region": "static_categorical"},
    )
    with pytest.raises(
        DataError, match=r"static covariate 'region' changes within series 'price' \('n', 's'\)"
    ):
        build_tasks(frame, roles, horizon=1)


@pytest.mark.parametrize("horizon", [0, -3, 2.5, True])
def test_horizon_must_be_positive_whole(horizon: object) -> None:
    with pytest.raises(InvalidInput, match="horizon must be a whole number of steps of at least 1"):
        build_tasks(monthly(), SEED, horizon=horizon)  # type: ignore[arg-type]


@pytest.mark.parametrize("level", [0.0, 1.0, 1.5, -0.1, float("nan")])
def test_quantiles_strictly_inside_zero_one(level: float) -> None:
    with pytest.raises(InvalidInput, match=r"quantile .* is outside \(0, 1\)"):
        build_tasks(monthly(), SEED, horizon=1, quantiles=[0.5, level])


def test_bad_context_dates() -> None:
    with pytest.raises(InvalidInput, match="context_start 'yesterday-ish' is not a date"):
        build_tasks(monthly(), SEED, horizon=1, context_start="yesterday-ish")
    with pytest.raises(InvalidInput, match="context_start is after context_end"):
        build_tasks(
            monthly(), SEED, horizon=1, context_start="2024-05-01", context_end="2024-01-01"
        )


def test_empty_series_id_names_rows() -> None:
    frame = long_table()
    frame.loc[4, "unique_id"] = None
    with pytest.raises(DataError, match="series id column 'unique_id' is empty in rows 5"):
        build_tasks(frame, ColumnRoles(), horizon=1)


# --- ColumnRoles ------------------------------------------------------------------------------


def test_data_definition_needs_exactly_one_target() -> None:
    with pytest.raises(InvalidInput, match=r"exactly one 'target' column; it names 2 \('a', 'b'\)"):
        ColumnRoles.from_data_definition({"a": "target", "b": "target"})
    with pytest.raises(InvalidInput, match="it names 0"):
        ColumnRoles.from_data_definition({"a": "dynamic_numerical"})


def test_data_definition_unknown_role_lists_valid_roles() -> None:
    with pytest.raises(
        InvalidInput, match="unknown role 'feature'; valid roles are target, dynamic_numerical"
    ):
        ColumnRoles.from_data_definition({"p": "target", "v": "feature"})


def test_row_numbers_count_the_files_data_rows(tmp_path: Path) -> None:
    csv = "date,price\n2024-01-01,1\n2024-02-01,2\n2024-13-01,3\n2024-04-01,4\n"
    frame = load_table(csv.encode(), DataLimits(data_dir=tmp_path), filename="x.csv")
    with pytest.raises(UnparseableTimestamps, match=r"column 'date' .*: row 3 \('2024-13-01'\)"):
        build_tasks(frame, SEED, horizon=1)


def test_old_pandas_aliases_are_accepted() -> None:
    frame = pd.DataFrame(
        {"ds": pd.date_range("2024-01-31", periods=4, freq="ME"), "y": [1, 2, 3, 4]}
    )
    (task,) = build_tasks(frame, ColumnRoles(series_id=None), horizon=1, freq="M")
    assert task.freq == "ME"


def test_offsets_that_change_with_daylight_saving_become_utc() -> None:
    local = pd.date_range("2024-03-30", periods=48, freq="h", tz="Europe/Paris")
    frame = pd.DataFrame({"ds": [t.isoformat() for t in local], "y": np.arange(48.0)})
    (task,) = build_tasks(frame, ColumnRoles(series_id=None), horizon=2)
    assert task.freq == "h" and str(task.timestamps.tz) == "UTC" and task.timestamps.name is None
    assert task.future_timestamps[0] == local[-1].tz_convert("UTC") + pd.Timedelta(hours=1)


def test_series_sharing_dates_share_a_calendar_and_each_other_keeps_its_own() -> None:
    # Inference is kept per exact timestamps: a panel's series mostly share them. Series with
    # other dates (a time zone, another step, a gap) must still be inferred, or refused, alone.
    days = pd.date_range("2024-01-01", periods=8, freq="D")
    blocks = [
        pd.DataFrame({"unique_id": "a", "ds": days, "y": np.arange(8.0)}),
        pd.DataFrame({"unique_id": "b", "ds": days, "y": np.arange(8.0) + 1}),
        pd.DataFrame(
            {"unique_id": "c", "ds": pd.date_range("2024-01-01", periods=8, freq="W-MON"), "y": 1.0}
        ),
        pd.DataFrame({"unique_id": "d", "ds": days, "y": np.arange(8.0) + 2}),
    ]
    tasks = build_tasks(pd.concat(blocks), ColumnRoles(), horizon=2)
    assert [(t.series_id, t.freq) for t in tasks] == [
        ("a", "D"),
        ("b", "D"),
        ("c", "W-MON"),
        ("d", "D"),
    ]
    assert tasks[2].future_timestamps[0] == pd.Timestamp("2024-02-26")

    gap = pd.DataFrame({"unique_id": "e", "ds": days.delete(4), "y": np.arange(7.0)})
    with pytest.raises(IrregularTimestamps, match=r"series 'e' is missing 1 timestamps"):
        build_tasks(pd.concat([*blocks, gap]), ColumnRoles(), horizon=2)
