"""Caps on what one request may ask for: series, id and column-name length, quantile levels,
output cells. Each refusal is a 413 ``limit_exceeded`` naming the cap, the value and the fix."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sapheneia.data import ColumnRoles, DataLimits, build_tasks, load_table
from sapheneia.errors import LimitExceeded

LONG = ColumnRoles()


def series_frame(ids: list[str], length: int = 4) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "unique_id": np.repeat(ids, length),
            "ds": np.tile(pd.date_range("2024-01-01", periods=length, freq="D"), len(ids)),
            "y": np.arange(len(ids) * length, dtype=float),
        }
    )


@pytest.fixture
def caps(tmp_path: Path) -> DataLimits:
    return DataLimits(data_dir=tmp_path)


def refused(match: str, *args: object, **kwargs: object) -> LimitExceeded:
    with pytest.raises(LimitExceeded, match=match) as error:
        build_tasks(*args, **kwargs)  # type: ignore[arg-type]
    assert error.value.status == 413 and error.value.code == "limit_exceeded"
    return error.value


def test_too_many_series_are_refused(caps: DataLimits) -> None:
    frame = series_frame([f"s{i}" for i in range(6)])
    error = refused(
        "the request has 6 series, over the limit of 5; split the request by series",
        frame,
        LONG,
        2,
        limits=dataclasses.replace(caps, max_series=5),
    )
    assert "SAPHENEIA_MAX_SERIES" in error.message
    assert len(build_tasks(frame, LONG, 2, limits=dataclasses.replace(caps, max_series=6))) == 6


def test_a_huge_series_id_is_refused_before_any_output(caps: DataLimits) -> None:
    huge = "x" * 1024 * 1024
    error = refused(
        "series id 'x{40}'... is 1,048,576 characters long, over the limit of 256",
        series_frame([huge]),
        LONG,
        10_000,
        limits=caps,
    )
    assert "SAPHENEIA_MAX_NAME_CHARS" in error.message and len(error.message) < 400


def test_default_caps_apply_without_limits() -> None:
    refused("characters long, over the limit of 256", series_frame(["x" * 300]), LONG, 2)


def test_long_column_names_are_refused(caps: DataLimits) -> None:
    with pytest.raises(LimitExceeded, match=r"column name 'y{40}'\.\.\. is 300 characters long"):
        load_table([{"y" * 300: 1.0}], caps)


def test_too_many_quantile_levels_are_refused(caps: DataLimits) -> None:
    levels = [round(0.001 * i, 3) for i in range(1, 101)]
    error = refused(
        "the request asks for 100 quantile levels, over the limit of 99; ask for fewer levels",
        series_frame(["a"]),
        LONG,
        2,
        levels,
        limits=caps,
    )
    assert "SAPHENEIA_MAX_QUANTILES" in error.message
    assert (
        len(build_tasks(series_frame(["a"]), LONG, 2, levels[:99], limits=caps)[0].quantiles) == 99
    )


def test_output_cells_are_capped(caps: DataLimits) -> None:
    frame = series_frame(["a", "b", "c"])
    small = dataclasses.replace(caps, max_output_cells=3 * 10 * 4 - 1)
    error = refused(
        r"the forecast would have 120 values \(horizon 10 × 3 series × 4 columns: the mean and "
        r"3 quantile levels\), over the limit of 119; split the request",
        frame,
        LONG,
        10,
        (0.1, 0.5, 0.9),
        limits=small,
    )
    assert "SAPHENEIA_MAX_OUTPUT_CELLS" in error.message
    build_tasks(
        frame, LONG, 10, (0.1, 0.5, 0.9), limits=dataclasses.replace(small, max_output_cells=120)
    )


def test_a_horizon_alone_over_the_cap_is_refused_before_the_table_is_read(
    caps: DataLimits,
) -> None:
    not_a_table = pd.DataFrame({"other": [1]})  # would be an UnknownColumn if it were read
    refused(
        "horizon 10,000 × 1 series",
        not_a_table,
        LONG,
        10_000,
        limits=dataclasses.replace(caps, max_output_cells=1000),
    )


def test_settings_reach_the_limits(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from sapheneia.settings import Settings

    for name, value in {
        "SAPHENEIA_MAX_ROWS": "11",
        "SAPHENEIA_MAX_COLUMNS": "12",
        "SAPHENEIA_MAX_SERIES": "13",
        "SAPHENEIA_MAX_NAME_CHARS": "14",
        "SAPHENEIA_MAX_QUANTILES": "15",
        "SAPHENEIA_MAX_OUTPUT_CELLS": "16",
        "SAPHENEIA_MAX_ONE_STEP_POINTS": "17",
    }.items():
        monkeypatch.setenv(name, value)
    limits = DataLimits.from_settings(Settings(data_dir=tmp_path))
    assert (
        limits.max_rows,
        limits.max_columns,
        limits.max_series,
        limits.max_name_chars,
        limits.max_quantiles,
        limits.max_output_cells,
        limits.max_one_step_points,
    ) == (11, 12, 13, 14, 15, 16, 17)
