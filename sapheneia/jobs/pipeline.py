"""The job as a Ray Data pipeline: read -> series into buckets -> an actor pool of adapters ->
one Parquet part per bucket.

    read (Parquet file or folder, CSV)          tasks of ``Engine.cpus`` at most, all stages together
      -> map_batches: bucket = hash(id) % n     rows of finished buckets dropped here (resume)
      -> groupby(bucket).map_groups(BucketWriter, concurrency=Engine.actors, num_cpus=actor_cpus)
      -> one small row per bucket back to the driver, which reports progress

A bucket holds whole series (all rows of a series hash alike), about ``series_per_bucket`` of them,
so memory per actor is bounded whatever the job's size. The adapters are the model deployments'
own (``create_adapter`` + ``load``), so a series' forecast is the served one.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import ray
import ray.data
from ray.data import ExecutionResources

from sapheneia.errors import InvalidInput, SourceNotFound, UnknownColumn
from sapheneia.jobs.buckets import BUCKET, BucketForecaster, series_hash
from sapheneia.jobs.output import MANIFEST, Location, filesystem, write_bucket
from sapheneia.jobs.spec import JobSpec

# Read, bucketing and shuffle tasks each ask for this much CPU, so that they fit the job's budget
# beside the actor pool instead of each reserving a whole core of the cluster.
TASK_CPUS = 0.25
MAX_PARTITIONS = 64


@dataclass
class Progress:
    series_done: int = 0
    series_total: int = 0
    series_failed: int = 0
    rows_written: int = 0
    buckets_done: int = 0
    buckets_total: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


class BucketWriter:
    """The actor of the pool: loads the adapters once, then forecasts and writes bucket after
    bucket, answering one summary row per bucket."""

    def __init__(self, spec_json: str, out: str, s3_endpoint: str | None = None) -> None:
        self.forecaster = BucketForecaster(JobSpec.model_validate_json(spec_json))
        self.location = Location(out, s3_endpoint)

    def __call__(self, batch: pa.Table) -> pd.DataFrame:
        # Arrow to numpy-backed pandas, as the served path reads a table (Ray's pandas batches
        # are Arrow-backed, which the timestamp parsing reads differently).
        frame = batch.to_pandas()
        bucket = int(frame[BUCKET].iloc[0])
        output = self.forecaster.run(frame)
        errors = pa.Table.from_pandas(output.errors, preserve_index=False)
        info = write_bucket(self.location, bucket, output.table, output.series, errors)
        first = output.errors.iloc[0] if len(output.errors) else None
        return pd.DataFrame(
            {
                "bucket": [bucket],
                "series": [info.series],
                "rows": [info.rows],
                "failed": [info.failed],
                "first_error": [
                    "" if first is None else f"{first['unique_id']}: {first['message']}"
                ],
            }
        )


def read_source(source: str, spec: JobSpec, s3_endpoint: str | None = None) -> ray.data.Dataset:
    """The input as a Dataset: a Parquet file or folder of Parquet files, or a CSV file."""
    lowered = source.lower().rstrip("/")
    fs: Any = None
    if s3_endpoint and lowered.startswith("s3://"):
        fs, source = filesystem(source, s3_endpoint)
    if lowered.endswith((".csv", ".csv.gz")):
        import pyarrow.csv as pacsv

        # Ids stay text, as the served path reads them.
        convert = pacsv.ConvertOptions(column_types={spec.id_column: pa.string()})
        ds = ray.data.read_csv(source, filesystem=fs, convert_options=convert, num_cpus=TASK_CPUS)
    else:
        ds = ray.data.read_parquet(source, filesystem=fs, num_cpus=TASK_CPUS)
    present = ds.schema().names
    missing = [c for c in spec.columns() if c not in present]
    if missing:
        raise UnknownColumn(
            f"column(s) {', '.join(repr(m) for m in missing)} not in the source; its columns "
            f"are {', '.join(repr(p) for p in present)}: name them with id_column, "
            "timestamp_column, target_column"
        )
    return ds.select_columns(spec.columns())


def _hashes(batch: pd.DataFrame, id_column: str) -> pd.DataFrame:
    return pd.DataFrame({"h": np.unique(series_hash(batch[id_column].to_numpy()))})


def count_series(ds: ray.data.Dataset, id_column: str) -> np.ndarray:
    """The distinct series hashes, read from the id column alone (8 bytes per series)."""
    seen: list[np.ndarray] = []
    ids = ds.select_columns([id_column]).map_batches(
        _hashes,  # type: ignore[arg-type]  # Ray's stub wants a function of any batch format
        fn_kwargs={"id_column": id_column},
        batch_format="pandas",
        num_cpus=TASK_CPUS,
    )
    for batch in ids.iter_batches(batch_format="numpy", batch_size=None):
        seen.append(np.asarray(batch["h"]))
        if len(seen) > 64:  # keep the driver's list short
            seen = [np.unique(np.concatenate(seen))]
    return np.unique(np.concatenate(seen)) if seen else np.zeros(0, dtype=np.uint64)


def _tag(batch: pa.Table, id_column: str, buckets: int, todo: list[int]) -> pa.Table:
    # Arrow in and out: a pandas round trip here would change the timestamp types.
    ids = batch.column(id_column).to_numpy(zero_copy_only=False)
    bucket = (series_hash(ids) % np.uint64(buckets)).astype(np.int64)
    keep = np.isin(bucket, todo)
    return batch.append_column(BUCKET, pa.array(bucket)).filter(pa.array(keep))


def plan(location: Location, ds: ray.data.Dataset, spec: JobSpec) -> dict[str, Any]:
    """The job's buckets, from the manifest of an earlier run or from one pass over the ids."""
    manifest = location.read_json(MANIFEST)
    if manifest is not None:
        if manifest.get("spec") != spec.fingerprint():
            raise InvalidInput(
                "the output location holds the result of a different job; choose another "
                "output location, or delete that one to start over"
            )
        return manifest
    hashes = count_series(ds, spec.id_column)
    buckets = max(1, math.ceil(len(hashes) / spec.engine.series_per_bucket))
    nonempty = sorted({int(b) for b in np.unique(hashes % np.uint64(buckets))})
    manifest = {
        "spec": spec.fingerprint(),
        "series": len(hashes),
        "buckets": buckets,
        "nonempty": nonempty,
    }
    location.write_json(MANIFEST, manifest)
    return manifest


def run_pipeline(
    spec: JobSpec,
    source: str,
    out: str,
    on_progress: Callable[[Progress], None] | None = None,
    s3_endpoint: str | None = None,
) -> Progress:
    """Run the job to its end, resuming what an earlier run of the same job at ``out`` wrote.
    ``s3_endpoint``: the S3-compatible store of ``s3://`` sources and outputs (``filesystem``)."""
    engine = spec.engine
    context = ray.data.DataContext.get_current()
    context.execution_options.resource_limits = ExecutionResources(
        cpu=engine.cpus, gpu=engine.actors * engine.actor_gpus
    )
    context.enable_progress_bars = False
    # One budget for the whole execution, not a reserved share per operator: with the shares,
    # the adapter actors' CPUs used up the shuffle's, so the next bucket was not gathered until
    # an actor finished and a second actor stayed idle (2 buckets on 2 actors: 4 m 15 s, one
    # actor busy; without the shares 2 m 32 s, both; tests/sapheneia/jobs/test_batch_cli.py).
    context.op_resource_reservation_enabled = False
    location = Location(out, s3_endpoint)
    try:
        ds = read_source(source, spec, s3_endpoint)
    except (FileNotFoundError, OSError) as error:
        if isinstance(error, FileNotFoundError) or "No such file" in str(error):
            raise SourceNotFound("the job's source does not exist (any more)") from error
        raise
    manifest = plan(location, ds, spec)
    buckets, nonempty = int(manifest["buckets"]), list(manifest["nonempty"])
    done = location.part_infos()
    progress = Progress(series_total=int(manifest["series"]), buckets_total=len(nonempty))
    for info in done.values():
        _add(progress, info.series, info.rows, info.failed)
    report = on_progress or (lambda _: None)
    report(progress)
    todo = [b for b in nonempty if b not in done]
    if not todo:
        return progress
    tagged = ds.map_batches(
        _tag,  # type: ignore[arg-type]
        fn_kwargs={"id_column": spec.id_column, "buckets": buckets, "todo": todo},
        batch_format="pyarrow",
        num_cpus=TASK_CPUS,
    )
    # One shuffle partition per bucket, up to a bound: more only costs tasks on a small job.
    grouped = tagged.groupby(BUCKET, num_partitions=min(len(todo), MAX_PARTITIONS))
    written = grouped.map_groups(
        BucketWriter,
        fn_constructor_args=(spec.model_dump_json(), location.uri, s3_endpoint),
        batch_format="pyarrow",
        # One bucket at a time per actor: a bucket is minutes of work, so prefetching gains
        # nothing, while Ray's default queues several on one actor and lets another go idle
        # at the end (6,000 auto-ets series, 8 buckets: two queued on one actor, the other gone).
        compute=ray.data.ActorPoolStrategy(size=engine.actors, max_tasks_in_flight_per_actor=1),
        num_cpus=engine.actor_cpus,
        num_gpus=engine.actor_gpus or None,
    )
    for row in written.iter_rows():
        _add(progress, int(row["series"]), int(row["rows"]), int(row["failed"]))
        report(progress)
    return progress


def _add(progress: Progress, series: int, rows: int, failed: int) -> None:
    progress.series_done += series
    progress.series_failed += failed
    progress.rows_written += rows
    progress.buckets_done += 1
