"""Loading the user's table (upload or bundled sample) and describing it before a forecast."""

from __future__ import annotations

import io
from pathlib import Path

import pandas as pd

from frontend.columns import ColumnMapping
from frontend.payloads import Table
from frontend.text import plain

PREVIEW_ROWS = 20
MAX_PROBLEMS = 8


class DataError(ValueError):
    """A table the UI cannot use, with a message for the user."""


def read_upload(path: str, max_bytes: int) -> Table:
    """A CSV or Parquet file as uploaded; the bytes are sent to the API as they are.

    Gradio refuses bigger uploads already; this also covers a file put in place another way."""
    source = Path(path)
    if source.stat().st_size > max_bytes:
        raise DataError(f"the file is over the {max_bytes:,}-byte upload limit; upload less data")
    content = source.read_bytes()
    suffix = source.suffix.lower()
    try:
        if suffix in {".parquet", ".pq"}:
            frame = pd.read_parquet(io.BytesIO(content))
        elif suffix in {".csv", ".txt"}:
            frame = pd.read_csv(io.BytesIO(content))
        else:
            raise DataError(f"'{source.name}' is neither CSV nor Parquet (.csv, .parquet)")
    except (ValueError, OSError, pd.errors.ParserError) as error:
        if isinstance(error, DataError):
            raise
        raise DataError(f"cannot read '{source.name}': {type(error).__name__}") from error
    if frame.empty or len(frame.columns) < 2:
        raise DataError(f"'{source.name}' needs a header and at least two columns: time and value")
    frame.columns = [str(c) for c in frame.columns]
    return Table(frame, source.name, content)


def sample_choices() -> list[tuple[str, str]]:
    """(label, name) of each bundled dataset, for the sample picker."""
    from sapheneia.datasets import SAMPLES

    return [(f"{name}: {sample.description}", name) for name, sample in SAMPLES.items()]


def read_sample(name: str) -> tuple[Table, dict[str, str]]:
    """A bundled dataset in long format, sent to the API as CSV, and its covariate roles."""
    from sapheneia.datasets import load_sample

    frame, roles = load_sample(name)
    return Table.from_frame(frame, name), dict(roles)


def history_and_future(
    frame: pd.DataFrame, mapping: ColumnMapping, series: str | None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One series' rows as (``ds``, ``y``, covariates...): history, then rows past it with no ``y``."""
    rows = frame
    if mapping.series_id is not None and series is not None:
        rows = frame[frame[mapping.series_id].astype(str) == series]
    rows = rows.assign(ds=pd.to_datetime(rows[mapping.timestamp]), y=rows[mapping.target])
    rows = rows.sort_values("ds")
    return rows[rows["y"].notna()], rows[rows["y"].isna()]


def report(frame: pd.DataFrame, mapping: ColumnMapping) -> str:
    """Markdown (escaped) on rows, series, frequency, gaps and duplicates of a mapped table."""
    from sapheneia.data import ColumnRoles, describe_table

    roles = ColumnRoles(
        timestamp=mapping.timestamp, series_id=mapping.series_id, target=mapping.target
    )
    found = describe_table(frame, roles)
    series = found["series"]
    freqs = sorted({str(s["freq"]) for s in series.values() if s["freq"]})
    total = {k: sum(s[k] or 0 for s in series.values()) for k in ("gaps", "duplicates")}
    future = sum(s["future_rows"] for s in series.values())
    lines = [
        f"{found['rows']} rows, {len(series)} series",
        "frequency: "
        + (", ".join(freqs) if freqs else "not inferred (give one on the Forecast tab)"),
        f"gaps: {total['gaps']}, duplicate timestamps: {total['duplicates']}",
    ]
    if future:
        lines.append(f"{future} future rows (no target): future covariate values")
    lines += [f"problem: {p}" for p in found["problems"][:MAX_PROBLEMS]]
    if len(found["problems"]) > MAX_PROBLEMS:
        lines.append(f"... and {len(found['problems']) - MAX_PROBLEMS} more problems")
    return "\n".join(f"- {plain(line)}" for line in lines)
