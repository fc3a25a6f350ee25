"""DataFrames to request bodies and answers back to DataFrames, and the split of a big frame
into requests by series. No I/O: ``Client`` and ``AsyncClient`` share all of it."""

from __future__ import annotations

import io
import json
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from sapheneia.data.table import labels
from sapheneia.tasks import CovariateRole


@dataclass(frozen=True)
class Columns:
    """Which columns of the caller's frames hold the series id, the time and the target."""

    id_col: str = "unique_id"
    time_col: str = "ds"
    target_col: str = "y"

    def fields(self) -> dict[str, str]:
        return {
            "id_column": self.id_col,
            "timestamp_column": self.time_col,
            "target_column": self.target_col,
        }


def covariate_roles(
    df: pd.DataFrame, columns: Columns, covariates: Mapping[str, CovariateRole] | None
) -> dict[str, CovariateRole]:
    """The roles sent: as given, or every other column of ``df`` as a dynamic covariate
    (numeric or categorical by dtype), as in Nixtla's convention."""
    if covariates is not None:
        return dict(covariates)
    named = {columns.id_col, columns.time_col, columns.target_col}
    return {
        str(c): "dynamic_numerical"
        if pd.api.types.is_numeric_dtype(df[c])
        else "dynamic_categorical"
        for c in df.columns
        if c not in named
    }


def with_future(df: pd.DataFrame, X_df: pd.DataFrame | None, columns: Columns) -> pd.DataFrame:
    """History rows then future covariate rows (``X_df``) with an empty target: the API's layout."""
    if X_df is None:
        return df
    keys = [c for c in (columns.id_col, columns.time_col) if c in df.columns]
    missing = [c for c in keys if c not in X_df.columns]
    extra = [c for c in X_df.columns if c not in df.columns]
    if missing or extra:
        raise ValueError(
            f"X_df needs the columns {keys} and only covariate columns that df also has; "
            f"missing {missing}, not in df {extra}"
        )
    if columns.target_col in X_df.columns:
        raise ValueError(f"X_df holds future covariates only: drop '{columns.target_col}'")
    return pd.concat([df, X_df.assign(**{columns.target_col: np.nan})], ignore_index=True)


def parquet_bytes(frame: pd.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    return buffer.getvalue()


def upload(fields: Mapping[str, Any], frame: pd.DataFrame) -> dict[str, Any]:
    """``httpx`` keyword arguments of a multipart upload: the rows as Parquet (typed and compact,
    unlike JSON rows) and the request JSON."""
    return {
        "files": {"file": ("data.parquet", parquet_bytes(frame), "application/vnd.apache.parquet")},
        "data": {"request": json.dumps(dict(fields))},
    }


@dataclass(frozen=True)
class Chunk:
    """Rows (positions in the frame) of whole series, sent as one request."""

    rows: np.ndarray
    series: int


def plan_chunks(frame: pd.DataFrame, id_col: str, max_series: int, max_bytes: int) -> list[Chunk]:
    """Whole series, in the server's order (ids sorted as text), packed into chunks of at most
    ``max_series`` series and about ``max_bytes`` of frame memory (a chunk always holds at least
    one series). Concatenating the chunks' answers gives the one-request answer."""
    if id_col not in frame.columns or len(frame) == 0:
        return [Chunk(np.arange(len(frame)), 1)]
    ids = labels(frame[id_col].reset_index(drop=True))
    order = np.argsort(ids.to_numpy(dtype=str), kind="stable")
    sorted_ids = ids.to_numpy(dtype=str)[order]
    starts = np.flatnonzero(np.r_[True, sorted_ids[1:] != sorted_ids[:-1]])
    ends = np.r_[starts[1:], len(order)]
    row_bytes = frame.memory_usage(deep=True, index=False).sum() / len(frame)
    chunks: list[Chunk] = []
    first, size = 0, 0.0
    for index, (start, end) in enumerate(zip(starts, ends, strict=True)):
        series_bytes = (end - start) * row_bytes
        if index > first and (index - first >= max_series or size + series_bytes > max_bytes):
            chunks.append(Chunk(order[starts[first] : start], index - first))
            first, size = index, 0.0
        size += series_bytes
    chunks.append(Chunk(order[starts[first] :], len(starts) - first))
    return chunks


def halves(chunk: Chunk, frame: pd.DataFrame, id_col: str) -> list[Chunk]:
    """A chunk the server refused as too big, as two chunks of half its series each."""
    part = frame.iloc[chunk.rows]
    split = plan_chunks(part, id_col, max_series=(chunk.series + 1) // 2, max_bytes=sys.maxsize)
    return [Chunk(chunk.rows[c.rows], c.series) for c in split]
