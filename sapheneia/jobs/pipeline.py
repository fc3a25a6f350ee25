"""The job as a Ray Data pipeline: read -> series into buckets -> an actor pool of adapters ->
one Parquet part per bucket.

    the id column, streamed here (pyarrow)     series counted, buckets planned: no Ray task yet
    read (Parquet file or folder, CSV)          tasks of ``Engine.cpus`` at most, all stages together
      -> map_batches: bucket = hash(id) % n     rows of finished buckets dropped here (resume);
                                                each bucket's shuffle key (``shuffle_keys``)
      -> groupby(key).map_groups(BucketWriter, concurrency=Engine.actors, num_cpus=actor_cpus)
      -> the bucket's number back to the driver; progress from the parts as they appear

A bucket holds whole series (all rows of a series hash alike), about ``series_per_bucket`` of them,
so memory per actor is bounded whatever the job's size. The adapters are the model deployments'
own (``create_adapter`` + ``load``), so a series' forecast is the served one.
"""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as pads
import ray
import ray.data
from ray.data import ExecutionResources

from sapheneia.errors import InvalidInput, SourceNotFound, UnknownColumn
from sapheneia.jobs.buckets import BUCKET, BucketForecaster, series_hash
from sapheneia.jobs.output import MANIFEST, Location, filesystem, write_bucket
from sapheneia.jobs.shuffle import SHUFFLE_KEY, shuffle_keys
from sapheneia.jobs.spec import JobSpec

# Read, bucketing and shuffle tasks each ask for this much CPU, so that they fit the job's budget
# beside the actor pool instead of each reserving a whole core of the cluster.
TASK_CPUS = 0.25
MAX_PARTITIONS = 64
FILES_PER_FOOTER_READER, MAX_FOOTER_READERS = 500, 8
PROGRESS_EVERY_S = 2.0  # how often a running job looks for newly written parts
FOOTER_READERS_VARIABLE = "RAY_DATA_PARQUET_FOOTER_NUM_ACTORS"


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
    bucket, answering the bucket's number (progress is read from the parts written)."""

    def __init__(self, spec_json: str, out: str, s3_endpoint: str | None = None) -> None:
        self.forecaster = BucketForecaster(JobSpec.model_validate_json(spec_json))
        self.location = Location(out, s3_endpoint)

    def __call__(self, batch: pa.Table) -> pd.DataFrame:
        # Arrow to numpy-backed pandas, as the served path reads a table (Ray's pandas batches
        # are Arrow-backed, which the timestamp parsing reads differently).
        frame = batch.drop_columns([SHUFFLE_KEY]).to_pandas()
        bucket = int(frame[BUCKET].iloc[0])
        output = self.forecaster.run(frame)
        errors = pa.Table.from_pandas(output.errors, preserve_index=False)
        write_bucket(self.location, bucket, output.table, output.series, errors)
        return pd.DataFrame({"bucket": [bucket]})


def _is_csv(source: str) -> bool:
    return source.lower().rstrip("/").endswith((".csv", ".csv.gz"))


def _filesystem(source: str, s3_endpoint: str | None) -> tuple[Any, str]:
    if s3_endpoint and source.lower().startswith("s3://"):
        return filesystem(source, s3_endpoint)
    return None, source


def _csv_ids_as_text(spec: JobSpec) -> Any:
    import pyarrow.csv as pacsv

    # Ids stay text, as the served path reads them.
    return pacsv.ConvertOptions(column_types={spec.id_column: pa.string()})


def source_table(source: str, spec: JobSpec, s3_endpoint: str | None = None) -> pads.Dataset:
    """The input as pyarrow sees it, read in this process for its schema and its series ids: a
    Parquet file or folder of Parquet files, or a CSV file. Its columns are checked here."""
    fs, path = _filesystem(source, s3_endpoint)
    if _is_csv(source):
        data = pads.dataset(
            path,
            format=pads.CsvFileFormat(convert_options=_csv_ids_as_text(spec)),
            filesystem=fs,
        )
    else:
        data = pads.dataset(path, format="parquet", filesystem=fs)
    present = data.schema.names
    missing = [c for c in spec.columns() if c not in present]
    if missing:
        raise UnknownColumn(
            f"column(s) {', '.join(repr(m) for m in missing)} not in the source; its columns "
            f"are {', '.join(repr(p) for p in present)}: name them with id_column, "
            "timestamp_column, target_column"
        )
    return data


@contextmanager
def footer_readers(count: int) -> Iterator[None]:
    """Ray Data's Parquet reader (2.60) lists a source's files with a pool of footer-reading
    actors, 32 unless ``RAY_DATA_PARQUET_FOOTER_NUM_ACTORS`` says otherwise when the read is
    planned: 32 new worker processes per read, a minute of start-up on two cores (the raylet
    throttles them) before a job of any size began. ``count`` of them, for this read only."""
    before = os.environ.get(FOOTER_READERS_VARIABLE)
    os.environ[FOOTER_READERS_VARIABLE] = str(count)
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(FOOTER_READERS_VARIABLE, None)
        else:
            os.environ[FOOTER_READERS_VARIABLE] = before


def read_source(
    source: str, spec: JobSpec, files: int, s3_endpoint: str | None = None
) -> ray.data.Dataset:
    """The input as a Ray Dataset of the job's columns (``source_table`` checked them), from
    ``files`` files."""
    fs, path = _filesystem(source, s3_endpoint)
    if _is_csv(source):
        ds = ray.data.read_csv(
            path, filesystem=fs, convert_options=_csv_ids_as_text(spec), num_cpus=TASK_CPUS
        )
    else:
        # One footer reader per FILES_PER_FOOTER_READER files: a footer is one small read.
        readers = max(1, min(MAX_FOOTER_READERS, math.ceil(files / FILES_PER_FOOTER_READER)))
        with footer_readers(readers):
            ds = ray.data.read_parquet(path, filesystem=fs, num_cpus=TASK_CPUS)
    return ds.select_columns(spec.columns())


def count_series(data: pads.Dataset, id_column: str) -> np.ndarray:
    """The distinct series hashes (8 bytes per series), from the id column alone, streamed in
    this process: a separate Ray Data execution cost a job tens of seconds of task start-up
    before its first bucket, on any size of input."""
    seen: list[np.ndarray] = []
    for batch in data.to_batches(columns=[id_column]):
        # Unique ids first (Arrow, in C++): rows of a series are usually together, so this
        # leaves a fraction of the ids to hash.
        ids = pc.unique(batch.column(0)).to_numpy(zero_copy_only=False)
        seen.append(np.unique(series_hash(ids)))
        if len(seen) > 64:  # keep the list short
            seen = [np.unique(np.concatenate(seen))]
    return np.unique(np.concatenate(seen)) if seen else np.zeros(0, dtype=np.uint64)


def _tag(batch: pa.Table, id_column: str, buckets: int, keys: dict[int, int]) -> pa.Table:
    """Each row's bucket and the bucket's shuffle key; rows of buckets not to do are dropped."""
    # Arrow in and out: a pandas round trip here would change the timestamp types.
    ids = batch.column(id_column).to_numpy(zero_copy_only=False)
    bucket = (series_hash(ids) % np.uint64(buckets)).astype(np.int64)
    key_of = np.full(buckets, -1, dtype=np.int64)
    key_of[list(keys)] = list(keys.values())
    key = key_of[bucket]
    tagged = batch.append_column(BUCKET, pa.array(bucket)).append_column(SHUFFLE_KEY, pa.array(key))
    return tagged.filter(pa.array(key >= 0))


def plan(location: Location, data: pads.Dataset, spec: JobSpec) -> dict[str, Any]:
    """The job's buckets, from the manifest of an earlier run or from one pass over the ids."""
    manifest = location.read_json(MANIFEST)
    if manifest is not None:
        if manifest.get("spec") != spec.fingerprint():
            raise InvalidInput(
                "the output location holds the result of a different job; choose another "
                "output location, or delete that one to start over"
            )
        return manifest
    hashes = count_series(data, spec.id_column)
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
        data = source_table(source, spec, s3_endpoint)
        manifest = plan(location, data, spec)
        ds = read_source(source, spec, len(data.files), s3_endpoint)
    except (FileNotFoundError, OSError) as error:
        if isinstance(error, FileNotFoundError) or "No such file" in str(error):
            raise SourceNotFound("the job's source does not exist (any more)") from error
        raise
    buckets, nonempty = int(manifest["buckets"]), list(manifest["nonempty"])
    progress = Progress(series_total=int(manifest["series"]), buckets_total=len(nonempty))
    report = on_progress or (lambda _: None)
    counted: set[int] = set()

    def count_new_parts() -> bool:
        """Adds the parts written since the last look (the first look: an earlier run's)."""
        new = location.part_infos(known=counted)
        for info in new.values():
            counted.add(info.bucket)
            _add(progress, info.series, info.rows, info.failed)
        return bool(new)

    count_new_parts()
    report(progress)
    todo = [b for b in nonempty if b not in counted]
    if not todo:
        return progress
    # One shuffle partition per bucket, up to a bound: more only costs tasks on a small job.
    partitions = min(len(todo), MAX_PARTITIONS)
    tagged = ds.map_batches(
        _tag,  # type: ignore[arg-type]
        fn_kwargs={
            "id_column": spec.id_column,
            "buckets": buckets,
            "keys": shuffle_keys(todo, partitions),
        },
        batch_format="pyarrow",
        num_cpus=TASK_CPUS,
    )
    grouped = tagged.groupby(SHUFFLE_KEY, num_partitions=partitions)
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
    # Progress from the parts as they are written, not from the rows Ray Data hands back: those
    # come at the end of a task, a task can hold more than one bucket (more buckets than
    # partitions), and the row iterator kept one more back.
    stop = threading.Event()

    def watch() -> None:
        while not stop.wait(PROGRESS_EVERY_S):
            if count_new_parts():
                report(progress)

    watcher = threading.Thread(target=watch, name="job-progress", daemon=True)
    watcher.start()
    try:
        for _ in written.iter_batches(batch_size=None, prefetch_batches=0):
            pass  # the writers' summaries: iterating is what runs the pipeline
    finally:
        stop.set()
        watcher.join()
    if count_new_parts():
        report(progress)
    return progress


def _add(progress: Progress, series: int, rows: int, failed: int) -> None:
    progress.series_done += series
    progress.series_failed += failed
    progress.rows_written += rows
    progress.buckets_done += 1
