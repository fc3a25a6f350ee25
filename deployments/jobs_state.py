"""Job state, kept in Ray and on disk so that a job outlives the ingress replica that took it.

One detached ``JobBoard`` actor per jobs location (``SAPHENEIA_JOBS_URI``) holds every job's record,
saves it as ``<location>/<job_id>/job.json`` on each change, and runs queued jobs (``concurrent`` at
a time), each in a ``JobRunner`` actor of its own that drives the Ray Data pipeline. Cancelling kills
the runner, and with it the pipeline's tasks and actors (they share their owner's fate). A board
that restarts reloads the records and queues again the jobs that were running: they resume from
the parts already written. Results older than ``retention_days`` are removed with their record.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
import uuid
from typing import Any

import ray
from pydantic import BaseModel, ConfigDict, Field

from sapheneia.data import DataLimits
from sapheneia.errors import DataError, SapheneiaError
from sapheneia.jobs.output import Location
from sapheneia.jobs.spec import Engine

logger = logging.getLogger("ray.serve")

BOARD_NAME = "sapheneia-jobs"
NAMESPACE = "sapheneia"
TERMINAL = frozenset({"succeeded", "failed", "cancelled"})
RECORD = "job.json"
SWEEP_EVERY_S = 600.0
TICK_S = 0.25


class JobOptions(BaseModel):
    """The jobs settings an ingress passes to its board: where results go, how long they stay,
    how many jobs run at once, and each job's resources."""

    model_config = ConfigDict(extra="forbid")

    uri: str = Field(description="Jobs location: a local directory or s3:// / gs:// prefix.")
    s3_endpoint: str | None = Field(
        default=None, description="S3-compatible endpoint of s3:// locations and sources."
    )
    retention_days: float = Field(default=7.0, gt=0)
    concurrent: int = Field(default=1, ge=1)
    engine: Engine = Field(default_factory=Engine)
    max_source_bytes: int = Field(default=1 << 30, ge=1)

    def location(self) -> Location:
        return Location(self.uri, self.s3_endpoint)


@ray.remote(num_cpus=0)
class JobRunner:
    """Drives one job's pipeline; killed to cancel it."""

    def run(
        self,
        board: Any,
        job_id: str,
        spec_json: str,
        source: str,
        out: str,
        limits: DataLimits,
        s3_endpoint: str | None = None,
    ) -> dict[str, Any]:
        from sapheneia.jobs import JobSpec, run_pipeline
        from sapheneia.jobs.sources import local_source

        spec = JobSpec.model_validate_json(spec_json)
        try:
            path = local_source(source, f"{out.rsplit('/', 1)[0]}/source", limits, s3_endpoint)
            progress = run_pipeline(
                spec,
                path,
                out,
                on_progress=lambda p: board.progress.remote(job_id, p.as_dict()),
                s3_endpoint=s3_endpoint,
            )
        except SapheneiaError as error:
            return failed(error)
        except Exception:
            logger.exception("job %s failed", job_id)
            return failed(
                SapheneiaError(
                    f"the job failed on the server; quote job id {job_id} to the operator"
                )
            )
        if progress.series_total and progress.series_failed == progress.series_total:
            every = DataError("every series failed; see the job's errors")
            return {**failed(every), "progress": progress.as_dict()}
        return {"status": "succeeded", "progress": progress.as_dict()}


def failed(error: SapheneiaError) -> dict[str, Any]:
    """A job's outcome when it failed with ``error`` (its code and message, as a route's would)."""
    return {"status": "failed", "error": {"code": error.code, "message": error.message}}


@ray.remote(num_cpus=0, max_restarts=-1, max_task_retries=-1, max_concurrency=64)  # type: ignore[call-overload]
class JobBoard:
    def __init__(self, options: dict[str, Any]) -> None:
        self.settings = JobOptions.model_validate(options)
        self.location = self.settings.location()
        self.lock = threading.Lock()
        self.records: dict[str, dict[str, Any]] = {}
        self.runners: dict[str, tuple[Any, Any]] = {}
        self._load()
        self._swept = 0.0
        threading.Thread(target=self._schedule, daemon=True, name="jobs").start()

    # -- what the ingress calls ----------------------------------------------------------------------

    def submit(self, record: dict[str, Any]) -> dict[str, Any]:
        record = {**record, "status": "queued", "submitted_at": time.time()}
        record.update(started_at=None, finished_at=None, error=None, progress=empty_progress())
        with self.lock:
            self.records[record["job_id"]] = record
            self._save(record)
        return record

    def get(self, job_id: str) -> dict[str, Any] | None:
        return self.records.get(job_id)

    def list(self, owner: str) -> list[dict[str, Any]]:
        mine = [r for r in self.records.values() if r["owner"] == owner]
        return sorted(mine, key=lambda r: r["submitted_at"], reverse=True)

    def cancel(self, job_id: str) -> dict[str, Any] | None:
        with self.lock:
            record = self.records.get(job_id)
            if record is None or record["status"] in TERMINAL:
                return record
            runner = self.runners.pop(job_id, None)
            if runner is not None:
                ray.kill(runner[0])
            self._finish(record, {"status": "cancelled"})
        return record

    def progress(self, job_id: str, progress: dict[str, int]) -> None:
        with self.lock:
            record = self.records.get(job_id)
            if record is not None and record["status"] == "running":
                record["progress"] = progress
                self._save(record)

    # -- running ---------------------------------------------------------------------------------

    def _schedule(self) -> None:
        me = ray.get_runtime_context().current_actor
        while True:
            try:
                self._tick(me)
            except Exception:  # the board must keep scheduling; the next tick retries
                logger.exception("job board tick failed")
            time.sleep(TICK_S)

    def _tick(self, me: Any) -> None:
        with self.lock:
            for job_id, (_, ref) in list(self.runners.items()):
                ready, _ = ray.wait([ref], timeout=0)
                if ready:
                    del self.runners[job_id]
                    try:
                        outcome = ray.get(ref)
                    except Exception:
                        logger.exception("job %s: its runner died", job_id)
                        stopped = "the job's runner stopped; submit the job again"
                        outcome = failed(SapheneiaError(stopped))
                    self._finish(self.records[job_id], outcome)
            queued = sorted(
                (r for r in self.records.values() if r["status"] == "queued"),
                key=lambda r: r["submitted_at"],
            )
            for record in queued[: max(0, self.settings.concurrent - len(self.runners))]:
                self._start(me, record)
        if time.time() - self._swept > SWEEP_EVERY_S:
            self._sweep()

    def _start(self, me: Any, record: dict[str, Any]) -> None:
        job_id = record["job_id"]
        runner = JobRunner.remote()  # type: ignore[attr-defined]
        limits = record_limits(record)
        ref = runner.run.remote(
            me,
            job_id,
            record["spec"],
            record["source"],
            self.result_uri(job_id),
            limits,
            self.settings.s3_endpoint,
        )
        self.runners[job_id] = (runner, ref)
        record.update(status="running", started_at=record["started_at"] or time.time())
        self._save(record)

    def _finish(self, record: dict[str, Any], outcome: dict[str, Any]) -> None:
        record["status"] = outcome["status"]
        record["error"] = outcome.get("error")
        if "progress" in outcome:
            record["progress"] = outcome["progress"]
        record["finished_at"] = time.time()
        if record["status"] == "cancelled":
            self.location.child(record["job_id"]).child("result").remove()
        self._save(record)

    def result_uri(self, job_id: str) -> str:
        return self.location.child(job_id).child("result").uri

    # -- on disk ---------------------------------------------------------------------------------

    def _save(self, record: dict[str, Any]) -> None:
        self.location.child(record["job_id"]).write_json(RECORD, record)

    def _load(self) -> None:
        import pyarrow.fs as pafs

        if not self.location.exists():
            return
        selector = pafs.FileSelector(self.location.root, recursive=False)
        for info in self.location.fs.get_file_info(selector):
            if info.type != pafs.FileType.Directory:
                continue
            record = self.location.child(info.base_name).read_json(RECORD)
            if record is None:
                continue
            if record["status"] == "running":
                record["status"] = "queued"  # resumes from the parts already written
            self.records[str(record["job_id"])] = record

    def _sweep(self) -> None:
        self._swept = time.time()
        cutoff = time.time() - self.settings.retention_days * 86400
        with self.lock:
            for job_id, record in list(self.records.items()):
                if record["status"] in TERMINAL and (record["finished_at"] or 0) < cutoff:
                    self.location.child(job_id).remove()
                    del self.records[job_id]


def record_limits(record: dict[str, Any]) -> DataLimits:
    from pathlib import Path

    raw = dict(record["limits"])
    raw["data_dir"] = Path(raw["data_dir"])
    ports = raw.get("url_ports")
    raw["url_ports"] = tuple(ports) if ports is not None else None
    return DataLimits(**raw)


def empty_progress() -> dict[str, int]:
    return {
        "series_done": 0,
        "series_total": 0,
        "series_failed": 0,
        "rows_written": 0,
        "buckets_done": 0,
        "buckets_total": 0,
    }


def new_job_id() -> str:
    return f"job-{uuid.uuid4().hex[:16]}"


def board_name(options: JobOptions) -> str:
    """One board per jobs location (and store)."""
    from sapheneia.jobs.output import absolute

    place = absolute(options.uri) + (f" {options.s3_endpoint}" if options.s3_endpoint else "")
    return f"{BOARD_NAME}-{hashlib.sha256(place.encode()).hexdigest()[:12]}"


def get_job_board(options: JobOptions) -> Any:
    """The board of a jobs location, created by whoever asks first; detached, so it outlives every
    ingress replica and ``serve run``."""
    return JobBoard.options(  # type: ignore[attr-defined]
        name=board_name(options),
        namespace=NAMESPACE,
        lifetime="detached",
        get_if_exists=True,
    ).remote(options.model_dump())


class JobService:
    """The ingress's side of the board: records owned by the caller, or ``JobNotFound``."""

    def __init__(self, options: JobOptions) -> None:
        self.options = options
        self.board = get_job_board(options)

    async def submit(self, record: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = await self.board.submit.remote(record)
        return result

    async def get(self, job_id: str, owner: str) -> dict[str, Any]:
        record = await self.board.get.remote(job_id)
        return owned(record, job_id, owner)

    async def list(self, owner: str) -> list[dict[str, Any]]:
        records: list[dict[str, Any]] = await self.board.list.remote(owner)
        return records

    async def cancel(self, job_id: str, owner: str) -> dict[str, Any]:
        owned(await self.board.get.remote(job_id), job_id, owner)
        return owned(await self.board.cancel.remote(job_id), job_id, owner)

    def result(self, job_id: str) -> Location:
        """Where a job's result parts are."""
        return self.options.location().child(job_id).child("result")


def owned(record: dict[str, Any] | None, job_id: str, owner: str) -> dict[str, Any]:
    """Another key's job is answered exactly as a job that does not exist."""
    from sapheneia.errors import JobNotFound

    if record is None or record["owner"] != owner:
        raise JobNotFound(f"no job '{job_id}' for this API key; GET /api/v2/jobs lists yours")
    return record
