"""Content decoding with the decoded size capped: gzip, deflate and brotli, stacked or not.

A few hundred bytes can inflate to gigabytes (and ``gzip, gzip`` multiplies the ratio), so every
layer hands on at most ``CHUNK`` bytes at a time and the total is counted as it grows: nothing
larger than the cap plus one chunk is ever held. httpx's own decoders inflate a whole chunk at once.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Iterator
from typing import Protocol

from sapheneia.errors import PayloadTooLarge, UnsupportedFormat

CHUNK = 64 * 1024
GZIP_MAGIC = b"\x1f\x8b"


class Layer(Protocol):
    def feed(self, data: bytes) -> Iterator[bytes]: ...

    def finish(self) -> Iterator[bytes]: ...


class ZlibLayer:
    """gzip (every member of a multi-member file) or deflate (zlib-wrapped, else raw)."""

    def __init__(self, encoding: str) -> None:
        self.gzip = encoding == "gzip"
        self.wbits = 16 + zlib.MAX_WBITS if self.gzip else zlib.MAX_WBITS
        self.inflater = zlib.decompressobj(self.wbits)
        self.started = False

    def feed(self, data: bytes) -> Iterator[bytes]:
        while True:
            out = self._inflate(data)
            if out:
                yield out
            if self.inflater.eof and self.inflater.unused_data:
                data = self.inflater.unused_data  # the next gzip member
                self.inflater = zlib.decompressobj(self.wbits)
                continue
            data = self.inflater.unconsumed_tail
            # A full chunk may leave output pending inside zlib: ask again with no input.
            if not data and len(out) < CHUNK:
                return

    def _inflate(self, data: bytes) -> bytes:
        try:
            try:
                out = self.inflater.decompress(data, CHUNK)
            except zlib.error:
                if self.gzip or self.started:
                    raise
                # Some servers send raw deflate without the zlib header that the name promises.
                self.wbits = -zlib.MAX_WBITS
                self.inflater = zlib.decompressobj(self.wbits)
                out = self.inflater.decompress(data, CHUNK)
        except zlib.error as exc:
            raise UnsupportedFormat(f"the data is not validly compressed ({exc})") from exc
        self.started = self.started or bool(data)
        return out

    def finish(self) -> Iterator[bytes]:
        if self.started and not self.inflater.eof:
            raise UnsupportedFormat("the compressed data is truncated; send the whole file")
        return iter(())


class BrotliLayer:
    def __init__(self) -> None:
        try:
            import brotli
        except ImportError as exc:
            raise UnsupportedFormat(
                "the source is brotli-encoded and the server cannot decode brotli; "
                "serve it uncompressed or gzip-encoded"
            ) from exc
        self.brotli = brotli
        self.inflater = brotli.Decompressor()

    def feed(self, data: bytes) -> Iterator[bytes]:
        try:
            out = self.inflater.process(data, output_buffer_limit=CHUNK)
            if out:
                yield out
            # The decompressor holds more output: it must be drained with empty input first.
            while out and not self.inflater.can_accept_more_data():
                out = self.inflater.process(b"", output_buffer_limit=CHUNK)
                if out:
                    yield out
        except self.brotli.error as exc:
            raise UnsupportedFormat("the data is not valid brotli") from exc

    def finish(self) -> Iterator[bytes]:
        return iter(())


def layer(encoding: str) -> Layer:
    if encoding in ("gzip", "x-gzip", "deflate"):
        return ZlibLayer("gzip" if encoding == "x-gzip" else encoding)
    if encoding == "br":
        return BrotliLayer()
    raise UnsupportedFormat(
        f"the source is encoded as '{encoding}', which the server does not decode; "
        "serve it uncompressed, gzip, deflate or br"
    )


def encodings(header: str) -> list[str]:
    """The ``Content-Encoding`` list in the order to undo it (the last applied first)."""
    named = [part.strip().lower() for part in header.split(",")]
    return [name for name in reversed(named) if name and name != "identity"]


def decoded(
    chunks: Iterable[bytes], applied: list[str], max_bytes: int, what: str = "the download"
) -> bytes:
    """The bytes behind ``chunks`` with ``applied`` encodings undone; PayloadTooLarge past
    ``max_bytes`` decoded bytes, raised before more than one chunk over it is held."""
    layers = [layer(name) for name in applied]
    stream: Iterable[bytes] = chunks
    for current in layers:  # lazily chained: each layer pulls a chunk at a time from the last
        stream = _undone(current, stream)
    out: list[bytes] = []
    size = 0
    for piece in stream:
        size += len(piece)
        if size > max_bytes:
            raise PayloadTooLarge(too_large(what, max_bytes))
        out.append(piece)
    return b"".join(out)


def _undone(current: Layer, pieces: Iterable[bytes]) -> Iterator[bytes]:
    for piece in pieces:
        # Input in small slices too: zlib copies its unconsumed tail on every call.
        for start in range(0, len(piece), CHUNK):
            yield from current.feed(piece[start : start + CHUNK])
    yield from current.finish()


def gunzipped(content: bytes, max_bytes: int) -> bytes:
    """A gzip upload or file inflated under the same cap; other content as it is."""
    if not content.startswith(GZIP_MAGIC):
        return content
    return decoded([content], ["gzip"], max_bytes, "the decompressed file")


def too_large(what: str, max_bytes: int) -> str:
    return (
        f"{what} is over the limit of {max_bytes / 1024 / 1024:.1f} MiB once decoded; send less "
        "data per request, or ask the operator to raise SAPHENEIA_MAX_REQUEST_BYTES"
    )
