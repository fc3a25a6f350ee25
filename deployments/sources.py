"""Loading a request's table off the event loop, with remote sources kept apart.

A URL or object-store source waits on someone else's server, up to the fetch deadline. Those
fetches run in a bounded pool of their own, and each key may have only a few in flight, so slow
sources can stall neither the threads that parse inline data and shape responses nor other callers.
"""

from __future__ import annotations

import asyncio
import functools
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pandas as pd

from sapheneia.data import DataLimits, load_table
from sapheneia.errors import RateLimited

REMOTE_SCHEMES = ("http://", "https://", "s3://", "gs://")
# Up to this many inline rows become a table (and then tasks) on the event loop.
INLINE_ROWS = 2_000


def is_remote(source: Any) -> bool:
    return isinstance(source, str) and source.strip().lower().startswith(REMOTE_SCHEMES)


class SourceLoader:
    def __init__(
        self, limits: DataLimits, fetch_threads: int = 8, fetches_per_key: int = 4
    ) -> None:
        self.limits = limits
        self.fetches_per_key = fetches_per_key
        self._pool = ThreadPoolExecutor(fetch_threads, thread_name_prefix="source-fetch")
        self._in_flight: Counter[str] = Counter()

    async def load(self, source: Any, key: str, filename: str | None = None) -> pd.DataFrame:
        """The table of ``source`` (rows, bytes, a path or a URL) for the caller with ``key``."""
        if not is_remote(source):
            if isinstance(source, list) and len(source) <= INLINE_ROWS:
                return load_table(source, self.limits)  # a few rows: less work than a thread hop
            return await asyncio.to_thread(load_table, source, self.limits, filename=filename)
        if self._in_flight[key] >= self.fetches_per_key:
            error = RateLimited(
                f"this key already has {self.fetches_per_key} URL sources being fetched (the "
                "SAPHENEIA_URL_FETCHES_PER_KEY limit); wait for them, or upload the file"
            )
            error.retry_after_s = max(1, round(self.limits.timeout_s))
            raise error
        self._in_flight[key] += 1
        try:
            fetch = functools.partial(load_table, source, self.limits)
            return await asyncio.get_running_loop().run_in_executor(self._pool, fetch)
        finally:
            self._in_flight[key] -= 1
            if not self._in_flight[key]:
                del self._in_flight[key]
