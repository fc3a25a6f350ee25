"""A job's output location: one Parquet part per bucket, local or on an object store.

Layout under the job's location: ``_manifest.json`` (what the parts answer), ``part-NNNNN.parquet``
(the result rows of one bucket; its key-value metadata holds the bucket's series counts) and
``errors/part-NNNNN.parquet`` (series that failed). A part is written under a temporary name and
moved into place, so a part that exists is complete: a rerun skips its bucket.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

MANIFEST = "_manifest.json"
PART = "part-{:05d}.parquet"


@dataclass(frozen=True)
class PartInfo:
    bucket: int
    series: int
    rows: int
    failed: int


def absolute(uri: str) -> str:
    """A local path made absolute (workers run in other directories); URLs as they are."""
    return uri if "://" in uri else str(Path(uri).expanduser().resolve())


def filesystem(uri: str, s3_endpoint: str | None = None) -> tuple[pafs.FileSystem, str]:
    """The filesystem of ``uri`` and the path inside it. ``s3_endpoint`` (``http(s)://host:port``)
    points ``s3://`` at an S3-compatible store other than AWS (MinIO, Ceph); its credentials come
    from the usual AWS variables or files of the process."""
    if s3_endpoint and uri.lower().startswith("s3://"):
        scheme, _, address = s3_endpoint.partition("://")
        fs = pafs.S3FileSystem(
            endpoint_override=address or scheme, scheme=scheme if address else "https"
        )
        return fs, uri[len("s3://") :].rstrip("/")
    return pafs.FileSystem.from_uri(uri)


class Location:
    """One directory (or prefix) of a filesystem that pyarrow reaches: local, ``s3://``, ``gs://``
    (``s3_endpoint``: see ``filesystem``)."""

    def __init__(self, uri: str, s3_endpoint: str | None = None) -> None:
        self.uri = absolute(uri)
        self.s3_endpoint = s3_endpoint
        self.fs, self.root = filesystem(self.uri, s3_endpoint)

    def child(self, name: str) -> Location:
        return Location(f"{self.uri.rstrip('/')}/{name}", self.s3_endpoint)

    def path(self, name: str) -> str:
        return f"{self.root.rstrip('/')}/{name}"

    def exists(self, name: str = "") -> bool:
        info = self.fs.get_file_info(self.path(name) if name else self.root)
        return info.type != pafs.FileType.NotFound

    def read_json(self, name: str) -> dict[str, object] | None:
        if not self.exists(name):
            return None
        with self.fs.open_input_stream(self.path(name)) as stream:
            loaded: dict[str, object] = json.loads(stream.read())
            return loaded

    def write_bytes(self, name: str, content: bytes) -> None:
        """Whole or not at all: written beside, then moved into place."""
        self.fs.create_dir(self.root, recursive=True)
        target = self.path(name)
        parent = target.rsplit("/", 1)[0]
        self.fs.create_dir(parent, recursive=True)
        temporary = f"{parent}/.tmp-{uuid.uuid4().hex}"
        with self.fs.open_output_stream(temporary) as stream:
            stream.write(content)
        self.fs.move(temporary, target)

    def write_json(self, name: str, value: object) -> None:
        self.write_bytes(name, json.dumps(value, indent=1).encode())

    def write_table(self, name: str, table: pa.Table, metadata: dict[str, str]) -> None:
        sink = pa.BufferOutputStream()
        schema = table.schema.with_metadata({**(table.schema.metadata or {}), **metadata})
        pq.write_table(table.replace_schema_metadata(schema.metadata), sink)
        self.write_bytes(name, sink.getvalue().to_pybytes())

    def parts(self) -> list[str]:
        """Paths of the result parts, in bucket order."""
        if not self.exists():
            return []
        selector = pafs.FileSelector(self.root, recursive=False)
        names = [
            info.path
            for info in self.fs.get_file_info(selector)
            if info.base_name.startswith("part-") and info.base_name.endswith(".parquet")
        ]
        return sorted(names)

    def part_infos(self, known: Collection[int] = ()) -> dict[int, PartInfo]:
        """What each written part holds, from its footer alone; the buckets in ``known`` are
        left out (their footers not read again)."""
        infos = {}
        for path in self.parts():
            bucket = int(path.rsplit("part-", 1)[1].split(".")[0])
            if bucket in known:
                continue
            with self.fs.open_input_file(path) as handle:
                meta = pq.read_metadata(handle)
            extra = {k.decode(): v.decode() for k, v in (meta.metadata or {}).items()}
            infos[bucket] = PartInfo(
                bucket, int(extra.get("series", 0)), meta.num_rows, int(extra.get("failed", 0))
            )
        return infos

    def read_parts(self, columns: list[str] | None = None) -> Iterator[pa.RecordBatch]:
        """The result rows, one record batch at a time (never the whole result in memory)."""
        for path in self.parts():
            with self.fs.open_input_file(path) as handle:
                yield from pq.ParquetFile(handle).iter_batches(columns=columns)

    def remove(self) -> None:
        if self.exists():
            self.fs.delete_dir(self.root)


def write_bucket(
    location: Location, bucket: int, table: pa.Table, series: int, errors: pa.Table
) -> PartInfo:
    """A bucket's errors, then its part (the part's presence says the bucket is done)."""
    name = PART.format(bucket)
    if errors.num_rows:
        location.write_table(f"errors/{name}", errors, {})
    metadata = {"series": str(series), "failed": str(errors.num_rows)}
    location.write_table(name, table, metadata)
    return PartInfo(bucket, series, table.num_rows, errors.num_rows)
