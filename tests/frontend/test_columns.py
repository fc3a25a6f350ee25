"""Column detection and the role picker's checks, on small frames."""

from __future__ import annotations

import pandas as pd
import pytest

from frontend.columns import covariate_roles, detect_mapping, series_names


def months(n: int) -> list[str]:
    return [d.strftime("%Y-%m-%d") for d in pd.date_range("2024-01-01", periods=n, freq="MS")]


def test_long_format_with_standard_names() -> None:
    frame = pd.DataFrame(
        {"unique_id": ["a"] * 3 + ["b"] * 3, "ds": months(3) * 2, "y": range(6), "price": range(6)}
    )
    mapping = detect_mapping(frame)
    assert mapping is not None
    assert (mapping.timestamp, mapping.series_id, mapping.target) == ("ds", "unique_id", "y")
    assert mapping.covariates == {"price": "dynamic_numerical"}


def test_seed_layout_is_one_series_with_the_first_numeric_target() -> None:
    frame = pd.DataFrame(
        {"Date": months(4), "passengers": [1, 2, 3, 4], "holiday": ["n", "y", "n", "n"]}
    )
    mapping = detect_mapping(frame)
    assert mapping is not None
    assert (mapping.timestamp, mapping.series_id, mapping.target) == ("Date", None, "passengers")
    assert mapping.covariates == {"holiday": "dynamic_categorical"}


def test_unnamed_id_column_found_by_duplicate_timestamps() -> None:
    frame = pd.DataFrame(
        {
            "when": months(3) * 2,
            "shop": ["north"] * 3 + ["south"] * 3,
            "sold": [1.0, 2, 3, 4, 5, 6],
            "size": [10] * 3 + [20] * 3,
            "region": ["x"] * 3 + ["y"] * 3,
        }
    )
    mapping = detect_mapping(frame)
    assert mapping is not None
    assert (mapping.timestamp, mapping.series_id, mapping.target) == ("when", "shop", "sold")
    assert mapping.covariates == {"size": "static_numerical", "region": "static_categorical"}
    assert series_names(frame, "shop") == ["north", "south"]


def test_numbers_are_never_taken_for_timestamps() -> None:
    assert detect_mapping(pd.DataFrame({"a": [1, 2, 3], "b": [4.0, 5, 6]})) is None


def test_no_numeric_target() -> None:
    assert detect_mapping(pd.DataFrame({"ds": months(2), "label": ["a", "b"]})) is None


def test_roles_from_pickers() -> None:
    lists = {"dynamic_numerical": ["price"], "static_categorical": ["region"]}
    assert covariate_roles(lists, {"ds", "y"}) == {
        "price": "dynamic_numerical",
        "region": "static_categorical",
    }


def test_a_column_with_two_roles_is_refused() -> None:
    lists = {"dynamic_numerical": ["price"], "static_numerical": ["price"]}
    with pytest.raises(ValueError, match=r"column 'price' has two roles"):
        covariate_roles(lists, {"ds", "y"})


def test_the_target_cannot_be_a_covariate() -> None:
    with pytest.raises(ValueError, match=r"column 'y' is the timestamp, series id or target"):
        covariate_roles({"dynamic_numerical": ["y"]}, {"ds", "y"})
