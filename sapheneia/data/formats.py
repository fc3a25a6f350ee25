"""Bytes and records to a DataFrame: CSV, Parquet and JSON (records or columns)."""

from __future__ import annotations

import io
import json
from collections.abc import Mapping, Sequence
from pathlib import PurePosixPath
from typing import Any

import pandas as pd

from sapheneia.errors import InvalidInput, UnsupportedFormat

FORMATS = {
    ".csv": "csv",
    ".txt": "csv",
    ".tsv": "tsv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".json": "json",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
}
CONTENT_TYPES = {
    "text/csv": "csv",
    "application/csv": "csv",
    "text/tab-separated-values": "tsv",
    "application/json": "json",
    "application/x-ndjson": "jsonl",
    "application/vnd.apache.parquet": "parquet",
    "application/x-parquet": "parquet",
}
SPREADSHEETS = {".xls", ".xlsx", ".xlsm", ".ods"}
FIX = 'send CSV (with a header row), Parquet, or JSON records like [{"ds": ..., "y": ...}]'


def format_of(filename: str | None, content_type: str | None = None) -> str | None:
    """The format a file name's suffix (or else a Content-Type) names; None means sniff."""
    suffix = PurePosixPath(filename or "").suffix.lower()
    if suffix in SPREADSHEETS:
        raise UnsupportedFormat(f"spreadsheets ({suffix}) are not read; export the sheet as CSV")
    if suffix in FORMATS:
        return FORMATS[suffix]
    media = (content_type or "").split(";")[0].strip().lower()
    return CONTENT_TYPES.get(media)


def sniff(content: bytes) -> str:
    if content.startswith(b"PAR1"):
        return "parquet"
    head = content.lstrip()[:1]
    if head in (b"[", b"{"):
        return "json"
    return "csv"


def read_bytes(
    content: bytes, filename: str | None = None, content_type: str | None = None
) -> pd.DataFrame:
    """Parse a file's bytes; the format comes from ``filename``'s suffix, else it is sniffed."""
    if not content.strip():
        raise UnsupportedFormat(f"the file is empty; {FIX}")
    kind = format_of(filename, content_type) or sniff(content)
    try:
        frame = _parse(content, kind)
    except UnsupportedFormat:
        raise
    except (ValueError, TypeError, UnicodeDecodeError, OSError, pd.errors.ParserError) as exc:
        raise UnsupportedFormat(
            f"the file could not be read as {kind.upper()} ({_short(exc)}); {FIX}"
        ) from exc
    return _checked(frame)


def records_to_frame(records: Sequence[Any] | Mapping[str, Any]) -> pd.DataFrame:
    """Inline JSON: a list of row objects, or an object of equal-length columns."""
    if isinstance(records, Mapping):
        return _checked(_columns_frame(records))
    bad = next((i for i, row in enumerate(records) if not isinstance(row, Mapping)), None)
    if bad is not None:
        raise InvalidInput(f"data row {bad + 1} is not an object; {FIX}")
    return _checked(pd.DataFrame.from_records(list(records)))


def _parse(content: bytes, kind: str) -> pd.DataFrame:
    if kind == "parquet":
        return pd.read_parquet(io.BytesIO(content))
    if kind == "jsonl":
        return pd.read_json(io.BytesIO(content), lines=True, dtype=False, convert_dates=False)
    if kind == "json":
        try:
            parsed = json.loads(content.decode("utf-8-sig"))
        except json.JSONDecodeError as exc:
            raise UnsupportedFormat(
                f"the file is not valid JSON ({exc.msg} at line {exc.lineno}); {FIX}"
            ) from exc
        if isinstance(parsed, list | Mapping):
            return records_to_frame(parsed)
        raise UnsupportedFormat(f"the JSON holds a {type(parsed).__name__}, not a table; {FIX}")
    text = content.decode("utf-8-sig")
    return pd.read_csv(io.StringIO(text), sep="\t" if kind == "tsv" else ",")


def _columns_frame(columns: Mapping[str, Any]) -> pd.DataFrame:
    try:
        return pd.DataFrame(dict(columns))
    except ValueError as exc:
        raise InvalidInput(f"the columns could not form a table ({_short(exc)}); {FIX}") from exc


def _checked(frame: pd.DataFrame) -> pd.DataFrame:
    if frame.shape[1] == 0 or frame.shape[0] == 0:
        raise UnsupportedFormat(
            f"the table has no {'columns' if frame.shape[1] == 0 else 'rows'}; {FIX}"
        )
    frame.columns = [str(column).strip() for column in frame.columns]
    return frame


def _short(exc: BaseException) -> str:
    return str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
