"""A job's buckets spread evenly over the tasks of its actor pool: with the bucket numbers as
shuffle keys, Ray Data's hash shuffle put up to three of 20 buckets in one task (8 buckets: tasks
of 1, 1, 2 and 4), and one actor forecast them in turn while the other sat idle."""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from sapheneia.jobs.buckets import BUCKET, series_hash
from sapheneia.jobs.pipeline import _tag
from sapheneia.jobs.shuffle import SHUFFLE_KEY, shuffle_keys


def tagged(buckets: int, series: int = 400) -> pa.Table:
    """``series`` series of three rows each, tagged as a job's first stage tags them."""
    ids = np.repeat([f"s{i}" for i in range(series)], 3)
    table = pa.table({"unique_id": ids, "y": np.arange(len(ids), dtype=float)})
    present = np.unique(series_hash(np.unique(ids)) % np.uint64(buckets)).astype(int).tolist()
    keys = shuffle_keys(present, min(len(present), 64))
    return _tag(table, "unique_id", buckets, keys)


@pytest.mark.parametrize(("buckets", "partitions"), [(8, 8), (20, 20), (130, 64), (3, 2)])
def test_keys_are_distinct_and_ray_datas_partition_function_spreads_them_evenly(
    buckets: int, partitions: int
) -> None:
    from ray.data._internal.arrow_ops.transform_pyarrow import hash_partition

    keys = shuffle_keys(list(range(buckets)), partitions)
    assert sorted(keys) == list(range(buckets))
    assert len(set(keys.values())) == buckets
    # Every bucket's rows as the shuffle sees them: several rows per key, in one block.
    rows = pa.table(
        {
            BUCKET: pa.array(np.repeat(list(keys), 5), pa.int64()),
            SHUFFLE_KEY: pa.array(np.repeat(list(keys.values()), 5), pa.int64()),
        }
    )
    placed = hash_partition(rows, hash_cols=[SHUFFLE_KEY], num_partitions=partitions)
    per_partition = sorted(len(set(t.column(BUCKET).to_pylist())) for t in placed.values())
    assert len(per_partition) == partitions
    assert per_partition[-1] - per_partition[0] <= 1, per_partition


def test_a_row_keeps_its_bucket_and_gets_that_buckets_key() -> None:
    table = tagged(buckets=8)
    frame = table.to_pandas()
    expected = series_hash(frame["unique_id"].to_numpy(dtype=object)) % np.uint64(8)
    np.testing.assert_array_equal(frame[BUCKET].to_numpy(), expected.astype(np.int64))
    # One key per bucket and one bucket per key.
    pairs = frame[[BUCKET, SHUFFLE_KEY]].drop_duplicates()
    assert pairs[BUCKET].is_unique and pairs[SHUFFLE_KEY].is_unique
    assert len(pairs) == 8


def test_each_task_of_a_real_groupby_gets_one_bucket() -> None:
    """Through Ray Data itself: groups that share a task id were in one partition."""
    import ray
    import ray.data

    if not ray.is_initialized():  # alone; in the whole suite, the session's cluster
        ray.init(num_cpus=2, include_dashboard=False, _node_ip_address="127.0.0.1")

    def where(group: pd.DataFrame) -> pd.DataFrame:
        task = ray.get_runtime_context().get_task_id()
        return pd.DataFrame({"bucket": [int(group[BUCKET].iloc[0])], "task": [task]})

    seen = (
        ray.data.from_arrow(tagged(buckets=8))
        .groupby(SHUFFLE_KEY, num_partitions=8)
        .map_groups(where, batch_format="pandas")
        .to_pandas()
    )
    buckets_per_task: dict[str, set[int]] = defaultdict(set)
    for bucket, task in zip(seen["bucket"], seen["task"], strict=True):
        buckets_per_task[task].add(bucket)
    assert sorted(len(b) for b in buckets_per_task.values()) == [1] * 8
