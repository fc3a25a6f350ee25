"""Series into buckets, and one bucket's forecasts: the work of each adapter actor, without Ray.

A series goes to bucket ``hash(id) % n_buckets``: every row of a series lands in the same bucket
whatever file or block it came from, and the same input gives the same buckets on a rerun, so a
bucket whose output part exists is skipped.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from sapheneia.data import DataLimits, build_tasks
from sapheneia.errors import SapheneiaError
from sapheneia.evaluation import plan_backtest, report
from sapheneia.jobs.spec import JobSpec
from sapheneia.models import create_adapter
from sapheneia.models.base import ModelAdapter
from sapheneia.models.torch_runtime import ModelThread, use_threads
from sapheneia.tasks import ForecastResult, ForecastTask, results_columns

BUCKET = "__bucket"
#: A bucket is bounded by ``series_per_bucket``, not by the per-request caps.
UNBOUNDED = 1 << 62
# Tasks per adapter call: the adapters' own batching, as a model server's max_batch_size.
CALL_SIZE = 256


def series_hash(ids: np.ndarray) -> np.ndarray:
    """A stable 64-bit hash per series id (pandas' SipHash with its fixed key), ids as text."""
    return pd.util.hash_array(np.asarray(ids).astype(str).astype(object))


def assign_buckets(frame: pd.DataFrame, id_column: str, n_buckets: int) -> np.ndarray:
    return (series_hash(frame[id_column].to_numpy()) % np.uint64(n_buckets)).astype(np.int64)


def limits_for() -> DataLimits:
    """The caps inside one bucket: the job already read the table, and a bucket holds at most
    ``series_per_bucket`` series."""
    return DataLimits(
        data_dir=Path("."),
        max_bytes=UNBOUNDED,
        max_rows=UNBOUNDED,
        max_series=UNBOUNDED,
        max_output_cells=UNBOUNDED,
    )


@dataclass
class BucketOutput:
    """A bucket's result table, and the series that failed (``unique_id, code, message``)."""

    table: pa.Table
    series: int
    errors: pd.DataFrame


class BucketForecaster:
    """Holds the loaded adapters of a job's models and forecasts one bucket at a time."""

    def __init__(self, spec: JobSpec) -> None:
        self.spec = spec
        # As a served replica does: a job's actor runs the models with their configs' threads.
        use_threads(spec.models)
        # Ray Data may call an actor from more than one thread: every model call goes to one.
        self._model_thread = ModelThread("job-model")
        self.adapters: dict[str, ModelAdapter] = {}
        for config in spec.models:
            adapter = create_adapter(config)
            self._model_thread.call(adapter.load)
            self.adapters[config.id] = adapter
        self.limits = limits_for()

    def run(self, frame: pd.DataFrame) -> BucketOutput:
        """Every series of ``frame`` (whole series only), forecast or backtested."""
        frame = frame.drop(columns=[BUCKET], errors="ignore")
        if self.spec.kind == "backtest":
            return self._backtest(frame)
        return self._forecast(frame)

    # -- forecast ---------------------------------------------------------------------------------

    def _forecast(self, frame: pd.DataFrame) -> BucketOutput:
        adapter = next(iter(self.adapters.values()))
        tasks, errors = self._tasks(frame)
        results: list[ForecastResult] = []
        for start in range(0, len(tasks), CALL_SIZE):
            chunk = tasks[start : start + CALL_SIZE]
            outcomes = self._model_thread.call(adapter.forecast, chunk)
            for task, outcome in zip(chunk, outcomes, strict=True):
                if isinstance(outcome, SapheneiaError):
                    errors.append(_error_row(task.series_id, outcome))
                else:
                    results.append(outcome)
        table = _forecast_table(results, self.spec)
        return BucketOutput(table, len(results) + len(errors), _errors_frame(errors))

    def _tasks(self, frame: pd.DataFrame) -> tuple[list[ForecastTask], list[dict[str, str]]]:
        """Tasks of every series; a series that cannot be forecast is an error row, alone."""
        spec = self.spec
        try:
            return self._build(frame), []
        except SapheneiaError:
            pass
        tasks: list[ForecastTask] = []
        errors: list[dict[str, str]] = []
        for series_id, rows in frame.groupby(spec.id_column, sort=True):
            try:
                tasks.extend(self._build(rows))
            except SapheneiaError as error:
                errors.append(_error_row(str(series_id), error))
        return tasks, errors

    def _build(self, frame: pd.DataFrame) -> list[ForecastTask]:
        spec = self.spec
        return build_tasks(
            frame,
            spec.roles(),
            spec.horizon,
            tuple(spec.quantiles),
            context_length=spec.context_length,
            freq=spec.freq,
            group=uuid.uuid4().hex,  # per bucket: fits never cross what one caller sent
            limits=self.limits,
        )

    # -- backtest ---------------------------------------------------------------------------------

    def _backtest(self, frame: pd.DataFrame) -> BucketOutput:
        spec = self.spec
        tables: list[pd.DataFrame] = []
        errors: list[dict[str, str]] = []
        try:
            tables.append(self._backtest_frame(frame))
            series = int(frame[spec.id_column].nunique())
        except SapheneiaError:
            series = 0
            for series_id, rows in frame.groupby(spec.id_column, sort=True):
                series += 1
                try:
                    tables.append(self._backtest_frame(rows))
                except SapheneiaError as error:
                    errors.append(_error_row(str(series_id), error))
        table = pd.concat(tables, ignore_index=True) if tables else pd.DataFrame()
        for column in ("cutoff", "ds"):
            if column in table:
                table[column] = pd.to_datetime(table[column])
        arrow = pa.Table.from_pandas(table, preserve_index=False)
        return BucketOutput(arrow, series, _errors_frame(errors))

    def _backtest_frame(self, frame: pd.DataFrame) -> pd.DataFrame:
        spec = self.spec
        plan = plan_backtest(
            frame,
            spec.roles(),
            horizon=spec.horizon,
            n_windows=spec.n_windows,
            step=spec.step,
            quantiles=spec.quantiles,
            context_length=spec.context_length,
            freq=spec.freq,
            group=uuid.uuid4().hex,
            limits=self.limits,
            models=len(self.adapters),
        )
        results: dict[str, list[list[ForecastResult]]] = {}
        for model_id, adapter in self.adapters.items():
            per_window = []
            for tasks in plan.tasks:
                outcomes = self._model_thread.call(adapter.forecast, tasks)
                for outcome in outcomes:
                    if isinstance(outcome, SapheneiaError):
                        raise outcome
                per_window.append([o for o in outcomes if isinstance(o, ForecastResult)])
            results[model_id] = per_window
        forecasts = report(plan, results).forecasts
        return forecasts.rename(columns={"unique_id": spec.id_column})


def _forecast_table(results: Sequence[ForecastResult], spec: JobSpec) -> pa.Table:
    """The served forecast's columns (``results_columns``), id column named as the input's."""
    if not results:
        return pa.table({spec.id_column: pa.array([], pa.string())})
    columns = results_columns(list(results))
    columns[spec.id_column] = columns.pop("unique_id").astype(str)
    ordered = {spec.id_column: columns.pop(spec.id_column), **columns}
    return pa.table({name: values for name, values in ordered.items()})


def _error_row(series_id: str, error: SapheneiaError) -> dict[str, str]:
    return {"unique_id": series_id, "code": error.code, "message": error.message}


def _errors_frame(rows: list[dict[str, str]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["unique_id", "code", "message"])
