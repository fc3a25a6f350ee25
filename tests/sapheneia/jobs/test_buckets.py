"""One bucket's work without Ray: the served adapters' own forecasts, failures kept per series."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from sapheneia.config import load_model_configs
from sapheneia.data import ColumnRoles, build_tasks
from sapheneia.jobs.buckets import BucketForecaster, assign_buckets
from sapheneia.jobs.output import Location, write_bucket
from sapheneia.jobs.spec import JobSpec
from sapheneia.models import create_adapter
from sapheneia.tasks import results_columns

ROOT = Path(__file__).resolve().parents[3]
CONFIGS = load_model_configs(ROOT / "configs" / "models")


def frame(series: int = 5, length: int = 24) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame(
        {
            "unique_id": np.repeat([f"s{i}" for i in range(series)], length),
            "ds": np.tile(pd.date_range("2022-01-01", periods=length, freq="W"), series),
            "y": rng.normal(size=series * length).cumsum(),
        }
    )


def test_a_bucket_forecasts_what_the_adapter_does_alone() -> None:
    spec = JobSpec(models=[CONFIGS["auto-ets"]], horizon=4, quantiles=[0.1, 0.9])
    data = frame()
    output = BucketForecaster(spec).run(data.sample(frac=1.0, random_state=2))
    adapter = create_adapter(CONFIGS["auto-ets"])
    adapter.load()
    roles = ColumnRoles(timestamp="ds", series_id="unique_id", target="y")
    expected = pd.DataFrame(
        results_columns(adapter.forecast(build_tasks(data, roles, 4, (0.1, 0.9))))  # type: ignore[arg-type]
    )
    pd.testing.assert_frame_equal(output.table.to_pandas(), expected)
    assert output.series == 5 and output.errors.empty


def test_a_short_series_fails_alone() -> None:
    data = pd.concat([frame(3), frame(1, 2).assign(unique_id="short")], ignore_index=True)
    spec = JobSpec(models=[CONFIGS["seasonal-naive"]], horizon=2)
    output = BucketForecaster(spec).run(data)
    assert output.series == 4
    assert sorted(set(output.table.column("unique_id").to_pylist())) == ["s0", "s1", "s2"]
    assert output.errors.to_dict("records") == [
        {
            "unique_id": "short",
            "code": "series_too_short",
            "message": "series 'short' has 2 observations; at least 3 are needed",
        }
    ]


def test_buckets_are_stable_and_keep_a_series_together() -> None:
    data = frame(50, 3)
    first = assign_buckets(data, "unique_id", 7)
    again = assign_buckets(data.iloc[::-1], "unique_id", 7)[::-1]
    assert (first == again).all()
    assert data.assign(b=first).groupby("unique_id")["b"].nunique().max() == 1
    assert len(set(first)) > 1


def test_a_written_part_says_what_it_holds(tmp_path: Path) -> None:
    location = Location(str(tmp_path / "out"))
    table = pa.table({"unique_id": ["a", "a"], "mean": [1.0, 2.0]})
    errors = pa.table({"unique_id": ["b"], "code": ["x"], "message": ["y"]})
    write_bucket(location, 3, table, 2, errors)
    info = location.part_infos()[3]
    assert (info.series, info.rows, info.failed) == (2, 2, 1)
    assert [b.num_rows for b in location.read_parts()] == [2]
    assert not list((tmp_path / "out").glob(".tmp-*"))


def test_a_jobs_actor_runs_its_models_with_their_configs_threads() -> None:
    import torch

    before = torch.get_num_threads()
    wanted = 3 if before != 3 else 2
    configs = [
        CONFIGS["seasonal-naive"],
        CONFIGS["auto-ets"].model_copy(update={"threads": wanted}),
    ]
    try:
        BucketForecaster(JobSpec(models=configs, horizon=2, kind="backtest"))
        assert torch.get_num_threads() == wanted
    finally:
        torch.set_num_threads(before)
