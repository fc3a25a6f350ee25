"""The column-wise table path against references computed here with pandas and pyarrow directly:
records to a frame, Arrow IPC bodies, and tables to tasks."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sapheneia.data import ColumnRoles, DataLimits, build_tasks, load_table
from sapheneia.errors import (
    DuplicateTimestamps,
    LimitExceeded,
    MissingTargetValues,
    PayloadTooLarge,
    UnsupportedFormat,
)

# --- records (parsed JSON) to a frame ---------------------------------------------------------

VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=5),
)
RECORDS = st.lists(
    st.dictionaries(st.sampled_from(["unique_id", "ds", "y", "x"]), VALUES, max_size=4),
    min_size=1,
    max_size=30,
)


@settings(max_examples=200, deadline=None)
@given(RECORDS)
def test_records_make_the_frame_pandas_makes(records: list[dict[str, object]]) -> None:
    if not any(records):
        return  # no columns: refused either way
    expected = pd.DataFrame.from_records(records)
    frame = load_table(records, DataLimits(data_dir="."))
    pd.testing.assert_frame_equal(frame, expected)


def test_a_record_that_is_not_an_object_is_named() -> None:
    from sapheneia.errors import InvalidInput

    with pytest.raises(InvalidInput, match="data row 2 is not an object"):
        load_table([{"y": 1.0}, [1.0]], DataLimits(data_dir="."))


def test_records_with_too_many_keys_name_the_count_at_the_cap() -> None:
    limits = DataLimits(data_dir=".", max_columns=4)
    records = [{"a": 1, "b": 2}, {"c": 1, "d": 2, "e": 3, "f": 4}]
    with pytest.raises(LimitExceeded, match="the table has 6 columns, over the limit of 4"):
        load_table(records, limits)


# --- Arrow IPC bodies --------------------------------------------------------------------------


def arrow_table() -> pa.Table:
    ids = pa.array(["a", "b", "a", "b"]).dictionary_encode()
    return pa.table(
        {
            "unique_id": ids,
            "ds": pa.array(
                pd.to_datetime(["2024-01-01", "2024-01-01", "2024-01-02", "2024-01-02"])
            ),
            "y": pa.array([1.0, 2.0, None, 4.0]),
            "n": pa.array([1, 2, 3, 4], pa.int32()),
        }
    )


def ipc(table: pa.Table, file_format: bool = False, chunk: int = 3, **options: object) -> bytes:
    sink = pa.BufferOutputStream()
    writer = pa.ipc.new_file if file_format else pa.ipc.new_stream
    write_options = pa.ipc.IpcWriteOptions(**options)  # type: ignore[arg-type]
    with writer(sink, table.schema, options=write_options) as out:
        for batch in table.to_batches(max_chunksize=chunk):
            out.write_batch(batch)
    return bytes(sink.getvalue().to_pybytes())


@pytest.mark.parametrize("file_format", [False, True])
@pytest.mark.parametrize("compression", [None, "zstd"])
def test_arrow_ipc_reads_as_pyarrow_reads_it(file_format: bool, compression: str | None) -> None:
    table = arrow_table()
    content = ipc(table, file_format, compression=compression)
    expected = table.set_column(0, "unique_id", table.column("unique_id").cast(pa.string()))
    for name in ("body.arrow", None):  # by its suffix, and sniffed
        frame = load_table(content, DataLimits(data_dir="."), filename=name)
        pd.testing.assert_frame_equal(frame, expected.to_pandas())
        assert frame["unique_id"].dtype == object  # text, as from CSV or JSON


def test_arrow_ipc_over_the_row_cap_is_refused() -> None:
    content = ipc(arrow_table())
    with pytest.raises(LimitExceeded, match="the table has 4 rows, over the limit of 3"):
        load_table(content, DataLimits(data_dir=".", max_rows=3), filename="x.arrow")


def test_arrow_ipc_that_inflates_past_the_cap_is_refused() -> None:
    # One long string, dictionary-encoded: small as sent, 4 MiB once decoded.
    long = pa.array(["x" * 4096] * 1024).dictionary_encode()
    content = ipc(pa.table({"unique_id": long, "y": pa.array(np.zeros(1024))}), chunk=1024)
    assert len(content) < 64 * 1024
    limits = DataLimits(data_dir=".", max_bytes=1024 * 1024)
    with pytest.raises(PayloadTooLarge, match=r"the Arrow data is over the limit of 1\.0 MiB"):
        load_table(content, limits, filename="x.arrow")


def test_compressed_arrow_ipc_that_inflates_past_the_cap_is_refused() -> None:
    zeros = pa.table({"y": pa.array(np.zeros(512 * 1024))})
    content = ipc(zeros, chunk=512 * 1024, compression="zstd")
    assert len(content) < 64 * 1024
    limits = DataLimits(data_dir=".", max_bytes=1024 * 1024)
    with pytest.raises(PayloadTooLarge, match="the Arrow data is over the limit"):
        load_table(content, limits, filename="x.arrow")


def test_garbage_sent_as_arrow_says_what_to_send() -> None:
    with pytest.raises(UnsupportedFormat, match=r"could not be read as ARROW.*Arrow IPC"):
        load_table(b"\xff\xff\xff\xffnot arrow at all", DataLimits(data_dir="."))


def test_nested_arrow_columns_are_refused() -> None:
    content = ipc(pa.table({"y": pa.array([[1.0], [2.0]])}))
    with pytest.raises(UnsupportedFormat, match="nested columns"):
        load_table(content, DataLimits(data_dir="."), filename="x.arrow")


# --- tables to tasks ---------------------------------------------------------------------------


def shuffled_panel(ids: list[object], tz: str | None, seed: int) -> pd.DataFrame:
    """Series of different lengths and calendars, trailing empty targets, rows shuffled."""
    rng = np.random.default_rng(seed)
    parts = []
    for index, series_id in enumerate(ids):
        length = int(rng.integers(5, 40))
        freq = ("D", "h", "MS", "W-SUN")[index % 4]
        ds = pd.date_range("2023-01-01", periods=length, freq=freq, tz=tz)
        y = rng.normal(size=length).cumsum()
        y[length - int(rng.integers(0, 3)) :] = np.nan  # rows past the last observation
        parts.append(pd.DataFrame({"unique_id": series_id, "ds": ds, "y": y}))
    frame = pd.concat(parts, ignore_index=True)
    return frame.sample(frac=1.0, random_state=seed).reset_index(drop=True)


def reference_tasks(frame: pd.DataFrame, horizon: int, context_length: int | None) -> list[dict]:
    """What each series' task must hold, by pandas alone: ids sorted as text, history up to the
    last value, the future on the series' own calendar."""

    def text(value: object) -> str:  # whole-number floats lose '.0' (ids like 1.0 from a CSV)
        return str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)

    table = frame.assign(key=frame["unique_id"].map(text)).sort_values(["key", "ds"])
    expected = []
    for key, rows in table.groupby("key", sort=True):
        last = np.flatnonzero(rows["y"].notna().to_numpy())[-1]
        history = rows.iloc[: last + 1]
        if context_length is not None:
            history = history.iloc[-context_length:]
        stamps = pd.DatetimeIndex(history["ds"])
        freq = pd.infer_freq(stamps)
        future = pd.date_range(stamps[-1], periods=horizon + 1, freq=freq)[1:]
        expected.append(
            {"id": key, "context": history["y"].to_numpy(), "stamps": stamps, "future": future}
        )
    return expected


@pytest.mark.parametrize(
    ("ids", "tz"),
    [
        (["b", "a", "c10", "c2", "zz", "A"], None),
        ([3, 1, 20, 100], "Europe/Berlin"),
        ([1.0, 2.5, 10.0], None),
        (["x", 7, 7.5], "UTC"),  # mixed kinds: ids as text row by row
    ],
)
@pytest.mark.parametrize("context_length", [None, 4])
def test_tasks_hold_what_pandas_computes(
    ids: list[object], tz: str | None, context_length: int | None
) -> None:
    frame = shuffled_panel(ids, tz, seed=len(ids))
    tasks = build_tasks(frame, ColumnRoles(), horizon=3, context_length=context_length)
    expected = reference_tasks(frame, 3, context_length)
    assert [t.series_id for t in tasks] == [e["id"] for e in expected]
    for task, want in zip(tasks, expected, strict=True):
        np.testing.assert_array_equal(task.context, want["context"])
        pd.testing.assert_index_equal(task.timestamps, want["stamps"], check_names=False)
        pd.testing.assert_index_equal(task.future_timestamps, want["future"], check_names=False)


def test_sorted_grouped_and_shuffled_tables_give_the_same_tasks() -> None:
    frame = shuffled_panel(["a", "b", "c10", "c9"], None, seed=3)
    ordered = frame.sort_values(["unique_id", "ds"]).reset_index(drop=True)
    # Each series' rows together and in time order, the series not in id order.
    grouped = pd.concat(
        [ordered[ordered["unique_id"] == i] for i in ("c9", "a", "c10", "b")], ignore_index=True
    )
    expected = build_tasks(ordered, ColumnRoles(), 2)
    for other in (frame, grouped):
        for one, same in zip(expected, build_tasks(other, ColumnRoles(), 2), strict=True):
            assert one.series_id == same.series_id
            np.testing.assert_array_equal(one.context, same.context)
            pd.testing.assert_index_equal(one.timestamps, same.timestamps)
            pd.testing.assert_index_equal(one.future_timestamps, same.future_timestamps)


def test_errors_name_the_first_failing_series_in_id_order() -> None:
    frame = shuffled_panel(["c", "b", "a"], None, seed=5)
    ordered = frame.sort_values(["unique_id", "ds"])
    for series in ("c", "b"):  # gaps inside the histories of b and c, not a
        frame.loc[ordered[ordered["unique_id"] == series].index[1], "y"] = np.nan
    with pytest.raises(MissingTargetValues, match=r"series 'b' is missing target values in rows"):
        build_tasks(frame, ColumnRoles(), 2)
    repeated = pd.concat([frame, frame[frame["unique_id"] == "c"].iloc[[0]]], ignore_index=True)
    with pytest.raises(DuplicateTimestamps, match="series 'c' has repeated timestamps"):
        build_tasks(repeated, ColumnRoles(), 2)


def test_a_us_resolution_table_windows_like_a_ns_one() -> None:
    days = pd.date_range("2023-01-01", periods=20, freq="D")
    frame = pd.concat(
        [
            pd.DataFrame({"unique_id": i, "ds": days, "y": np.arange(20.0) + k})
            for k, i in enumerate("ab")
        ]
    )
    coarse = frame.assign(ds=frame["ds"].astype("datetime64[us]"))
    window = {"context_start": "2023-01-03", "context_end": "2023-01-09"}
    for fine, other in zip(
        build_tasks(frame, ColumnRoles(), 2, **window),
        build_tasks(coarse, ColumnRoles(), 2, **window),
        strict=True,
    ):
        np.testing.assert_array_equal(
            fine.context, np.arange(2.0, 9.0) + "ab".index(fine.series_id)
        )
        np.testing.assert_array_equal(fine.context, other.context)
        assert list(fine.timestamps) == list(other.timestamps)


def test_limits_still_apply_before_any_task() -> None:
    frame = shuffled_panel(["a", "b", "c"], None, seed=1)
    with pytest.raises(LimitExceeded, match="the request has 3 series"):
        build_tasks(
            frame,
            ColumnRoles(),
            2,
            limits=dataclasses.replace(DataLimits(data_dir="."), max_series=2),
        )


@pytest.mark.parametrize(
    "values",
    [
        ["2024-01-02", "2024-01-01", "2024-01-02", "2024-01-03"] * 20,
        ["2024-03-31T01:00:00+01:00", "2024-03-31T03:00:00+02:00"] * 30,  # offsets change
        [20240101, 20240102, 20240101],  # integers as dates
        ["2024-01-01", "01/02/2024", "2024-01-03"],  # mixed formats
        ["2024-01-01 10:00", "2024-01-01 10:00:30.5"] * 40,
    ],
)
def test_timestamps_parse_as_pandas_parses_every_row(values: list[object]) -> None:
    from sapheneia.data.table import parse_timestamps, to_datetimes

    raw = pd.Series(values, index=pd.RangeIndex(len(values)) + 10)
    reference = to_datetimes(raw.astype(str) if isinstance(values[0], int) else raw)
    pd.testing.assert_series_equal(parse_timestamps(raw, "ds"), reference)
