"""Where a job reads from: a local file or folder as it is, an object store through pyarrow, and
an HTTP(S) URL downloaded once (with the server's URL checks) into the job's own folder."""

from __future__ import annotations

from sapheneia.data import DataLimits
from sapheneia.data.formats import format_of, sniff
from sapheneia.data.urls import fetch_url
from sapheneia.errors import UnsupportedFormat
from sapheneia.jobs.output import Location

SUFFIXES = {"parquet": ".parquet", "csv": ".csv"}


def local_source(
    source: str, scratch: str, limits: DataLimits, s3_endpoint: str | None = None
) -> str:
    """A path or URI that Ray Data reads; a URL is fetched first (``limits`` cap its size)."""
    if not source.lower().startswith(("http://", "https://")):
        return source
    content, name, content_type = fetch_url(source, limits)
    kind = format_of(name, content_type) or sniff(content)
    if kind not in SUFFIXES:
        raise UnsupportedFormat(f"a job reads Parquet or CSV; the URL gave {kind or 'neither'}")
    location = Location(scratch, s3_endpoint)
    location.write_bytes(f"input{SUFFIXES[kind]}", content)
    return location.child(f"input{SUFFIXES[kind]}").uri
