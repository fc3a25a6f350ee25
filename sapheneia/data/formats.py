"""Bytes and records to a DataFrame: CSV, Parquet and JSON (records or columns)."""

from __future__ import annotations

import csv
import io
import itertools
import json
from collections.abc import Mapping, Sequence
from pathlib import PurePosixPath
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from sapheneia.data.decoding import GZIP_MAGIC, gunzipped, too_large
from sapheneia.data.limits import DataLimits, over_limit
from sapheneia.errors import InvalidInput, PayloadTooLarge, UnsupportedFormat

FORMATS = {
    ".csv": "csv",
    ".txt": "csv",
    ".tsv": "tsv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".json": "json",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".arrow": "arrow",
    ".arrows": "arrow",
    ".feather": "arrow",
    ".ipc": "arrow",
}
CONTENT_TYPES = {
    "text/csv": "csv",
    "application/csv": "csv",
    "text/tab-separated-values": "tsv",
    "application/json": "json",
    "application/x-ndjson": "jsonl",
    "application/vnd.apache.parquet": "parquet",
    "application/x-parquet": "parquet",
    "application/vnd.apache.arrow.stream": "arrow",
    "application/vnd.apache.arrow.file": "arrow",
}
# Arrow IPC: the file format opens with this magic, the stream format with a continuation marker.
ARROW_FILE_MAGIC = b"ARROW1"
ARROW_STREAM_MARKER = b"\xff\xff\xff\xff"
SPREADSHEETS = {".xls", ".xlsx", ".xlsm", ".ods"}
FIX = (
    'send CSV (with a header row), Parquet, Arrow IPC, or JSON records like [{"ds": ..., "y": ...}]'
)
SPLIT = "split the data into several requests"


def format_of(filename: str | None, content_type: str | None = None) -> str | None:
    """The format a file name's suffix (or else a Content-Type) names; None means sniff."""
    path = PurePosixPath(filename or "")
    if path.suffix.lower() == ".gz":  # data.csv.gz: the format is the suffix before
        path = path.with_suffix("")
    suffix = path.suffix.lower()
    if suffix in SPREADSHEETS:
        raise UnsupportedFormat(f"spreadsheets ({suffix}) are not read; export the sheet as CSV")
    if suffix in FORMATS:
        return FORMATS[suffix]
    media = (content_type or "").split(";")[0].strip().lower()
    return CONTENT_TYPES.get(media)


def sniff(content: bytes) -> str:
    if content.startswith(b"PAR1"):
        return "parquet"
    if content.startswith((ARROW_FILE_MAGIC, ARROW_STREAM_MARKER)):
        return "arrow"
    head = content.lstrip()[:1]
    if head in (b"[", b"{"):
        return "json"
    return "csv"


def read_bytes(
    content: bytes,
    limits: DataLimits,
    filename: str | None = None,
    content_type: str | None = None,
) -> pd.DataFrame:
    """Parse a file's bytes; the format comes from ``filename``'s suffix, else it is sniffed.

    A gzip file is inflated first, under ``limits.max_bytes``; rows and columns are capped by
    ``limits`` before the table is built where the format allows (a CSV header, a Parquet footer).
    """
    if content.startswith(GZIP_MAGIC):
        content = gunzipped(content, limits.max_bytes)
    if not content.strip():
        raise UnsupportedFormat(f"the file is empty; {FIX}")
    kind = format_of(filename, content_type) or sniff(content)
    try:
        frame = _parse(content, kind, limits)
    except (UnsupportedFormat, PayloadTooLarge):
        raise
    except (ValueError, TypeError, UnicodeDecodeError, OSError, pd.errors.ParserError) as exc:
        raise UnsupportedFormat(
            f"the file could not be read as {kind.upper()} ({_short(exc)}); {FIX}"
        ) from exc
    return _checked(frame, limits)


def records_to_frame(
    records: Sequence[Any] | Mapping[str, Any], limits: DataLimits
) -> pd.DataFrame:
    """Inline JSON: a list of row objects, or an object of equal-length columns."""
    if isinstance(records, Mapping):
        _check_columns(len(records), limits)
        longest = max((len(v) for v in records.values() if isinstance(v, Sequence)), default=0)
        _check_rows(longest, limits)
        return _checked(_columns_frame(records), limits)
    _check_rows(len(records), limits)
    fast = _plain_records_frame(records, limits)
    if fast is not None:
        return _checked(fast, limits)
    names: set[Any] = set()
    for index, row in enumerate(records):
        if not isinstance(row, Mapping):
            raise InvalidInput(f"data row {index + 1} is not an object; {FIX}")
        names.update(row)
        # Checked as they grow: a million keys in one row would make a million columns.
        _check_columns(len(names), limits)
    return _checked(pd.DataFrame.from_records(list(records)), limits)


def _plain_records_frame(records: Sequence[Any], limits: DataLimits) -> pd.DataFrame | None:
    """``DataFrame.from_records`` for rows that are all plain dicts (parsed JSON), by the same
    steps without its per-row Python loops: pandas' own ``dicts_to_array`` (missing keys become
    NaN) and column-wise type inference. None for anything else (the row-by-row path then gives
    the message), or where pandas' internals are not there."""
    if not records or set(map(type, records)) != {dict}:
        return None
    names = list(dict.fromkeys(itertools.chain.from_iterable(records)))
    if len(names) > limits.max_columns:
        return None  # the row-by-row check names the count where the cap was passed
    try:
        from pandas._libs.lib import dicts_to_array  # type: ignore[attr-defined]
        from pandas.core.internals.construction import convert_object_array
    except ImportError:  # pragma: no cover - pandas moved them: the public path still works
        return None
    content = dicts_to_array(list(records), names)
    columns = convert_object_array(list(content.T), dtype=None)
    return pd.DataFrame(dict(zip(names, columns, strict=True)), columns=names)


def _parse(content: bytes, kind: str, limits: DataLimits) -> pd.DataFrame:
    if kind == "parquet":
        return _parquet(content, limits)
    if kind == "arrow":
        return _arrow(content, limits)
    if kind in ("json", "jsonl"):
        try:
            text = content.decode("utf-8-sig")
            parsed: Any = (
                [json.loads(line) for line in text.splitlines() if line.strip()]
                if kind == "jsonl"
                else json.loads(text)
            )
        except json.JSONDecodeError as exc:
            raise UnsupportedFormat(
                f"the file is not valid JSON ({exc.msg} at line {exc.lineno}); {FIX}"
            ) from exc
        if isinstance(parsed, list | Mapping):
            return records_to_frame(parsed, limits)
        raise UnsupportedFormat(f"the JSON holds a {type(parsed).__name__}, not a table; {FIX}")
    text = content.decode("utf-8-sig")
    sep = "\t" if kind == "tsv" else ","
    header = next(csv.reader(io.StringIO(text.split("\n", 1)[0]), delimiter=sep), [])
    _check_columns(len(header), limits)
    # One row past the cap is enough to refuse, and stops pandas from reading the rest.
    return pd.read_csv(io.StringIO(text), sep=sep, nrows=limits.max_rows + 1)


def _parquet(content: bytes, limits: DataLimits) -> pd.DataFrame:
    """The footer's counts and the decoded size are checked before any column is decoded.

    The sizes in a footer are of encoded data: a dictionary-encoded column of one long string
    repeated is tiny there and huge once read. So fixed-width columns are sized from the row count,
    and text columns are read still dictionary-encoded and measured before they are expanded.
    """
    parquet = pq.ParquetFile(io.BytesIO(content))
    meta = parquet.metadata
    _check_columns(meta.num_columns, limits)
    _check_rows(meta.num_rows, limits)
    fields = list(parquet.schema_arrow)
    if any(pa.types.is_nested(field.type) for field in fields):
        raise UnsupportedFormat(f"the Parquet file has nested columns; {FIX}")
    texts = [f.name for f in fields if _text(f.type)]
    widths = [f.type.bit_width // 8 for f in fields if f.name not in texts and _fixed(f.type)]
    fixed = meta.num_rows * (sum(widths) + 8 * (len(fields) - len(widths)))
    if fixed > limits.max_bytes:
        raise PayloadTooLarge(too_large("the Parquet file", limits.max_bytes))
    table = pq.ParquetFile(io.BytesIO(content), read_dictionary=texts).read()
    return _plain_text(table, fixed, "the Parquet file", limits).to_pandas()


def _arrow(content: bytes, limits: DataLimits) -> pd.DataFrame:
    """Arrow IPC, file or stream format, read batch by batch: rows and decoded bytes are counted
    as each batch arrives (compressed buffers are inflated per batch), so nothing past the caps
    is read; text columns are then sized and decoded as Parquet's are."""
    source = pa.py_buffer(content)
    if content.startswith(ARROW_FILE_MAGIC):
        opened = pa.ipc.open_file(source)
        batches: Any = (opened.get_batch(i) for i in range(opened.num_record_batches))
    else:
        opened = pa.ipc.open_stream(source)
        batches = opened
    schema = opened.schema
    _check_columns(len(schema), limits)
    if any(pa.types.is_nested(field.type) for field in schema):
        raise UnsupportedFormat(f"the Arrow data has nested columns; {FIX}")
    read, rows, size = [], 0, 0
    for batch in batches:
        rows += batch.num_rows
        _check_rows(rows, limits)
        size += batch.nbytes
        if size > limits.max_bytes:
            raise PayloadTooLarge(too_large("the Arrow data", limits.max_bytes))
        read.append(batch)
    table = pa.Table.from_batches(read, schema)
    return _plain_text(table, size, "the Arrow data", limits).to_pandas()


def _plain_text(table: pa.Table, fixed: int, what: str, limits: DataLimits) -> pa.Table:
    """``table`` with dictionary-encoded text columns decoded, once their decoded size (with
    ``fixed``, the other columns' bytes) is known to be within the cap: a dictionary of one long
    string repeated is tiny as sent and huge once expanded."""
    texts = [f.name for f in table.schema if pa.types.is_dictionary(f.type) and _text(f.type)]
    decoded = fixed
    for name in texts:
        for chunk in table.column(name).chunks:
            lengths = pc.binary_length(chunk.dictionary)
            decoded += pc.sum(pc.take(lengths, chunk.indices)).as_py() or 0
    if decoded > limits.max_bytes:
        raise PayloadTooLarge(too_large(what, limits.max_bytes))
    for name in texts:
        plain = [chunk.dictionary_decode() for chunk in table.column(name).chunks]
        value_type = table.schema.field(name).type.value_type
        table = table.set_column(
            table.schema.get_field_index(name), name, pa.chunked_array(plain, value_type)
        )
    return table


def _text(kind: pa.DataType) -> bool:
    if pa.types.is_dictionary(kind):
        kind = kind.value_type
    return bool(pa.types.is_string(kind) or pa.types.is_binary(kind))


def _fixed(kind: pa.DataType) -> bool:
    try:
        return kind.bit_width > 0
    except ValueError:
        return False


def _check_rows(rows: int, limits: DataLimits) -> None:
    if rows > limits.max_rows:
        raise over_limit(
            f"the table has {rows:,} rows", limits.max_rows, "SAPHENEIA_MAX_ROWS", SPLIT
        )


def _check_columns(columns: int, limits: DataLimits) -> None:
    if columns > limits.max_columns:
        raise over_limit(
            f"the table has {columns:,} columns",
            limits.max_columns,
            "SAPHENEIA_MAX_COLUMNS",
            "send only the columns the forecast uses",
        )


def _columns_frame(columns: Mapping[str, Any]) -> pd.DataFrame:
    try:
        return pd.DataFrame(dict(columns))
    except ValueError as exc:
        raise InvalidInput(f"the columns could not form a table ({_short(exc)}); {FIX}") from exc


def _checked(frame: pd.DataFrame, limits: DataLimits) -> pd.DataFrame:
    if frame.shape[1] == 0 or frame.shape[0] == 0:
        raise UnsupportedFormat(
            f"the table has no {'columns' if frame.shape[1] == 0 else 'rows'}; {FIX}"
        )
    _check_columns(frame.shape[1], limits)
    if frame.shape[0] > limits.max_rows:  # a CSV read stops one row past the cap
        raise over_limit(
            f"the table has more than {limits.max_rows:,} rows",
            limits.max_rows,
            "SAPHENEIA_MAX_ROWS",
            SPLIT,
        )
    given = [str(column) for column in frame.columns]
    frame.columns = [name.strip() for name in given]
    repeated = frame.columns[frame.columns.duplicated()].unique()
    if len(repeated):
        clashing = [repr(name) for name in given if name.strip() == repeated[0]]
        raise InvalidInput(
            f"columns {', '.join(c[:60] for c in clashing)} have the same name once the spaces "
            "around them are trimmed; rename them so that each column has its own name"
        )
    longest = max(frame.columns, key=len)
    if len(longest) > limits.max_name_chars:
        raise over_limit(
            f"column name {longest[:40]!r}... is {len(longest):,} characters long",
            limits.max_name_chars,
            "SAPHENEIA_MAX_NAME_CHARS",
            "shorten it",
        )
    return frame


def _short(exc: BaseException) -> str:
    return str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
