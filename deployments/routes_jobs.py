"""``/api/v2/jobs``: forecasts and backtests over datasets too big for one request, as Ray Data
jobs on the service's own cluster. A job belongs to the key that submitted it."""

from __future__ import annotations

import asyncio
import io
import json
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any, Literal

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from fastapi import APIRouter, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import ConfigDict, Field, model_validator

from deployments.auth import Caller
from deployments.deps import CallerDep, GatewayDep, read_body
from deployments.gateway import Gateway
from deployments.jobs_state import TERMINAL, JobService, new_job_id
from deployments.parsing import body_format, read_upload_form, upload_doc
from deployments.schemas import FORECAST_ERRORS, ColumnNames, error_responses, parse_body
from sapheneia.data import checked_quantiles
from sapheneia.data.formats import format_of, sniff
from sapheneia.data.paths import candidates
from sapheneia.errors import (
    JobNotReady,
    ModelUnavailable,
    SourceForbidden,
    SourceNotFound,
    UnsupportedFormat,
)
from sapheneia.jobs import JobSpec
from sapheneia.jobs.output import Location
from sapheneia.tasks import DEFAULT_QUANTILES

JOB_EXAMPLE: dict[str, Any] = {
    "kind": "forecast",
    "source": "series.parquet",
    "model": "seasonal-naive",
    "horizon": 12,
}
EVENT_POLL_S = 0.5
TABLE_SUFFIXES = (".parquet", ".pq", ".csv", ".csv.gz")


class JobRequest(ColumnNames):
    """``POST /api/v2/jobs``: the fields of /api/v2/forecast (``kind: forecast``) or
    /api/v2/backtest (``kind: backtest``), with the rows always in a ``source``."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [dict(JOB_EXAMPLE)]})

    kind: Literal["forecast", "backtest"] = Field(description="What the job runs.")
    source: str = Field(
        description="A Parquet or CSV file, or a folder of Parquet files, in the data directory; "
        "an allowed URL; or s3:// / gs:// where the server allows object stores."
    )
    model: str | None = Field(default=None, description="forecast: model id or alias.")
    models: list[str] | None = Field(
        default=None, min_length=1, max_length=8, description="backtest: model ids to compare."
    )
    horizon: int = Field(ge=1, le=10000, description="Steps ahead to forecast.")
    quantiles: list[float] = Field(default_factory=lambda: list(DEFAULT_QUANTILES))
    context_length: int | None = Field(default=None, ge=1, le=16384)
    freq: str | None = Field(default=None, description="Pandas alias; inferred when omitted.")
    n_windows: int = Field(default=3, ge=1, le=50, description="backtest: forecast origins.")
    step: int | None = Field(default=None, ge=1, description="backtest: steps between origins.")

    @model_validator(mode="after")
    def _models_for_kind(self) -> JobRequest:
        if self.kind == "forecast" and (self.model is None or self.models is not None):
            raise ValueError("a forecast job names one 'model' (and no 'models')")
        if self.kind == "backtest" and (self.models is None or self.model is not None):
            raise ValueError("a backtest job names its 'models' (and no 'model')")
        return self


def job_view(record: dict[str, Any]) -> dict[str, Any]:
    """What a caller sees of a job (never the owner or the server's paths)."""
    return {
        "job_id": record["job_id"],
        "kind": record["kind"],
        "status": record["status"],
        "models": record["models"],
        "progress": record["progress"],
        "submitted_at": stamp(record["submitted_at"]),
        "started_at": stamp(record["started_at"]),
        "finished_at": stamp(record["finished_at"]),
        "duration_seconds": duration(record),
        "error": record["error"],
    }


def stamp(seconds: float | None) -> str | None:
    return None if seconds is None else pd.Timestamp(seconds, unit="s", tz="UTC").isoformat()


def duration(record: dict[str, Any]) -> float | None:
    if record["started_at"] is None:
        return None
    end = record["finished_at"] or time.time()
    return round(end - record["started_at"], 3)


def job_source(source: str, gateway: Gateway) -> str:
    """The source as the job will read it: a confined absolute path, or an allowed URL."""
    limits = gateway.limits
    text = source.strip()
    lowered = text.lower()
    if lowered.startswith(("http://", "https://")):
        return text  # fetched by the job with the server's URL checks (private addresses, ports)
    if lowered.startswith(("s3://", "gs://")):
        if not limits.allow_object_stores:
            raise SourceForbidden(
                "s3:// and gs:// sources are disabled on this server; ask the operator to allow "
                "object stores, or put the file in the data directory"
            )
        return text
    if "://" in text:
        raise UnsupportedFormat(
            "a job reads a path in the data directory, an http(s) URL, or s3:// / gs://"
        )
    root = limits.data_dir.resolve()
    for candidate in candidates(text, limits.data_dir):
        path = candidate.resolve()
        if not path.is_relative_to(root):
            raise SourceForbidden(
                "the path leads outside the data directory; give a path inside it"
            )
        if path.is_dir() or (path.is_file() and path.name.lower().endswith(TABLE_SUFFIXES)):
            return str(path)
        if path.is_file():
            raise UnsupportedFormat(
                "a job reads Parquet or CSV files, or a folder of Parquet files"
            )
    raise SourceNotFound(f"no file or folder '{text}' in the data directory")


UPLOAD_NAMES = {"parquet": "input.parquet", "csv": "input.csv"}


async def uploaded_job(request: Request) -> tuple[JobRequest, tuple[str, bytes]]:
    """A multipart job: a 'file' part (Parquet or CSV) and a 'request' part with the job's JSON
    without 'source'. The body was capped before this reads the form."""
    body, upload = await read_upload_form(request, JobRequest)
    content = await upload.read()
    kind = format_of(upload.filename, upload.content_type) or sniff(content)
    if kind not in UPLOAD_NAMES:
        raise UnsupportedFormat(f"a job reads Parquet or CSV; the upload is {kind or 'neither'}")
    return body, (UPLOAD_NAMES[kind], content)


def jobs_of(gateway: Gateway) -> JobService:
    if gateway.jobs is None:
        raise ModelUnavailable("batch jobs are not enabled on this server")
    return gateway.jobs


def jobs_router() -> APIRouter:
    router = APIRouter(
        prefix="/api/v2/jobs",
        tags=["jobs"],
        responses=error_responses(*FORECAST_ERRORS, 409),
    )

    @router.post(
        "",
        status_code=202,
        openapi_extra=upload_doc(
            "JobRequest",
            dict(JOB_EXAMPLE),
            '{"kind": "forecast", "model": "auto-ets", "horizon": 12}',
        ),
    )
    async def submit(request: Request, gateway: GatewayDep, caller: CallerDep) -> dict[str, Any]:
        """Start a forecast or backtest job over a file or folder; answers its id at once."""
        jobs = jobs_of(gateway)
        job_id = new_job_id()
        raw = await read_body(request, gateway.limits.max_bytes)
        upload: tuple[str, bytes] | None = None
        if body_format(request, ("json", "multipart")) == "multipart":
            body, upload = await uploaded_job(request)
        else:
            body = parse_body(JobRequest, raw)
        names = [body.model or ""] if body.kind == "forecast" else list(body.models or [])
        model_ids = [gateway.resolve(name) for name in names]
        checked_quantiles(body.quantiles, gateway.limits.max_quantiles)
        spec = JobSpec(
            kind=body.kind,
            models=[gateway.configs[m] for m in model_ids],
            horizon=body.horizon,
            quantiles=body.quantiles,
            context_length=body.context_length,
            freq=body.freq,
            n_windows=body.n_windows,
            step=body.step,
            id_column=body.id_column,
            timestamp_column=body.timestamp_column,
            target_column=body.target_column,
            covariates=body.covariates,
            engine=jobs.options.engine,
        )
        limits = gateway.limits
        if upload is not None:
            # The file goes where the job's workers read: the jobs location (shared by the
            # cluster's nodes when it is an object store).
            name, content = upload
            folder = jobs.options.location().child(job_id)
            folder.write_bytes(name, content)
            source = folder.child(name).uri
        else:
            source = job_source(body.source, gateway)
        record = {
            "job_id": job_id,
            "owner": caller.key_digest,
            "kind": body.kind,
            "models": model_ids,
            "spec": spec.model_dump_json(),
            "source": source,
            # The URL checks of the service, with the jobs' own size cap.
            "limits": {
                **{k: getattr(limits, k) for k in limits.__dataclass_fields__},
                "data_dir": str(limits.data_dir),
                "max_bytes": jobs.options.max_source_bytes,
            },
        }
        created = await jobs.submit(record)
        return {"job_id": created["job_id"], "status": created["status"]}

    @router.get("")
    async def list_jobs(gateway: GatewayDep, caller: CallerDep) -> dict[str, Any]:
        """The caller's jobs, newest first."""
        return {"jobs": [job_view(r) for r in await jobs_of(gateway).list(caller.key_digest)]}

    @router.get("/{job_id}")
    async def get_job(job_id: str, gateway: GatewayDep, caller: CallerDep) -> dict[str, Any]:
        """Status, progress (series done of total, rows written), timings and error of a job."""
        return job_view(await jobs_of(gateway).get(job_id, caller.key_digest))

    @router.delete("/{job_id}")
    async def cancel_job(job_id: str, gateway: GatewayDep, caller: CallerDep) -> dict[str, Any]:
        """Cancel a queued or running job (a finished job stays as it is)."""
        return job_view(await jobs_of(gateway).cancel(job_id, caller.key_digest))

    @router.get("/{job_id}/result")
    async def result(
        job_id: str,
        gateway: GatewayDep,
        caller: CallerDep,
        format: Literal["parquet", "csv"] = "parquet",
    ) -> Response:
        """The job's long-format result, streamed: Parquet (default) or ``?format=csv``."""
        jobs = jobs_of(gateway)
        record = await jobs.get(job_id, caller.key_digest)
        if record["status"] != "succeeded":
            raise JobNotReady(
                f"job '{job_id}' is {record['status']}; its result exists once it has succeeded"
            )
        location = jobs.result(job_id)
        if format == "csv":
            return StreamingResponse(
                iterate(csv_chunks(location)),
                media_type="text/csv",
                headers={"Content-Disposition": f'attachment; filename="{job_id}.csv"'},
            )
        return StreamingResponse(
            iterate(parquet_chunks(location)),
            media_type="application/vnd.apache.parquet",
            headers={"Content-Disposition": f'attachment; filename="{job_id}.parquet"'},
        )

    @router.get("/{job_id}/events")
    async def events(job_id: str, gateway: GatewayDep, caller: CallerDep) -> StreamingResponse:
        """Progress as Server-Sent Events (``event: progress``), ending with ``event: end``."""
        jobs = jobs_of(gateway)
        await jobs.get(job_id, caller.key_digest)  # 404 before the stream starts
        return StreamingResponse(
            progress_events(jobs, job_id, caller),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache"},
        )

    return router


async def progress_events(jobs: JobService, job_id: str, caller: Caller) -> AsyncIterator[str]:
    last: str | None = None
    while True:
        view = job_view(await jobs.get(job_id, caller.key_digest))
        text = json.dumps(view, allow_nan=False)
        if text != last:
            yield f"event: progress\ndata: {text}\n\n"
            last = text
        if view["status"] in TERMINAL:
            yield f"event: end\ndata: {json.dumps({'status': view['status']})}\n\n"
            return
        await asyncio.sleep(EVENT_POLL_S)


async def iterate(chunks: Iterator[bytes]) -> AsyncIterator[bytes]:
    """A blocking chunk iterator, each step off the event loop."""
    done = object()
    while True:
        chunk = await asyncio.to_thread(next, chunks, done)
        if chunk is done:
            return
        yield chunk  # type: ignore[misc]


class ChunkSink(io.RawIOBase):
    """A write-only file that hands over what was written since the last ``take``."""

    def __init__(self) -> None:
        self.chunks: list[bytes] = []
        self.position = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        chunk = bytes(data)
        self.chunks.append(chunk)
        self.position += len(chunk)
        return len(chunk)

    def tell(self) -> int:
        return self.position

    def take(self) -> bytes:
        chunk = b"".join(self.chunks)
        self.chunks.clear()
        return chunk


def parquet_chunks(location: Location) -> Iterator[bytes]:
    """One Parquet file from every part, a row group per part batch, sent as it is written."""
    sink = ChunkSink()
    writer: pq.ParquetWriter | None = None
    schema: pa.Schema | None = None
    for batch in location.read_parts():
        if batch.num_rows == 0:
            continue
        if writer is None or schema is None:
            schema = batch.schema.remove_metadata()
            writer = pq.ParquetWriter(sink, schema)
        writer.write_batch(batch if batch.schema.equals(schema) else batch.cast(schema))
        chunk = sink.take()
        if chunk:
            yield chunk
    if writer is None:  # no rows at all: still a valid Parquet file
        writer = pq.ParquetWriter(sink, pa.schema([]))
    writer.close()
    yield sink.take()


def csv_chunks(location: Location) -> Iterator[bytes]:
    header = True
    for batch in location.read_parts():
        if batch.num_rows == 0:
            continue
        yield batch.to_pandas().to_csv(index=False, header=header).encode()
        header = False
