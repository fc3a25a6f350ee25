"""Every bundled sample loads offline and turns into tasks with the expected calendar."""

from __future__ import annotations

import pytest

from sapheneia.data import ColumnRoles, build_tasks
from sapheneia.datasets import SAMPLES, load_sample
from sapheneia.errors import InvalidInput

FREQUENCIES = {"air_passengers": "ME", "co2": "W-SAT", "sunspots": "YS-JAN", "us_macro": "QS-OCT"}


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_sample_builds_tasks(name: str) -> None:
    frame, covariates = load_sample(name)
    assert {"unique_id", "ds", "y"} <= set(frame.columns)
    assert frame["y"].notna().all()
    (task,) = build_tasks(frame, ColumnRoles(), 4)
    assert task.freq == FREQUENCIES[name]
    assert len(task.context) == len(frame)
    for column in covariates:
        assert column in frame.columns


def test_covariate_sample_has_its_roles() -> None:
    _, covariates = load_sample("us_macro")
    assert covariates == {"realcons": "dynamic_numerical", "unemp": "dynamic_numerical"}


def test_unknown_sample() -> None:
    with pytest.raises(InvalidInput, match="air_passengers"):
        load_sample("nope")
