"""Which shuffle partition, and so which task of the actor pool, holds each bucket.

``groupby(...).map_groups`` gathers a bucket's rows with Ray Data's hash shuffle: a row goes to
partition ``hash(key) % partitions``, and a partition is one task, forecast on one actor. With
the bucket numbers as keys, 20 buckets hashed into 20 partitions made 11 tasks of one to three
buckets (8 into 8: tasks of 1, 1, 2 and 4), so one actor forecast three buckets in turn while the
other had finished and sat idle. Each bucket gets instead a key that Ray's own partition function
sends where it should: the i-th bucket of the job to partition ``i % partitions``, so tasks differ
by at most one bucket.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

SHUFFLE_KEY = "__shuffle_key"
# Keys tried per partition: any partition gets a few of 64 * n random-looking hashes.
CANDIDATES_PER_PARTITION = 64


def shuffle_keys(buckets: list[int], partitions: int) -> dict[int, int]:
    """A distinct shuffle key for each bucket, balanced over ``partitions``.

    The keys are chosen with the function Ray Data's shuffle calls on every block. Should that
    internal function move or change, the keys stay distinct (a job stays correct) and only the
    balance is lost, as it was with the bucket numbers as keys."""
    count = CANDIDATES_PER_PARTITION * partitions
    candidates = pa.table({SHUFFLE_KEY: pa.array(np.arange(count), pa.int64())})
    try:
        from ray.data._internal.arrow_ops.transform_pyarrow import hash_partition

        placed = hash_partition(candidates, hash_cols=[SHUFFLE_KEY], num_partitions=partitions)
        slots = {int(p): t.column(0).to_pylist() for p, t in placed.items()}
    except (ImportError, TypeError, ValueError):
        slots = {}
    keys: dict[int, int] = {}
    for i, bucket in enumerate(buckets):
        slot = slots.get(i % partitions, [])
        # Past the candidates: distinct from every one of them, wherever it lands.
        keys[bucket] = slot[i // partitions] if i // partitions < len(slot) else count + bucket
    return keys
