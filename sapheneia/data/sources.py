"""``load_table``: one entry point for every place a table can come from."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from sapheneia.data.formats import read_bytes, records_to_frame
from sapheneia.data.limits import DataLimits
from sapheneia.data.paths import read_local
from sapheneia.data.urls import fetch_url
from sapheneia.errors import (
    InvalidInput,
    PayloadTooLarge,
    SourceForbidden,
    SourceNotFound,
    SourceUnreachable,
    UnsupportedFormat,
)

SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
OBJECT_STORES = {"s3": "s3fs", "gs": "gcsfs", "gcs": "gcsfs", "az": "adlfs", "abfs": "adlfs"}


def load_table(
    source: str | Sequence[Mapping[str, Any]] | Mapping[str, Any] | bytes,
    limits: DataLimits,
    *,
    filename: str | None = None,
) -> pd.DataFrame:
    """A DataFrame from inline records, an upload's bytes, a URL or a path in the data directory.

    ``bytes`` are an upload whose format comes from ``filename``'s suffix (sniffed without one);
    a ``str`` is an ``http(s)://`` URL, an object-store URL, or a local path confined to
    ``limits.data_dir``. Nothing is read past ``limits.max_bytes``.
    """
    if isinstance(source, bytes | bytearray | memoryview):
        content = bytes(source)
        if len(content) > limits.max_bytes:
            raise PayloadTooLarge(
                f"the upload is {len(content) / 1024 / 1024:.1f} MiB; the limit is "
                f"{limits.max_bytes / 1024 / 1024:.1f} MiB"
            )
        return read_bytes(content, limits, filename)
    if isinstance(source, str):
        return _load_string(source.strip(), limits)
    if isinstance(source, Mapping | Sequence):
        return records_to_frame(source, limits)
    raise InvalidInput(
        "the data must be records, an uploaded file, a URL or a path in the data directory"
    )


def _load_string(source: str, limits: DataLimits) -> pd.DataFrame:
    match = SCHEME.match(source)
    if match is None:
        content, name = read_local(source, limits.data_dir, limits.max_bytes)
        return read_bytes(content, limits, name)
    scheme = match.group(1).lower()
    if scheme in ("http", "https"):
        content, name, content_type = fetch_url(source, limits)
        return read_bytes(content, limits, name, content_type)
    if scheme in OBJECT_STORES:
        content, name = _read_object(source, scheme, limits)
        return read_bytes(content, limits, name)
    if scheme == "file":
        raise SourceForbidden(
            "file:// URLs are not accepted; give a path relative to the data directory, "
            "or upload the file"
        )
    raise UnsupportedFormat(
        f"'{scheme}://' sources are not supported; use http(s)://, a path in the data "
        "directory, inline records, or upload the file"
    )


def _read_object(url: str, scheme: str, limits: DataLimits) -> tuple[bytes, str]:
    """Object stores through fsspec, an optional extra, read with the server's credentials."""
    if not limits.allow_object_stores:
        raise SourceForbidden(
            f"{scheme}:// sources are disabled on this server; download the file and upload it, "
            "or ask the operator to allow object stores"
        )
    plugin = OBJECT_STORES[scheme]
    try:
        import fsspec

        filesystem, path = fsspec.core.url_to_fs(url)
    except ImportError as exc:
        raise UnsupportedFormat(
            f"reading {scheme}:// needs fsspec and {plugin} on the server "
            f"(pip install fsspec {plugin}); or download the file and upload it"
        ) from exc
    try:
        if filesystem.size(path) > limits.max_bytes:
            raise PayloadTooLarge(f"the object is over the limit of {limits.max_bytes} bytes")
        with filesystem.open(path, "rb") as handle:
            content = handle.read(limits.max_bytes + 1)
    except FileNotFoundError as exc:
        raise SourceNotFound(f"no object at '{url}'") from exc
    except PermissionError as exc:
        raise SourceForbidden("the server may not read that object") from exc
    except OSError as exc:
        raise SourceUnreachable(f"the object could not be read ({type(exc).__name__})") from exc
    if len(content) > limits.max_bytes:
        raise PayloadTooLarge(f"the object is over the limit of {limits.max_bytes} bytes")
    return content, path.rsplit("/", 1)[-1]
