"""Whatever small table and request a caller sends, load_table + build_tasks either build tasks or
refuse with a caller-fixable SapheneiaError (status < 500): never a bare pandas or numpy error.

Also the two 500s found this way before: a horizon past pandas' last date, and headers that
collide once trimmed."""

from __future__ import annotations

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sapheneia.data import ColumnRoles, DataLimits, build_tasks, load_table
from sapheneia.errors import InvalidInput, SapheneiaError

TIMES = st.one_of(
    st.sampled_from(
        [
            "2024-01-01",
            "2024-01-02",
            "2024-02-29",
            "2262-04-11",
            "1677-09-22",
            "9999-12-31",
            "2024-01-01T00:00:00+05:00",
            "2024-03-31T02:30:00+01:00",
            "",
            "not a date",
            "0",
            "20240101",
        ]
    ),
    st.integers(-(2**63), 2**63 - 1),
    st.dates().map(str),
    st.datetimes().map(lambda d: d.isoformat()),
)
VALUES = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(-(2**70), 2**70),
    st.sampled_from(["", "x", "1e999", "-inf", "NaN", None, True]),
)
IDS = st.one_of(st.sampled_from(["a", "b", "", " a"]), st.integers(0, 3), st.none(), st.floats())
ROWS = st.lists(
    st.fixed_dictionaries({"unique_id": IDS, "ds": TIMES, "y": VALUES}), min_size=1, max_size=12
)
QUANTILES = st.lists(
    st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.sampled_from([0.1, 0.5, 0.9])),
    max_size=4,
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    rows=ROWS,
    as_csv=st.booleans(),
    horizon=st.integers(1, 400),
    quantiles=QUANTILES,
    freq=st.sampled_from([None, "D", "MS", "YS", "h", "B", "nonsense"]),
)
def test_every_failure_is_a_caller_error(
    tmp_path_factory: pytest.TempPathFactory,
    rows: list[dict[str, object]],
    as_csv: bool,
    horizon: int,
    quantiles: list[float],
    freq: str | None,
) -> None:
    limits = DataLimits(data_dir=tmp_path_factory.getbasetemp())
    try:
        if as_csv:
            source: object = pd.DataFrame(rows).to_csv(index=False).encode()
            frame = load_table(source, limits, filename="x.csv")  # type: ignore[arg-type]
        else:
            frame = load_table(rows, limits)  # type: ignore[arg-type]
        build_tasks(frame, ColumnRoles(), horizon, quantiles or (0.5,), freq=freq, limits=limits)
    except SapheneiaError as error:
        assert error.status < 500, error.message
        assert error.message


def test_a_horizon_past_pandas_last_date_says_what_to_fix(limits: DataLimits) -> None:
    frame = pd.DataFrame({"ds": pd.date_range("2000-01-01", periods=24, freq="YS"), "y": range(24)})
    with pytest.raises(
        InvalidInput,
        match="300 steps of 'YS-JAN' after 2023-01-01T00:00:00 run past "
        "2262-04-11, the last date the server can represent; ask for a shorter horizon",
    ):
        build_tasks(frame, ColumnRoles(series_id=None), 300)


def test_headers_that_collide_once_trimmed_are_named(limits: DataLimits) -> None:
    with pytest.raises(InvalidInput, match="columns 'y', ' y' have the same name once the spaces"):
        load_table(b"ds,y, y\n2024-01-01,1,2\n", limits, filename="x.csv")
